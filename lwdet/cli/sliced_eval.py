"""mAP on full-size images: sliced inference vs whole-image letterbox inference (engine metrics, COCO check).

python -m lwdet.cli.sliced_eval runs/neon/yolov5n --images data/val/images --tile 320 --overlap 64
python -m lwdet.cli.sliced_eval best_ncnn_model --images big/ --labels big-labels/ --json out.json
"""

from __future__ import annotations

import json
from pathlib import Path

from lwdet.cli import common

COLUMNS = (
    ("mode", "{:<9}"),
    ("images", "{:>6}"),
    ("boxes", "{:>6}"),
    ("detections", "{:>10}"),
    ("precision", "{:>9.3f}"),
    ("recall", "{:>6.3f}"),
    ("mAP50", "{:>6.3f}"),
    ("mAP50-95", "{:>8.3f}"),
    ("coco_mAP50", "{:>10.3f}"),
    ("coco_mAP50-95", "{:>13.3f}"),
    ("ms_per_image", "{:>12.0f}"),
)


def build_parser():
    p = common.parser("lwdet sliced-eval", __doc__)
    p.add_argument("model", type=common.existing_path, help="ncnn export folder, run folder or .pt weights")
    p.add_argument("--images", required=True, type=common.existing_path, help="full-size image or folder of them")
    p.add_argument(
        "--labels",
        type=common.existing_path,
        help="folder of YOLO label files <stem>.txt (default: the images/ -> labels/ sibling)",
    )
    p.add_argument("--tile", type=int, default=640, metavar="SIZE", help="tile size in px, as at import")
    p.add_argument("--overlap", type=int, default=64, metavar="PX", help="tile overlap in px, as at import")
    p.add_argument("--full-image", action="store_true", help="also run the whole image once (large objects)")
    p.add_argument("--imgsz", type=common.imgsz, help="model input size (PyTorch; default 640; ncnn: its export's)")
    p.add_argument("--conf", type=float, default=0.001)
    p.add_argument("--iou", type=float, default=0.7, help="NMS IoU inside each tile (the engine's val default)")
    p.add_argument("--max-det", type=int, default=3000, help="most detections kept per image")
    p.add_argument("--threads", type=int, default=1, help="ncnn threads")
    p.add_argument("--no-coco", action="store_true", help="skip the pycocotools cross-check")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the table and settings as JSON")
    p.add_argument("--trust-checkpoint", action="store_true", help="load a .pt outside lwdet's allow-list")
    return p


def _body(args) -> int:
    from lwdet.sliced_eval import evaluate, load_detector, table
    from lwdet.tilegrid import check_tile

    check_tile(args.tile, args.overlap)  # before the model loads
    det = load_detector(args.model, args.imgsz, args.threads, args.trust_checkpoint)
    results = evaluate(
        det, args.images, args.labels, args.tile, args.overlap, args.full_image, args.conf, args.iou, args.max_det
    )
    rows = table(results, coco=not args.no_coco)
    cols = [(k, f) for k, f in COLUMNS if k in rows[0]]
    print(" ".join(f"{k:>{len(f.format(rows[0][k]))}}" if k != "mode" else f"{k:<9}" for k, f in cols))
    for row in rows:
        print(" ".join(f.format(row[k]) for k, f in cols))
    if args.json:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    return common.entry(build_parser, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
