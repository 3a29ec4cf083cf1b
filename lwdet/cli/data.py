"""Bring real datasets into the YOLO layout and check datasets for bad input.

  lwdet data import --format voc|coco|csv SRC DST [--images DIR] [--split 0.8,0.2 | --val-list FILE]
                    [--seed 0] [--tile SIZE --overlap PX --min-visible 0.5 --keep-empty]
                    [--difficult drop|keep|mask] [--rename OLD=NEW,...] [--classes A,B]
  lwdet data check DATA_YAML [--json OUT] [--max-issues 20] [--imgsz 640] [--no-cache] [--workers N] [--no-build]

Exit status: 0 done / clean, 1 check found errors (warnings alone: 0), 2 bad invocation or input.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from lwdet.cli import common

PROG = "lwdet data"


def _ratios(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected train,val[,test] fractions such as 0.8,0.2, got {text!r}") from None


def build_parser():
    ap = common.Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    imp = sub.add_parser(
        "import",
        help="convert VOC / COCO / CSV annotations into a new YOLO dataset folder",
        formatter_class=common.HelpFormatter,
    )
    imp.add_argument("--format", required=True, choices=("voc", "coco", "csv"), help="annotation format")
    imp.add_argument("src", type=common.existing_path, help="VOC folder, COCO JSON file or CSV file")
    imp.add_argument("dst", type=Path, help="new dataset folder (must not exist)")
    imp.add_argument(
        "--images", type=Path, help="coco: folder the file_name entries are relative to (default: the JSON's folder)"
    )
    how = imp.add_mutually_exclusive_group()
    how.add_argument(
        "--split", type=_ratios, default=(0.8, 0.2), help="train,val[,test] fractions by image (default: 0.8,0.2)"
    )
    how.add_argument(
        "--val-list", type=common.existing_file, help="file naming the val images, one a line; the rest is train"
    )
    imp.add_argument("--seed", type=int, default=0, help="seed of the --split shuffle")
    imp.add_argument(
        "--tile", type=common.positive_int, metavar="SIZE", help="cut images larger than SIZE into SIZE x SIZE tiles"
    )
    imp.add_argument("--overlap", type=int, default=0, metavar="PX", help="tile overlap in pixels")
    imp.add_argument(
        "--min-visible", type=float, default=0.5, help="keep a box in a tile if this fraction of it is inside"
    )
    imp.add_argument("--keep-empty", action="store_true", help="keep tiles without boxes as negatives")
    imp.add_argument(
        "--difficult",
        choices=("drop", "keep", "mask"),
        default="drop",
        help="VOC difficult / COCO crowd boxes: drop (as the engine's own converters), keep as "
        "ordinary boxes, or mask (paint the region grey, drop the box); see docs/data.md",
    )
    imp.add_argument("--rename", metavar="OLD=NEW[,...]", help="rename or merge classes")
    imp.add_argument("--classes", metavar="A,B", help="keep only these classes (after --rename), in this order")
    chk = sub.add_parser(
        "check", help="check a dataset's images and labels; reads only", formatter_class=common.HelpFormatter
    )
    chk.add_argument("data_yaml", type=Path, help="the dataset's data YAML")
    chk.add_argument(
        "--json", type=Path, metavar="OUT", help="also write the full report as JSON (outside the dataset)"
    )
    chk.add_argument("--max-issues", type=int, default=20, help="issues listed on the console")
    chk.add_argument("--imgsz", type=common.imgsz, default=640, help="training input size for the tiny-object warning")
    chk.add_argument("--no-cache", action="store_true", help="decode every image (default: reuse ~/.cache/lwdet/check)")
    chk.add_argument("--workers", type=common.positive_int, help="decoding threads (default: CPUs, at most 8)")
    chk.add_argument(
        "--no-build",
        action="store_true",
        help="a data YAML with a build section (lwdet_synth / lwdet_bench / lwdet_import) whose folder is missing: "
        "report it instead of building it first",
    )
    return ap


def parse_args(argv=None) -> argparse.Namespace:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.command == "import":
        if args.images is not None and args.format != "coco":
            ap.error("--images is only for --format coco")
        if args.tile is None and (args.overlap or args.keep_empty or args.min_visible != 0.5):
            ap.error("--overlap, --min-visible and --keep-empty need --tile")
    return args


def _import(args) -> int:
    from lwdet.data.importers import import_dataset, parse_rename
    from lwdet.data.tiling import TileOptions

    tiling = TileOptions(args.tile, args.overlap, args.min_visible, args.keep_empty) if args.tile else None
    s = import_dataset(
        args.format,
        args.src,
        args.dst,
        images=args.images,
        split=args.split,
        val_list=args.val_list,
        seed=args.seed,
        tiling=tiling,
        difficult=args.difficult,
        rename=parse_rename(args.rename) if args.rename else None,
        classes=args.classes.split(",") if args.classes else None,
    )
    for note in s.notes:
        print(f"note: {note}")
    for split, st in s.splits.items():
        extra = ""
        if tiling:
            extra = (
                f" from {st.get('source_images', 0)} source images ({st.get('empty_tiles_dropped', 0)} empty "
                f"tiles dropped, {st.get('boxes_in_no_tile', 0)} boxes under --min-visible in every tile)"
            )
        print(f"{split:<5} {st.get('images', 0)} images, {st.get('boxes', 0)} boxes{extra}")
    print(f"classes {len(s.names)}: {', '.join(s.names)}")
    print(f"wrote   {s.data_yaml}\nnext    lwdet data check {s.data_yaml}")
    return 0


def _check(args) -> int:
    from lwdet.data import build_missing
    from lwdet.data.check import check_dataset, format_report

    if not args.no_build and (built := build_missing(args.data_yaml)) is not None:
        print(f"built   {built} (the data YAML's build section; the check reads only)")

    report = check_dataset(args.data_yaml, imgsz=args.imgsz, cache=not args.no_cache, workers=args.workers)
    if args.json is not None:
        out = args.json.expanduser().absolute()
        if out.resolve().is_relative_to(report.root):
            raise ValueError(f"--json: refusing to write inside the dataset folder {report.root}: {out}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    print(format_report(report, args.max_issues))
    return 0 if report.ok else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    return common.run(_import if args.command == "import" else _check, args)
