"""Where to tap P5 on MobileNetV4: timm's last stride-32 feature (a 1x1 conv to 960 channels, 480 at width 0.5, kept
for the classifier) or the block before it (128 / 64 channels), as lwdet registers it.

Each variant is the backbone plus the lite PAN's P5 lateral (1x1 conv to 64 channels, what the neck does first with
P5), exported through lwdet's pnnx path and timed in ncnn interleaved in one process (a noisy moment slows both).

python benchmarks/p5_tap.py --imgsz 320 --threads 1 --loops 50
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import lwdet  # noqa: F401
from lwdet.backbones import TimmFeatures, build_backbone
from lwdet.edge.bench.loops import _set_cpu
from lwdet.edge.runner import NcnnParamNet
from lwdet.parts import _export_graph

LATERAL = 64  # the lite PAN's width


class WithLateral(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone, self.lateral = backbone, nn.Conv2d(backbone.channels[2], LATERAL, 1)

    def forward(self, x):
        p3, p4, p5 = self.backbone(x)
        return p3, p4, self.lateral(p5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--loops", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    _set_cpu(args.threads, 0)
    im = torch.zeros(1, 3, args.imgsz, args.imgsz)
    variants = {}
    for name in ("mobilenetv4_conv_small_050", "mobilenetv4_conv_small"):
        variants[f"{name} P5 = timm's last feature"] = TimmFeatures(name)
        variants[f"{name} P5 = block before (lwdet)"] = build_backbone(name)
    with tempfile.TemporaryDirectory(prefix="lwdet-p5tap-") as tmp:
        nets, channels = {}, {}
        for i, (label, backbone) in enumerate(variants.items()):
            param = _export_graph(WithLateral(backbone).eval(), im, Path(tmp) / f"v{i}")
            nets[label] = NcnnParamNet(param, (args.imgsz, args.imgsz, 3), threads=args.threads)
            channels[label] = backbone.channels
        mats = {k: n.input_mat() for k, n in nets.items()}
        times = {k: [] for k in nets}
        for i in range(args.warmup + args.loops):
            for k, net in nets.items():
                t0 = time.perf_counter()
                net.run(mats[k], fetch=False)
                if i >= args.warmup:
                    times[k].append((time.perf_counter() - t0) * 1e3)
        for net in nets.values():
            net.close()
    print(f"ncnn, {args.threads} thread(s), {args.imgsz} px, {args.loops} interleaved loops: backbone + P5 lateral")
    print(f"{'variant':<55} {'channels':>16} {'min ms':>8} {'median ms':>10}")
    for k, v in times.items():
        print(f"{k:<55} {str(channels[k]):>16} {min(v):8.2f} {statistics.median(v):10.2f}")


if __name__ == "__main__":
    main()
