"""Train a YOLOv5n-style detector with a swapped backbone: python train.py --backbone ghostnet [--neck aspp]."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import lwdet  # noqa: F401  (sets the engine offline before it is imported)
from lwdet.backbones import BACKBONES, FAMILIES
from lwdet.data import DEFAULT_DATA
from lwdet.models import BASELINE, HEAD_KINDS, NECKS, ModelConfigError, model_yaml


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--backbone", default="ghostnet",
                    help=f"{BASELINE}, a family ({', '.join(FAMILIES)}) or a width ({', '.join(BACKBONES)})")
    ap.add_argument("--neck", default="sppf", choices=NECKS,
                    help="sppf / aspp: that block at P5 feeding the CSP-PAN; lite / nano: the lite PAN (depthwise, "
                         "ReLU, width 64 / 48); p45: the lite PAN at P4/P5 only (two detection levels)")
    ap.add_argument("--head", default="yolo", choices=HEAD_KINDS, help="yolo: the engine's Detect; lite: LiteDetect (depthwise); nano: LiteDetect without DFL")
    ap.add_argument("--model", type=Path, help="train this model YAML instead of --backbone/--neck: a file, or an "
                    "engine name such as yolo26n.yaml, yolo11n.yaml, yolov8n.yaml")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data YAML (default: the embedded dataset)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--imgsz", type=int, default=320, help="square input size, a multiple of 32")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cpu", help="cpu, 0, 0,1 (several GPUs train with the engine's DDP)")
    ap.add_argument("--workers", type=int, default=2, help="data loader workers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--project", type=Path, default=None, help="runs folder (default: runs/<data name>)")
    ap.add_argument("--name", default=None, help="run name (default: the model name; -2, -3, ... if taken)")
    ap.add_argument("--resume", action="store_true", help="continue the run PROJECT/NAME from its last.pt")
    ap.add_argument("--backbone-weights", type=Path, help="local file with the backbone's classifier weights")
    ap.add_argument("--no-plots", action="store_true", help="skip the engine's plots (faster on a CPU)")
    ap.add_argument("--trust-checkpoint", action="store_true", help="resume from a last.pt outside the allow-list")
    ap.add_argument("--skip-bad", action="store_true", help="train on the images without errors (default: stop)")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        ap.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.imgsz < 32 or args.imgsz % 32:
        ap.error(f"--imgsz must be a positive multiple of 32 (the largest stride), got {args.imgsz}")
    if args.batch < 1:
        ap.error(f"--batch must be >= 1, got {args.batch}")
    for flag in ("data", "backbone_weights"):
        path = getattr(args, flag)
        if path is not None and not path.is_file():
            ap.error(f"--{flag.replace('_', '-')}: file not found: {path}")
    if args.device not in ("cpu", "mps"):
        import torch

        ids = args.device.replace("cuda:", "").split(",")
        if not all(i.strip().isdigit() for i in ids):
            ap.error(f"--device must be cpu, mps or GPU indices like 0 or 0,1; got {args.device!r}")
        if max(int(i) for i in ids) >= torch.cuda.device_count():
            ap.error(f"--device {args.device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if args.resume and args.name is None:
        ap.error("--resume needs --name (and --project if it was set) of the run to continue")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from lwdet.data.check import format_report
    from lwdet.training import DataCheckError, TrainingInterrupted, new_run_dir, train

    try:
        yaml_path = args.model or model_yaml(args.backbone, args.neck, args.head)
        project = args.project or Path("runs") / args.data.stem
        if args.resume:
            run_dir = project.resolve() / args.name
        else:
            run_dir = new_run_dir(project, args.name or yaml_path.stem, explicit=args.name is not None)
        overrides = dict(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, device=args.device,
                         workers=args.workers, seed=args.seed)
        if args.resume:  # the run's own settings hold; pass on only what this command line changed
            defaults = vars(parse_args([]))
            overrides = {k: v for k, v in overrides.items() if v != defaults[k]}
        if args.no_plots:
            overrides["plots"] = False
        metrics = train(yaml_path, args.data, run_dir, resume=args.resume, skip_bad=args.skip_bad,
                        trust_checkpoint=args.trust_checkpoint,
                        backbone_weights=args.backbone_weights, **overrides)
    except TrainingInterrupted as e:
        print(f"{e}\ncontinue with: python train.py --project {run_dir.parent} --name {run_dir.name} --resume")
        return 130 if e.signal_name == "SIGINT" else 143
    except DataCheckError as e:
        print(format_report(e.report), file=sys.stderr)
        print(f"error: {e}; fix them, or pass --skip-bad to train without those images", file=sys.stderr)
        return 2
    except (ModelConfigError, ValueError, FileNotFoundError, FileExistsError, KeyError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    print(f"\nrun:         {run_dir}")
    print(f"weights:     {run_dir / 'weights' / 'best.pt'}")
    print(f"results CSV: {run_dir / 'results.csv'}")
    print("best.pt:     " + "  ".join(f"{k.split('/')[-1]}={v:.4f}" for k, v in metrics.items() if "metrics/" in k))
    print(f"TensorBoard: tensorboard --logdir {run_dir.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
