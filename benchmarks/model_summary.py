"""Params and GFLOPs (the engine's summary: 2 x multiply-adds) of every shipped model YAML at one input size.

python benchmarks/model_summary.py --imgsz 320 --nc 5
python benchmarks/model_summary.py --imgsz 320 --deployed --match repghostnet,lcnet   # fused: what export deploys
"""

import argparse

import lwdet  # noqa: F401
from lwdet.models import LwdetModel, shipped_yamls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--nc", type=int, default=5, help="classes (the embedded dataset has 5)")
    ap.add_argument(
        "--deployed",
        action="store_true",
        help="count the graph export deploys: re-parameterizable branches folded, BatchNorm fused (model.fuse())",
    )
    ap.add_argument("--match", default="", help="only YAMLs whose name contains one of these (comma-separated)")
    args = ap.parse_args()
    from ultralytics.utils.torch_utils import get_flops

    print(f"| model | params (M) | GFLOPs @{args.imgsz} |")
    print("|---|---:|---:|")
    for path in shipped_yamls():
        if args.match and not any(m in path.stem for m in args.match.split(",")):
            continue
        model = LwdetModel(path, nc=args.nc, verbose=False)
        if args.deployed:
            model = model.eval().fuse(verbose=False)
        params = sum(p.numel() for p in model.parameters())
        print(f"| {path.stem} | {params / 1e6:.3f} | {get_flops(model, args.imgsz):.2f} |")


if __name__ == "__main__":
    main()
