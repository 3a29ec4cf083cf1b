"""Why the two-level (P4/P5, strides 16/32) lite neck collapses where the three-level one learns (issue 37, point 1).

Two measurements, both on fmnist-bench-s (or any YOLO-format set given with --data):

1. ``sizes``: the objects' box width / height / min side in input pixels after the engine's letterbox to ``--imgsz``
   (read from the label files and the images' sizes), binned against the strides 8 / 16 / 32.
2. ``assign``: the engine's own loss (``model.init_criterion()``, i.e. ``v8DetectionLoss`` and its
   ``TaskAlignedAssigner``) run on batches built by the engine's dataset (``build_yolo_dataset``: ``--augment``
   gives the training pipeline with mosaic, otherwise the validation letterbox), with the assigner wrapped so that
   every call is recorded. Per object: the anchors that are candidates (anchor centre inside the box the engine
   floors to ``stride_val``), the positives after top-k and after the many-to-one conflict resolution, per level, and
   the classification target they get (``target_scores``: the IoU-normalised alignment, the only signal the class
   branch gets for that object). ``--weights`` runs it on a trained checkpoint instead of a fresh model;
   ``--assigner lwdet`` on :class:`lwdet.assign.CenterRadiusAssigner` (the fix) instead of the engine's.

    python benchmarks/two_level.py sizes --imgsz 160 320
    python benchmarks/two_level.py assign --imgsz 160 320 --models yolov5n-lcnet_050-p45pan-slimhead \
        yolov5n-lcnet_050-litepan-slimhead --images 256 [--augment] [--weights RUN/weights/last.pt]

Writes Markdown tables on stdout and, with ``--json``, the numbers to a file.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

BIN_EDGES = (0, 4, 8, 12, 16, 24, 32, 64, 1e9)  # min side, input px
STRIDES = (8, 16, 32)


def bin_label(i: int) -> str:
    lo, hi = BIN_EDGES[i], BIN_EDGES[i + 1]
    return f">={lo:g}" if hi > 1e8 else f"{lo:g}-{hi:g}"


def bin_index(v: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(BIN_EDGES, v, side="right") - 1, 0, len(BIN_EDGES) - 2)


def data_root(data: str) -> tuple[Path, dict]:
    from lwdet.data import ensure_dataset

    d = ensure_dataset(data)
    return Path(d["path"]), d


# ---------------------------------------------------------------------------------------------------- 1. sizes
def split_sizes(root: Path, split: str, imgsz: int) -> np.ndarray:
    """(n, 2) box width / height in input px after the letterbox of the longer side to ``imgsz``."""
    from PIL import Image

    out = []
    for img in sorted((root / "images" / split).iterdir()):
        lbl = root / "labels" / split / (img.stem + ".txt")
        if not lbl.is_file():
            continue
        rows = np.loadtxt(lbl, ndmin=2)
        if not rows.size:
            continue
        with Image.open(img) as im:
            w, h = im.size
        r = imgsz / max(w, h)
        out.append(np.stack([rows[:, 3] * w * r, rows[:, 4] * h * r], 1))
    return np.concatenate(out) if out else np.zeros((0, 2))


def cmd_sizes(args) -> dict:
    root, _ = data_root(args.data)
    res = {}
    for imgsz in args.imgsz:
        for split in args.splits:
            wh = split_sizes(root, split, imgsz)
            mn = wh.min(1)
            counts = np.bincount(bin_index(mn), minlength=len(BIN_EDGES) - 1)
            pct = {q: [float(np.percentile(x, q)) for x in (wh[:, 0], wh[:, 1], mn)] for q in (5, 25, 50, 75, 95)}
            below = {s: float((mn < s).mean()) for s in STRIDES}
            res[f"{split}@{imgsz}"] = dict(n=len(mn), bins=counts.tolist(), pct=pct, below_stride=below)
    print("\n### Object sizes (input px after the letterbox)\n")
    print(
        "| split @ imgsz | boxes | min side p5 / p25 / p50 / p75 / p95 | w p50 | h p50 | min side < 8 | < 16 | < 32 |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for k, v in res.items():
        p = v["pct"]
        ms = " / ".join(f"{p[q][2]:.1f}" for q in (5, 25, 50, 75, 95))
        b = v["below_stride"]
        print(f"| {k} | {v['n']} | {ms} | {p[50][0]:.1f} | {p[50][1]:.1f} | {b[8]:.0%} | {b[16]:.0%} | {b[32]:.0%} |")
    print("\n| split @ imgsz | " + " | ".join(bin_label(i) for i in range(len(BIN_EDGES) - 1)) + " |")
    print("|---|" + "---:|" * (len(BIN_EDGES) - 1))
    for k, v in res.items():
        n = v["n"]
        print(f"| {k} | " + " | ".join(f"{c} ({c / n:.0%})" for c in v["bins"]) + " |")
    return res


# --------------------------------------------------------------------------------------------------- 2. assign
class Recorder:
    """Wraps an assigner; calls it unchanged and keeps what it decided, with the candidate masks beside it."""

    def __init__(self, assigner):
        self.assigner = assigner
        self.records: list[dict] = []

    def __getattr__(self, name):  # the loss reads nothing else from it, but be transparent
        return getattr(self.assigner, name)

    def __call__(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra):
        import torch

        out = self.assigner(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra)
        _, _, target_scores, fg_mask, target_gt_idx = out
        with torch.no_grad():
            cand = self.assigner.select_candidates_in_gts(anc_points, gt_bboxes, mask_gt) & mask_gt.bool()
            # the same rule without the engine's floor of small sides to stride_val: centre strictly inside the box
            lt, rb = gt_bboxes.unsqueeze(2).chunk(2, 3)
            strict = (
                (anc_points[:, 0] > lt[..., 0])
                & (anc_points[:, 1] > lt[..., 1])
                & (rb[..., 0] > anc_points[:, 0])
                & (rb[..., 1] > anc_points[:, 1])
            ) & mask_gt.bool()
            # the assigner's own intermediate steps again (bs / n_max_boxes are still set from the call above):
            # the top-k positives before the many-to-one conflict resolution, and the alignment metric of the candidates
            a = self.assigner
            if gt_bboxes.shape[1]:
                topk_pos, align, _ = a.get_pos_mask(pd_scores, pd_bboxes, gt_labels, gt_bboxes, anc_points, mask_gt)
                align_max = (align * cand).amax(-1)
            else:
                topk_pos, align_max = cand, torch.zeros(cand.shape[:2])
        self.records.append(
            dict(
                gt_bboxes=gt_bboxes.cpu(),
                mask_gt=mask_gt.bool().squeeze(-1).cpu(),
                cand=cand.cpu(),
                strict=strict.cpu(),
                topk=topk_pos.bool().cpu(),
                align_max=align_max.float().cpu(),
                fg=fg_mask.cpu(),
                gt_idx=target_gt_idx.cpu(),
                score=target_scores.sum(-1).float().cpu(),
            )
        )
        return out


def level_slices(model, imgsz: int) -> list[tuple[int, int, int]]:
    """(stride, start, end) of each level's anchors in the loss's flattened anchor order."""
    out, start = [], 0
    for s in model.stride.tolist():
        n = (imgsz // int(s)) ** 2
        out.append((int(s), start, start + n))
        start += n
    return out


def per_object(rec: dict, levels) -> list[dict]:
    """One row per real object of one recorded batch."""
    rows = []
    g = rec["gt_bboxes"]
    for b, j in rec["mask_gt"].nonzero().tolist():
        x1, y1, x2, y2 = g[b, j].tolist()
        row = dict(w=x2 - x1, h=y2 - y1, align0=bool(rec["align_max"][b, j] <= 0))
        mine = rec["fg"][b] & (rec["gt_idx"][b] == j)
        for s, a, e in levels:
            row[f"cand{s}"] = int(rec["cand"][b, j, a:e].sum())
            row[f"strict{s}"] = int(rec["strict"][b, j, a:e].sum())
            row[f"pos{s}"] = int(mine[a:e].sum())
            row[f"topk{s}"] = int(rec["topk"][b, j, a:e].sum())
            sc = rec["score"][b, a:e][mine[a:e]]
            row[f"score{s}"] = float(sc.max()) if sc.numel() else 0.0
        rows.append(row)
    return rows


def engine_loader(root: Path, data: dict, split: str, imgsz: int, augment: bool, batch: int, seed: int):
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.utils import LOGGER

    LOGGER.setLevel(40)
    cfg = get_cfg(overrides=dict(imgsz=imgsz, task="detect", cache=False))
    eng = {"names": data["names"], "nc": len(data["names"]), "channels": 3}
    ds = build_yolo_dataset(cfg, str(root / "images" / split), batch, eng, mode="train" if augment else "val")
    random.seed(seed)
    np.random.seed(seed)
    order = list(range(len(ds)))
    random.Random(seed).shuffle(order)
    for i in range(0, len(order), batch):
        yield ds.collate_fn([ds[k] for k in order[i : i + batch]])


def build(model_name: str, weights: str | None, nc: int):
    import torch
    from ultralytics.cfg import get_cfg

    from lwdet.models import build_model

    if weights:
        ck = torch.load(weights, map_location="cpu", weights_only=False)
        model = (ck.get("ema") or ck["model"]).float()
    else:
        torch.manual_seed(0)
        yml = model_name if model_name.endswith(".yaml") else model_name + ".yaml"
        model = build_model(yml, nc=nc, verbose=False)
    model.args = get_cfg()  # the engine's default hyperparameters (box 7.5, cls 0.5, dfl 1.5)
    return model


def dfl_bias(reg_max: int, bins: float):
    """DFL logits ``-c * k`` (k = 0 .. reg_max-1) whose softmax expects ``bins``: the output bias that makes a fresh
    head predict ``bins`` strides per side (the engine's init, 2.0 on every bin, is uniform: 7.5 bins, so boxes 15
    strides wide)."""
    import torch

    k = torch.arange(reg_max, dtype=torch.float64)
    lo, hi = -20.0, 20.0  # the expectation falls from 7.5 (c = 0) towards 0 as c grows
    for _ in range(100):
        c = (lo + hi) / 2
        lo, hi = (c, hi) if float((torch.softmax(-c * k, 0) * k).sum()) > bins else (lo, c)
    return (-c * k).float().repeat(4)


def set_box_init(model, bins: float) -> None:
    """Give a fresh model's DFL box branches the bias of :func:`dfl_bias`."""
    head = model.model[-1]
    for seq in head.cv2:
        seq[-1].bias.data[:] = dfl_bias(head.reg_max, bins)


def cmd_assign(args) -> dict:
    import torch

    root, data = data_root(args.data)
    torch.set_num_threads(args.threads)
    res = {}
    for imgsz in args.imgsz:
        for mi, name in enumerate(args.models):
            weights = args.weights[mi] if args.weights else None
            model = build(name, weights, len(data["names"]))
            if args.box_init is not None:
                set_box_init(model, args.box_init)
            model.train()  # the training forward (BN in batch mode), as in the trainer
            crit = model.init_criterion()
            if args.assigner == "lwdet":
                from lwdet.assign import CenterRadiusAssigner

                a = crit.assigner
                crit.assigner = CenterRadiusAssigner(
                    topk=a.topk, num_classes=a.num_classes, alpha=a.alpha, beta=a.beta, stride=a.stride, topk2=a.topk2
                )
            rec = Recorder(crit.assigner)
            crit.assigner = rec
            levels = level_slices(model, imgsz)
            rows, seen, losses = [], 0, []
            for batch in engine_loader(root, data, args.split, imgsz, args.augment, args.batch, args.seed):
                img = batch["img"].float() / 255
                with torch.no_grad():
                    preds = model(img)
                    loss, items = crit(preds, batch)
                losses.append([float(v) for v in (items.values() if isinstance(items, dict) else items)])
                rows += per_object(rec.records.pop(), levels)
                seen += len(img)
                if seen >= args.images:
                    break
            tag = f" {Path(weights).parent.parent.name}" if weights else ""
            tag += f" box-init {args.box_init:g}" if args.box_init is not None else ""
            tag += " lwdet assigner" if args.assigner == "lwdet" else ""
            key = f"{name}{tag}@{imgsz}"
            res[key] = dict(rows=rows, levels=[s for s, _, _ in levels], loss=np.mean(losses, 0).tolist())
            print(
                f"# {key}: {len(rows)} objects in {seen} images, loss/batch {np.round(np.mean(losses, 0), 3)}",
                file=sys.stderr,
            )
    report_assign(res)
    return res


def report_assign(res: dict) -> None:
    print("\n### Positives per object (the engine's TaskAlignedAssigner inside its loss)\n")
    print(
        "| model @ imgsz | objects | zero candidates, strict centre rule | zero candidates, engine (floored) "
        "| alignment 0 on every candidate | zero top-k positives | zero positives after conflicts "
        "| positives / object (mean) | per level: share of objects with >= 1 positive "
        "| mean cls target (max over its positives) | loss box / cls / dfl |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for key, v in res.items():
        rows, lv = v["rows"], v["levels"]
        n = len(rows)
        zs = sum(all(r[f"strict{s}"] == 0 for s in lv) for r in rows) / n
        zc = sum(all(r[f"cand{s}"] == 0 for s in lv) for r in rows) / n
        zp = sum(all(r[f"pos{s}"] == 0 for s in lv) for r in rows) / n
        za = sum(r["align0"] for r in rows) / n
        zt = sum(all(r[f"topk{s}"] == 0 for s in lv) for r in rows) / n
        mp = np.mean([sum(r[f"pos{s}"] for s in lv) for r in rows])
        per = ", ".join(f"s{s} {np.mean([r[f'pos{s}'] > 0 for r in rows]):.0%}" for s in lv)
        sc = np.mean([max(r[f"score{s}"] for s in lv) for r in rows])
        loss = " / ".join(f"{x:.2f}" for x in v["loss"])
        print(
            f"| {key} | {n} | {zs:.1%} | {zc:.1%} | {za:.1%} | {zt:.1%} | {zp:.1%} | {mp:.2f} | {per} | {sc:.3f} | {loss} |"
        )

    print(
        "\n### By object size (min side, input px): share of objects with ZERO positives (strict-centre zero "
        "candidates in brackets), mean cls target\n"
    )
    nb = len(BIN_EDGES) - 1
    print("| model @ imgsz | " + " | ".join(bin_label(i) for i in range(nb)) + " |")
    print("|---|" + "---|" * nb)
    for key, v in res.items():
        rows, lv = v["rows"], v["levels"]
        mn = np.array([min(r["w"], r["h"]) for r in rows])
        bi = bin_index(mn)
        cells = []
        for i in range(nb):
            sel = [r for r, k in zip(rows, bi) if k == i]
            if not sel:
                cells.append("-")
                continue
            zp = np.mean([all(r[f"pos{s}"] == 0 for s in lv) for r in sel])
            zs = np.mean([all(r[f"strict{s}"] == 0 for s in lv) for r in sel])
            sc = np.mean([max(r[f"score{s}"] for s in lv) for r in sel])
            cells.append(f"n={len(sel)}: {zp:.0%} ({zs:.0%}), {sc:.3f}")
        print(f"| {key} | " + " | ".join(cells) + " |")

    print("\n### Which level the positives land on, by object size (share of the size bin's positives)\n")
    print("| model @ imgsz | " + " | ".join(bin_label(i) for i in range(nb)) + " |")
    print("|---|" + "---|" * nb)
    for key, v in res.items():
        rows, lv = v["rows"], v["levels"]
        bi = bin_index(np.array([min(r["w"], r["h"]) for r in rows]))
        cells = []
        for i in range(nb):
            sel = [r for r, k in zip(rows, bi) if k == i]
            tot = sum(sum(r[f"pos{s}"] for s in lv) for r in sel)
            cells.append("-" if not tot else " ".join(f"s{s}:{sum(r[f'pos{s}'] for r in sel) / tot:.0%}" for s in lv))
        print(f"| {key} | " + " | ".join(cells) + " |")


# --------------------------------------------------------------------------------------------------- 3. curves
def cmd_curves(args) -> dict:
    """Per run folder (results.csv): the best val mAP50 / mAP50-95, the first epoch with mAP50 >= 0.02 (out of the
    plateau), and the train losses at a few epochs."""
    import csv

    res = {}
    print(
        "\n| run | epochs | best mAP50 | best mAP50-95 | first epoch mAP50 >= 0.02 | train box / cls at 5, 10, last |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for run in args.runs:
        path = Path(run) / "results.csv"
        if not path.is_file():
            print(f"| {run} | (no results.csv) | | | | |")
            continue
        rows = [
            {k.strip(): float(v) for k, v in r.items() if k and v not in (None, "")}
            for r in csv.DictReader(path.open())
        ]
        m50 = [r["metrics/mAP50(B)"] for r in rows]
        m95 = [r["metrics/mAP50-95(B)"] for r in rows]
        first = next((int(r["epoch"]) for r in rows if r["metrics/mAP50(B)"] >= 0.02), None)
        at = [i for i in (4, 9, len(rows) - 1) if i < len(rows)]
        losses = ", ".join(f"{rows[i]['train/box_loss']:.2f} / {rows[i]['train/cls_loss']:.2f}" for i in at)
        res[run] = dict(epochs=len(rows), best50=max(m50), best5095=max(m95), first=first)
        print(f"| {run} | {len(rows)} | {max(m50):.4f} | {max(m95):.4f} | {first or '-'} | {losses} |")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("sizes", "assign", "curves"))
    p.add_argument("runs", nargs="*", help="curves: run folders")
    p.add_argument("--data", default="datasets/fmnist-bench-s.yaml")
    p.add_argument("--imgsz", type=int, nargs="+", default=[160, 320])
    p.add_argument("--splits", nargs="+", default=["train", "val"], help="sizes: the splits to read")
    p.add_argument("--split", default="train", help="assign: the split the batches come from")
    p.add_argument(
        "--models",
        nargs="+",
        default=[
            "yolov5n-repghostnet_050-p45pan-slimhead",
            "yolov5n-repghostnet_050-litepan-slimhead",
            "yolov5n-lcnet_050-p45pan-slimhead",
            "yolov5n-lcnet_050-litepan-slimhead",
        ],
    )
    p.add_argument("--weights", nargs="+", help="assign: checkpoints, one per --models entry")
    p.add_argument("--assigner", choices=("engine", "lwdet"), default="engine")
    p.add_argument("--box-init", type=float, help="assign: DFL bias giving this many strides per side at init")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--augment", action="store_true", help="assign: the training pipeline (mosaic) instead of letterbox")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the numbers here")
    args = p.parse_intermixed_args(argv)
    if args.weights and len(args.weights) != len(args.models):
        p.error("--weights needs one checkpoint per --models entry")
    res = {"sizes": cmd_sizes, "assign": cmd_assign, "curves": cmd_curves}[args.what](args)
    if args.json:
        Path(args.json).write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
