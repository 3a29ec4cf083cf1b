"""Params and GFLOPs (the engine's summary: 2 x multiply-adds) of every shipped model YAML at one input size.

python benchmarks/model_summary.py --imgsz 320 --nc 5
"""

import argparse

import lwdet  # noqa: F401
from lwdet.models import LwdetModel, shipped_yamls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--nc", type=int, default=5, help="classes (the embedded dataset has 5)")
    args = ap.parse_args()
    from ultralytics.utils.torch_utils import get_flops

    print(f"| model | params (M) | GFLOPs @{args.imgsz} |")
    print("|---|---:|---:|")
    for path in shipped_yamls():
        model = LwdetModel(path, nc=args.nc, verbose=False)
        params = sum(p.numel() for p in model.parameters())
        print(f"| {path.stem} | {params / 1e6:.3f} | {get_flops(model, args.imgsz):.2f} |")


if __name__ == "__main__":
    main()
