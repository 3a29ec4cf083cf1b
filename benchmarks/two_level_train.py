"""Train a detector with the engine's assigner or lwdet's (lwdet.assign), for the two-level neck study (issue 37).

lwdet's training (``lwdet.training.train``, the same as ``lwdet train``) with engine ``key=value`` overrides (lr0,
epochs, imgsz, device, seed, ...); ``--assigner lwdet`` builds every detection loss with
:class:`lwdet.assign.CenterRadiusAssigner` (``lwdet.assign.use``: single process, so not with several GPUs).

    python benchmarks/two_level_train.py yolov5n-lcnet_050-p45pan-slimhead --assigner lwdet \
        --project runs/two-level --name lcnet-p45-lwdet epochs=50 imgsz=160 lr0=0.01 device=0
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a shipped model name (with or without .yaml) or a model YAML file")
    p.add_argument("overrides", nargs="*", help="engine training arguments as key=value (epochs=50 lr0=0.02 ...)")
    p.add_argument("--data", default="datasets/fmnist-bench-s.yaml")
    p.add_argument("--assigner", choices=("engine", "lwdet"), default="engine")
    p.add_argument("--min-target", type=float, default=0.1, help="lwdet assigner: the target floor")
    p.add_argument("--radius", type=float, default=1.5, help="lwdet assigner: fallback radius, in strides")
    p.add_argument(
        "--box-init",
        type=float,
        help="DFL heads start predicting this many strides per side (the engine's init: 7.5) (two_level.dfl_bias)",
    )
    p.add_argument("--project", default="runs/two-level")
    p.add_argument("--name")
    args = p.parse_intermixed_args(argv)

    import contextlib

    from lwdet.training import new_run_dir, train

    overrides = {}
    for kv in args.overrides:
        key, sep, value = kv.partition("=")
        if not sep:
            p.error(f"expected key=value, got {kv!r}")
        overrides[key] = _value(value)
    model = args.model if args.model.endswith(".yaml") else args.model + ".yaml"
    name = args.name or f"{Path(model).stem}-{args.assigner}"
    if args.box_init is not None:  # every Detect built in this process gets the bias after the engine's bias_init
        from two_level import dfl_bias  # beside this script (its folder is first on sys.path)
        from ultralytics.nn.modules.head import Detect

        engine_bias_init = Detect.bias_init

        def bias_init(self):
            engine_bias_init(self)
            if self.reg_max > 1:
                for seq in self.cv2:
                    seq[-1].bias.data[:] = dfl_bias(self.reg_max, args.box_init)

        Detect.bias_init = bias_init
        name += f"-box{args.box_init:g}" if args.name is None else ""
    run_dir = new_run_dir(Path(args.project), name, explicit=args.name is not None)
    ctx = contextlib.nullcontext()
    if args.assigner == "lwdet":
        from lwdet.assign import use

        ctx = use(min_target=args.min_target, radius=args.radius)
    with ctx:
        metrics = train(model, args.data, run_dir, **overrides)
    print(f"run: {run_dir}")
    print("best.pt: " + "  ".join(f"{k.split('/')[-1]}={v:.4f}" for k, v in metrics.items() if "metrics/" in k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
