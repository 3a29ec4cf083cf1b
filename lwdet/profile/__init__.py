"""Static cost of a detector or a backbone's ImageNet classifier: params, multiply-adds, memory-access cost, peak
activation memory and file sizes, from one batch-1 inference forward on CPU.

    lwdet profile models/yaml/yolov5n-ghostnet_100.yaml --imgsz 320 --nc 5
    lwdet profile runs/exp/yolov5n-ghostnet_100 --json profile.json      # run folder -> weights/best.pt
    lwdet profile --backbone shufflenetv2_100 --classifier --imgsz 224
    lwdet profile yolo26n.yaml --imgsz 640 --nc 80                          # the engine's own detectors

Conventions (each report repeats them under ``conventions``):

- **MACs** (multiply-adds) of every ``nn.Conv2d`` and ``nn.Linear`` call, counted by forward hooks:
  ``output elements x (C_in / groups) x k_h x k_w`` for a conv, so a depthwise conv costs ``k_h x k_w`` per output
  and a grouped conv ``C_in / groups x k_h x k_w``; ``output elements x in_features`` for a linear layer. Bias adds,
  BatchNorm (folded into the conv at inference), activations and other element-wise ops are not counted. This is
  the convention of the MobileNet, ShuffleNet V2, GhostNet and MnasNet papers (their "FLOPs" are multiply-adds).
- **GFLOPs** is the engine's unit: 2 x MACs / 1e9. ``engine_gflops`` is the engine's own ``get_flops`` on the same
  model, for reference; it reads higher because it also charges BatchNorm (thop: 4 ops per element) and because it
  extrapolates from a 32-pixel-high proxy input, which scales size-independent costs (squeeze-excite blocks that
  pool with ``x.mean``) with the image area.
- **Memory-access cost** as defined for ShuffleNet V2 (Ma et al., ECCV 2018, Sec. 2, G1): per op, the elements it
  reads and writes. Conv / linear: input feature map + output feature map + weights (and bias). Element-wise ops
  (every aten op tagged ``pointwise``: activations, residual add, squeeze-excite multiply): every tensor input +
  the output. Other data-moving ops (concat, pooling and means, upsampling, copies, softmax): likewise. Not counted:
  BatchNorm (folded into the conv by every runtime lwdet exports to), views (reshape, transpose, split, expand
  move no data) and tensor factories. Reported in MB (10^6 bytes) at fp32, 4 bytes per element.
- **Peak activation memory**: the largest total size of tensor storages alive at one time during one batch-1
  inference forward (eval mode, no autograd): the input plus every tensor the forward creates (activations, the
  head's anchors), parameters and buffers excluded. Tracked at the aten-op level: each storage an op creates counts
  from its creation until its last tensor is freed. Kernel-internal scratch (im2col, oneDNN workspaces) is not
  visible there and not included.

Layers: ``counting`` (the forward hooks and the aten-level tracker), ``profiles`` (the ``Profile`` record and the
detector / classifier / backbone entry points), ``text`` (the console report).
"""

from __future__ import annotations

from lwdet.profile.counting import BYTES_PER_ELEMENT, CATEGORIES, OpCost, conv_category, conv_macs, measure
from lwdet.profile.profiles import (
    CONVENTIONS,
    Profile,
    build_classifier,
    file_sizes,
    profile_backbone,
    profile_classifier,
    profile_detector,
    profile_model,
    resolve_detector,
)
from lwdet.profile.text import format_profile

__all__ = [
    "BYTES_PER_ELEMENT",
    "CATEGORIES",
    "CONVENTIONS",
    "OpCost",
    "Profile",
    "build_classifier",
    "conv_category",
    "conv_macs",
    "file_sizes",
    "format_profile",
    "measure",
    "profile_backbone",
    "profile_classifier",
    "profile_detector",
    "profile_model",
    "resolve_detector",
]
