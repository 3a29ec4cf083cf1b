"""An assigner that gives every object a positive and a learning signal: the fix for the two-level neck (issue 37).

The engine's ``TaskAlignedAssigner`` (``ultralytics/utils/tal.py``, 8.4.190) picks an object's positives among the
anchors whose centre lies in its box (small sides floored to ``stride_val``, the model's second stride: 16 px for
strides 8/16/32, 32 px for the two-level 16/32), ranked by ``score ** 0.5 * CIoU ** 6`` of the anchor's *prediction*,
and scales the classification target (and the box loss weight) of each positive by the object's best CIoU. Two
things then leave an object with no signal at all, and both hit objects much smaller than the coarsest strides
(``benchmarks/two_level.py``, ``docs/two-level.md``):

- its alignment is 0 on every candidate (a CIoU clamped at 0: a freshly initialised DFL head predicts boxes 15 strides
  wide, 240 px at stride 16 on a 160 px input, around a 5 px object), so the top-k over all anchors picks tied zeros
  elsewhere and none of its candidates: the object gets **no positive**;
- or it keeps positives whose target is ``align / max_align * max_CIoU = 0``: a positive that trains like a negative.

:class:`CenterRadiusAssigner` is the engine's assigner with two additions, nothing else changed (the engine's
candidates, top-k, alignment and conflict rule run first, unchanged):

1. **every object keeps its nearest anchor**: an object left without a positive takes the free candidate anchor
   (centre within the engine's floored box, or within ``radius`` strides of the object's centre on the anchor's own
   level) nearest to its centre; a free anchor wanted by several such objects goes to the nearest;
2. **a floor on the target**: the positives of an object whose best overlap is below ``min_target`` get the target
   ``min_target`` (class target and box-loss weight), so the box branch learns to fit it and the class branch sees it,
   until its own prediction overlaps it better; objects already above the floor keep the engine's targets exactly.

``radius`` only adds candidates for objects that the engine's rule leaves none (it cannot, with the floor, unless
every candidate is taken): 0 keeps the engine's candidate set.

Wiring (see ``docs/two-level.md``): the engine's ``v8DetectionLoss`` builds its assigner in ``__init__``; replace it
after the criterion is built (``model.criterion = model.init_criterion(); model.criterion.assigner =
CenterRadiusAssigner.like(model.criterion.assigner)``), or :func:`use` as a context manager around training.
"""

from __future__ import annotations

import contextlib

import torch
from ultralytics.utils.tal import TaskAlignedAssigner

__all__ = ["CenterRadiusAssigner", "anchor_strides", "use"]


def anchor_strides(n_anchors: int, strides, device=None, dtype=torch.float32) -> torch.Tensor:
    """Each anchor's stride, in the loss's flattened order (level by level, finest first), from the anchor count.

    A level of stride s on an H x W input has H*W / s**2 anchors whatever the aspect, so the total fixes H*W.
    """
    strides = [float(s) for s in strides]
    area = n_anchors / sum(1.0 / s**2 for s in strides)
    counts = [round(area / s**2) for s in strides]
    if sum(counts) != n_anchors or any(abs(area / s**2 - c) > 1e-6 for s, c in zip(strides, counts)):
        raise ValueError(f"{n_anchors} anchors do not split into levels of strides {strides}")
    return torch.cat([torch.full((c,), s, device=device, dtype=dtype) for s, c in zip(strides, counts)])


class CenterRadiusAssigner(TaskAlignedAssigner):
    """``TaskAlignedAssigner`` + every object its nearest anchor + a floor on its target (module docstring)."""

    def __init__(self, *args, radius: float = 1.5, min_target: float = 0.1, **kwargs):
        super().__init__(*args, **kwargs)
        self.radius = float(radius)
        self.min_target = float(min_target)

    @classmethod
    def like(cls, assigner: TaskAlignedAssigner, **kwargs) -> CenterRadiusAssigner:
        """The same settings as the engine's ``assigner`` (topk, alpha, beta, strides, topk2), plus ``kwargs``."""
        return cls(
            topk=assigner.topk,
            num_classes=assigner.num_classes,
            alpha=assigner.alpha,
            beta=assigner.beta,
            stride=list(assigner.stride),
            eps=assigner.eps,
            topk2=assigner.topk2,
            **kwargs,
        )

    def _fallback_candidates(self, anc_points, gt_bboxes, mask_gt):
        """(b, n, a) anchors an object may fall back on, and their distance to its centre in px (inf elsewhere)."""
        cand = self.select_candidates_in_gts(anc_points, gt_bboxes, mask_gt)
        centre = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) / 2  # (b, n, 2)
        d = (anc_points[None, None] - centre[:, :, None]).abs()  # (b, n, a, 2)
        if self.radius > 0:
            s = anchor_strides(anc_points.shape[0], self.stride, anc_points.device, anc_points.dtype)
            cand = cand | (d.amax(-1) < self.radius * s)  # within `radius` strides of the centre, on its level
        dist = d.pow(2).sum(-1).sqrt()
        return dist.masked_fill(~(cand & mask_gt.bool()), float("inf"))

    def _forward(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra):
        # The engine's steps, unchanged: candidates, alignment, top-k, many-to-one conflicts.
        mask_pos, align_metric, overlaps = self.get_pos_mask(
            pd_scores, pd_bboxes, gt_labels, gt_bboxes, anc_points, mask_gt, **extra
        )
        target_gt_idx, fg_mask, mask_pos = self.select_highest_overlaps(
            mask_pos, overlaps, self.n_max_boxes, align_metric
        )

        # 1. An object left without a positive takes its nearest free candidate anchor.
        need = (mask_pos.sum(-1) == 0) & mask_gt.squeeze(-1).bool()  # (b, n)
        if need.any():
            d = self._fallback_candidates(anc_points, gt_bboxes, mask_gt)
            d = d.masked_fill(fg_mask.bool()[:, None, :] | ~need[..., None], float("inf"))
            dmin, owner = d.min(1)  # each free anchor: the needing object nearest to it
            own = torch.zeros_like(mask_pos, dtype=torch.bool)
            own.scatter_(1, owner[:, None, :], torch.isfinite(dmin)[:, None, :])
            d = d.masked_fill(~own, float("inf"))
            dbest, best = d.min(-1)  # each needing object: the nearest anchor it owns
            add = torch.zeros_like(mask_pos)
            add.scatter_(-1, best[..., None], torch.isfinite(dbest)[..., None].to(add.dtype))
            mask_pos = mask_pos + add  # disjoint from mask_pos and, column-wise, from each other
            fg_mask, target_gt_idx = mask_pos.max(-2)

        target_labels, target_bboxes, target_scores = self.get_targets(gt_labels, gt_bboxes, target_gt_idx, fg_mask)

        # The engine's normalisation: each positive's target = align / max_align * the object's best overlap ...
        align_metric *= mask_pos
        pos_align_metrics = align_metric.amax(dim=-1, keepdim=True)  # (b, n, 1)
        overlaps *= mask_pos
        pos_overlaps = overlaps.amax(dim=-1, keepdim=True)  # (b, n, 1)
        align_metric.mul_(pos_overlaps).div_(pos_align_metrics + self.eps)
        # 2. ... floored at min_target for the positives of an object whose best overlap is below it.
        if self.min_target > 0:
            low = (pos_overlaps < self.min_target) & mask_pos.bool()
            align_metric = torch.where(low, align_metric.clamp(min=self.min_target), align_metric)
        norm_align_metric = align_metric.amax(-2).unsqueeze(-1)
        target_scores = target_scores * norm_align_metric
        return target_labels, target_bboxes, target_scores, fg_mask.bool(), target_gt_idx


@contextlib.contextmanager
def use(cls=CenterRadiusAssigner, **kwargs):
    """Within the block, every detection loss the engine builds (``v8DetectionLoss``) uses ``cls(**kwargs)``.

    The engine's loss module looks ``TaskAlignedAssigner`` up in its own namespace when a criterion is built, so this
    swaps that name for the block's duration (single process; the trainer builds its criterion lazily, in the first
    training step, and the validator reuses the model's). For a wiring without a patch see the module docstring.
    """
    from ultralytics.utils import loss as engine_loss

    engine = engine_loss.TaskAlignedAssigner

    def make(*a, **kw):
        return cls(*a, **{**kw, **kwargs})

    engine_loss.TaskAlignedAssigner = make
    try:
        yield
    finally:
        engine_loss.TaskAlignedAssigner = engine
