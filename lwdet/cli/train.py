"""Train a YOLOv5n-style detector with a swapped backbone: lwdet train --backbone ghostnet [--neck aspp] [lr0=0.016].

Also ``python train.py ...`` in a clone. Trailing ``key=value`` tokens are the engine's training arguments
(``lwdet.hyp``: any key of its ``default.yaml`` that no flag here owns). Writes a run folder PROJECT/NAME (weights/best.pt, results.csv,
TensorBoard logs); never overwrites one (a taken name gets -2, -3, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

from lwdet.cli import common

PROG = "lwdet train"


def build_parser():
    from lwdet.backbones import BACKBONES, FAMILIES
    from lwdet.data.augment import AUG_PRESETS
    from lwdet.models import BASELINE, HEAD_KINDS, NECKS

    ap = common.parser(PROG, __doc__)
    ap.add_argument(
        "--backbone",
        default="ghostnet",
        help=f"{BASELINE}, a family ({', '.join(FAMILIES)}) or a width ({', '.join(BACKBONES)})",
    )
    ap.add_argument(
        "--neck",
        default="sppf",
        choices=NECKS,
        help="sppf / aspp: that block at P5 feeding the CSP-PAN; lite / nano: the lite PAN (depthwise, "
        "ReLU, width 64 / 48); p45: the lite PAN at P4/P5 only (two detection levels)",
    )
    ap.add_argument(
        "--head",
        default="yolo",
        choices=HEAD_KINDS,
        help="yolo: the engine's Detect; slim: SlimDetect (the engine's full convs at width 32: the fast detectors' "
        "head, docs/head-ablation); lite: LiteDetect (depthwise); nano: LiteDetect without DFL",
    )
    ap.add_argument(
        "--rep",
        action="store_true",
        help="re-parameterizable neck and head (RepConv: 3x3 + 1x1 + identity-BN branches in training, one conv "
        "once exported; for --neck lite / p45 with --head slim)",
    )
    ap.add_argument(
        "--model",
        type=Path,
        help="train this model YAML instead of --backbone/--neck: a file, or an "
        "engine name such as yolo26n.yaml, yolo11n.yaml, yolov8n.yaml",
    )
    ap.add_argument(
        "--data",
        type=common.existing_file,
        help="data YAML (default: the embedded set fmnist-det, generated into ./datasets on first use)",
    )
    ap.add_argument("--epochs", type=common.positive_int, default=30, help="training epochs")
    ap.add_argument("--imgsz", type=common.imgsz, default=320, help="square input size, a multiple of 32")
    ap.add_argument("--batch", type=common.positive_int, default=16, help="images per batch")
    ap.add_argument("--device", default="cpu", help="cpu, mps, 0 or 0,1 (several GPUs train with the engine's DDP)")
    ap.add_argument("--workers", type=int, default=2, help="data loader workers")
    ap.add_argument("--seed", type=int, default=0, help="random seed")
    ap.add_argument("--close-mosaic", type=int, help="no mosaic in the last N epochs (default: 10%% of epochs, 1-10)")
    ap.add_argument(
        "--optimizer",
        choices=("SGD", "AdamW", "Adam", "auto"),
        help="SGD at lr0 0.01 (default: lwdet's from-scratch recipe); auto: the engine's choice (AdamW at a small "
        "learning rate for runs under 10k iterations)",
    )
    ap.add_argument("--warmup-epochs", type=float, help="LR warmup epochs (default: 3%% of --epochs, 1-3)")
    ap.add_argument("--project", type=Path, help="runs folder (default: runs/<data name>)")
    ap.add_argument("--name", help="run name (default: the model name; -2, -3, ... if taken)")
    ap.add_argument("--resume", action="store_true", help="continue the run PROJECT/NAME from its last.pt")
    ap.add_argument(
        "--backbone-weights", type=common.existing_file, help="local file with the backbone's classifier weights"
    )
    ap.add_argument(
        "--pretrained",
        action="store_true",
        help="ImageNet backbone weights from timm's / torchvision's cache, downloaded there when online",
    )
    ap.add_argument(
        "--teacher",
        type=common.existing_path,
        help="distil from this run folder (its weights/best.pt) or .pt, with the engine's distillation",
    )
    ap.add_argument("--distill-weight", type=float, help="weight of the distillation loss (default: the engine's 6.0)")
    ap.add_argument("--no-plots", action="store_true", help="skip the engine's plots (faster on a CPU)")
    ap.add_argument("--trust-checkpoint", action="store_true", help="use a last.pt or teacher outside the allow-list")
    ap.add_argument("--skip-bad", action="store_true", help="train on the images without errors (default: stop)")
    ap.add_argument(
        "--aug",
        default="engine",
        choices=AUG_PRESETS,
        help="engine: the engine's augmentation; topdown: + vertical flips and 90-degree rotations "
        "(aerial / top-down images)",
    )
    ap.add_argument(
        "engine_args",
        nargs="*",
        metavar="KEY=VALUE",
        help="the engine's training arguments, as its CLI takes them: lr0=0.016 scale=0.5 cos_lr=True (any key of "
        "ultralytics/cfg/default.yaml; keys with a flag here are set by the flag)",
    )
    return ap


def parse_args(argv=None):
    ap = build_parser()
    args = ap.parse_intermixed_args(argv)
    from lwdet.hyp import HypError, engine_overrides, parse_engine_args

    try:
        args.engine_args = engine_overrides(parse_engine_args(args.engine_args, "key=value"), "key=value")
    except HypError as e:
        ap.error(str(e))
    if args.resume and args.engine_args:
        ap.error("--resume continues a run with its own training arguments; key=value is not taken there")
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


def _train(args) -> int:
    import lwdet  # noqa: F401  (sets the engine offline before it is imported)
    from lwdet.data import DEFAULT_DATA
    from lwdet.data.check import format_report
    from lwdet.models import model_yaml
    from lwdet.training import DataCheckError, TrainingInterrupted, new_run_dir, train

    data = args.data or DEFAULT_DATA
    yaml_path = args.model or model_yaml(args.backbone, args.neck, args.head, args.rep)
    project = args.project or Path("runs") / data.stem
    if args.resume:
        run_dir = project.resolve() / args.name
    else:
        run_dir = new_run_dir(project, args.name or yaml_path.stem, explicit=args.name is not None)
    overrides = dict(
        epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, device=args.device, workers=args.workers, seed=args.seed
    )
    if args.resume:  # the run's own settings hold; pass on only what this command line changed
        defaults = vars(build_parser().parse_args([]))
        overrides = {k: v for k, v in overrides.items() if v != defaults[k]}
    if args.no_plots:
        overrides["plots"] = False
    for key in ("close_mosaic", "warmup_epochs", "optimizer"):  # unset: lwdet.training's defaults (budget_defaults)
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.aug != "engine":
        from lwdet.data.augment import augment_overrides

        overrides.update(augment_overrides(args.aug))
    overrides.update(args.engine_args)  # checked in parse_args; an explicit value beats --aug's preset
    try:
        metrics = train(
            yaml_path,
            data,
            run_dir,
            resume=args.resume,
            skip_bad=args.skip_bad,
            trust_checkpoint=args.trust_checkpoint,
            backbone_weights=args.backbone_weights,
            pretrained=args.pretrained,
            teacher=args.teacher,
            distill_weight=args.distill_weight,
            **overrides,
        )
    except TrainingInterrupted as e:
        print(f"{e}\ncontinue with: {PROG} --project {run_dir.parent} --name {run_dir.name} --resume")
        return 130 if e.signal_name == "SIGINT" else 143
    except DataCheckError as e:
        print(format_report(e.report), file=sys.stderr)
        print(f"error: {e}; fix them, or pass --skip-bad to train without those images", file=sys.stderr)
        return common.EXIT_USAGE
    print(f"\nrun:         {run_dir}")
    print(f"weights:     {run_dir / 'weights' / 'best.pt'}")
    print(f"results CSV: {run_dir / 'results.csv'}")
    print("best.pt:     " + "  ".join(f"{k.split('/')[-1]}={v:.4f}" for k, v in metrics.items() if "metrics/" in k))
    print(f"TensorBoard: tensorboard --logdir {run_dir.parent}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    common.setup_logging()
    return common.run(_train, args)
