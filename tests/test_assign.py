"""lwdet.assign: every object gets a positive and a non-zero target where the engine's assigner gives it none."""

from __future__ import annotations

import pytest
import torch
from ultralytics.utils.tal import TaskAlignedAssigner, make_anchors

from lwdet.assign import CenterRadiusAssigner, anchor_strides, use

IMGSZ = 160


def _anchors(strides):
    feats = [torch.zeros(1, 1, IMGSZ // s, IMGSZ // s) for s in strides]
    anc, st = make_anchors(feats, torch.tensor(strides, dtype=torch.float32), 0.5)
    return anc * st, st.squeeze(-1)  # px


def _init_like_predictions(anc_px, st, bs, nc=10, half_width=7.5):
    """What a freshly initialised DFL head predicts: boxes 15 strides wide around each anchor, scores ~0.01."""
    r = (half_width * st)[:, None]
    boxes = torch.cat([anc_px - r, anc_px + r], -1)
    return torch.full((bs, len(anc_px), nc), 0.01), boxes.expand(bs, -1, -1).clone()


def _small_objects():
    """Small objects (min side 4-8 px) scattered over a 160 px image, as fmnist-bench-s has at 160 px (35 %)."""
    g = torch.Generator().manual_seed(0)
    n = 12
    c = torch.rand(1, n, 2, generator=g) * 140 + 10
    wh = torch.rand(1, n, 2, generator=g) * 4 + 4  # 4-8 px
    wh[..., 1] *= 1.5  # thin items, as the data's trousers and dresses
    boxes = torch.cat([c - wh / 2, c + wh / 2], -1)
    labels = torch.randint(0, 10, (1, n, 1), generator=g).float()
    return labels, boxes, torch.ones(1, n, 1)


def _assign(assigner, strides, labels, boxes, mask):
    anc, st = _anchors(strides)
    scores, pd = _init_like_predictions(anc, st, boxes.shape[0])
    return assigner(scores, pd, anc, labels, boxes, mask)


def _per_object(out, n):
    _, _, target_scores, fg, gt_idx = out
    pos = torch.stack([(fg[0] & (gt_idx[0] == j)).sum() for j in range(n)])
    tgt = torch.stack(
        [
            target_scores[0].sum(-1)[fg[0] & (gt_idx[0] == j)].max(0).values if pos[j] else torch.tensor(0.0)
            for j in range(n)
        ]
    )
    return pos, tgt


def test_anchor_strides():
    anc, st = _anchors([8, 16, 32])
    assert torch.equal(anchor_strides(len(anc), [8, 16, 32]), st)
    # a non-square input: 160 x 320
    feats = [torch.zeros(1, 1, 160 // s, 320 // s) for s in (16, 32)]
    _, st = make_anchors(feats, torch.tensor([16.0, 32.0]), 0.5)
    assert torch.equal(anchor_strides(len(st), [16, 32]), st.squeeze(-1))
    with pytest.raises(ValueError):
        anchor_strides(6, [16, 32])  # no input size gives 6 anchors at strides 16 / 32


@pytest.mark.parametrize("strides", [[16, 32], [8, 16, 32]])
def test_every_small_object_gets_a_positive_with_a_target(strides):
    labels, boxes, mask = _small_objects()
    n = boxes.shape[1]
    kw = dict(topk=10, num_classes=10, alpha=0.5, beta=6.0, stride=strides)  # as v8DetectionLoss builds it
    engine_pos, engine_tgt = _per_object(_assign(TaskAlignedAssigner(**kw), strides, labels, boxes, mask), n)
    fixed = CenterRadiusAssigner(**kw)
    pos, tgt = _per_object(_assign(fixed, strides, labels, boxes, mask), n)
    # The engine leaves such objects without a positive, or with a zero target (no signal): the property fails.
    assert ((engine_pos == 0) | (engine_tgt < 1e-6)).any()
    # The fix: every object >= 4 px has a positive, and its target is at least the floor.
    assert (pos >= 1).all(), pos
    assert (tgt >= fixed.min_target - 1e-6).all(), tgt


def test_objects_the_engine_serves_are_unchanged():
    """Objects whose predictions already overlap them keep exactly the engine's assignment and targets."""
    strides = [16, 32]
    anc, st = _anchors(strides)
    boxes = torch.tensor([[[20.0, 30.0, 80.0, 90.0], [90.0, 60.0, 150.0, 140.0]]])
    labels = torch.tensor([[[1.0], [4.0]]])
    mask = torch.ones(1, 2, 1)
    # predictions: each anchor's box = the object it sits in, slightly off (good overlaps)
    pd = torch.cat([anc - 2 * st[:, None], anc + 2 * st[:, None]], -1)[None].clone()
    for j in range(2):
        inside = ((anc > boxes[0, j, :2]) & (anc < boxes[0, j, 2:])).all(-1)
        pd[0, inside] = boxes[0, j] + torch.tensor([1.0, -2.0, 3.0, 1.0])
    scores = torch.full((1, len(anc), 10), 0.3)
    kw = dict(topk=10, num_classes=10, alpha=0.5, beta=6.0, stride=strides)
    a = TaskAlignedAssigner(**kw)(scores, pd, anc, labels, boxes, mask)
    b = CenterRadiusAssigner(**kw)(scores, pd, anc, labels, boxes, mask)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_use_swaps_the_engines_loss_assigner():
    from ultralytics.utils import loss as engine_loss

    with use(min_target=0.2):
        a = engine_loss.TaskAlignedAssigner(topk=10, num_classes=3, alpha=0.5, beta=6.0, stride=[16, 32])
    assert isinstance(a, CenterRadiusAssigner) and a.min_target == 0.2 and a.stride == [16, 32]
    assert engine_loss.TaskAlignedAssigner is TaskAlignedAssigner
