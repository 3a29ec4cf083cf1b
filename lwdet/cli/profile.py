"""Static cost of a detector or a backbone: params, multiply-adds, memory-access cost, peak memory, file sizes.

    lwdet profile models/yaml/yolov5n-ghostnet_100.yaml --imgsz 320 --nc 5
    lwdet profile runs/exp/yolov5n-ghostnet_100 --json profile.json      # run folder -> weights/best.pt
    lwdet profile --backbone shufflenetv2_100 --classifier --imgsz 224

The conventions (what MACs, memory-access cost and peak memory count) are in lwdet.profile's docstring and
repeated in every JSON report.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lwdet.cli import common

PROG = "lwdet profile"


def build_parser():
    ap = common.parser(PROG, __doc__)
    ap.add_argument("source", nargs="?", help="model YAML, .pt, run folder or export (omit with --backbone)")
    ap.add_argument("--backbone", help="profile a registered backbone instead (see --classifier)")
    ap.add_argument("--classifier", action="store_true", help="with --backbone: its full ImageNet classifier")
    ap.add_argument("--imgsz", type=common.imgsz, help="square input size (default: 320; 224 with --classifier)")
    ap.add_argument("--nc", type=common.positive_int, help="classes of a model YAML (default: the YAML's)")
    ap.add_argument("--json", type=Path, help="write the full profile (with per-op costs) here")
    ap.add_argument("--trust-checkpoint", action="store_true", help="load a .pt outside lwdet's class allow-list")
    ap.add_argument("--no-layers", action="store_true", help="leave the per-block table out of the console report")
    return ap


def _profile(args) -> int:
    from lwdet.profile import format_profile, profile_backbone, profile_classifier, profile_detector

    if bool(args.source) == bool(args.backbone):
        raise ValueError("give either a model source or --backbone NAME")
    if args.classifier and not args.backbone:
        raise ValueError("--classifier needs --backbone NAME")
    if args.backbone:
        imgsz = args.imgsz or (224 if args.classifier else 320)
        profile = (profile_classifier if args.classifier else profile_backbone)(args.backbone, imgsz)
    else:
        profile = profile_detector(args.source, args.imgsz or 320, args.nc, args.trust_checkpoint)
    print(format_profile(profile, layers=not args.no_layers))
    if args.json:
        print(f"\nwrote {profile.save(args.json)}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    return common.run(_profile, args)
