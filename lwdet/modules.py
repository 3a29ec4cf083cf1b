"""The bridge between model-YAML rows and modules: which names a row may use and how each derives its channels.

The engine's ``parse_model`` knows output channels only for its own modules (anything else silently gets
``c2 = c1``) and resolves names through ``globals()``/``eval``. lwdet parses rows itself: every module a YAML
may name is listed here with one rule that builds it from its input channels and says its output channels,
so a width mistake fails at build time with the row named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from ultralytics.nn.modules import C3, SPPF, C2f, C3Ghost, Concat, Conv, Detect, DWConv, GhostConv, Index, RepConv

from lwdet.backbones import BACKBONES, build_backbone
from lwdet.heads import LiteDetect, SlimDetect
from lwdet.necks import ASPP


class LegacyDetect(Detect):
    """The engine's Detect head with the YOLOv5/v8 classification branch (what the engine builds for yolov5n).

    The engine selects that branch by setting the class attribute ``Detect.legacy`` while parsing; a subclass
    fixes it here instead of mutating shared state.
    """

    legacy = True


class DetectV8(Detect):
    """The engine's Detect head as YOLOv8 / YOLO11 / YOLO26 build it: two full 3x3 convs on the box branch, two
    depthwise-separable stages on the class branch (``legacy`` off), DFL, no one-to-one branch."""

    legacy = False


class LegacySPPF(SPPF):
    """YOLOv5's SPPF: the engine's SPPF with its first conv activated, as the engine builds 3-argument rows."""

    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__(c1, c2, k)
        self.cv1.act = nn.SiLU()


@dataclass
class Built:
    """A built layer and its output channels (an int, or a list for multi-output layers such as backbones)."""

    module: nn.Module
    channels: int | list[int]
    args: list  # the constructor arguments, for the summary


class RowError(ValueError):
    """A problem with one row's arguments; the parser adds file, line and row."""


@dataclass(frozen=True)
class ModuleDef:
    """How to build one YAML module name: ``build(c_in, args, n, ctx) -> Built``."""

    build: Callable
    repeats: bool = False  # the module takes the row's repeat count as its own ``n`` argument
    multi_input: bool = False  # 'from' may list several layers


def _check_ints(args, what):
    for a in args:
        if not isinstance(a, int) or isinstance(a, bool) or a <= 0:
            raise RowError(f"{what} must be positive integers, got {args!r}")


def _conv_like(cls, repeats=False):
    """Modules called as cls(c1, c2, *rest): output channels = first argument."""

    def build(c1, args, n, ctx):
        if not args:
            raise RowError(f"{cls.__name__} needs its output channels as first argument")
        _check_ints(args[:1], "output channels")
        full = [c1, args[0], *([n] if repeats else []), *args[1:]]
        return Built(cls(*full), args[0], full)

    return ModuleDef(build, repeats=repeats)


def _rep_conv(depthwise: bool) -> ModuleDef:
    """[c2, k=3, s=1]: the engine's RepConv (RepVGG: a 3x3 and a 1x1 branch, each with BN, plus an identity BN branch
    when input and output match and s == 1), full or depthwise (groups = gcd(c1, c2), as DWConv); it trains with its
    branches and ``DetectionModel.fuse`` folds them into one 3x3 conv."""

    def build(c1, args, n, ctx):
        if not args:
            raise RowError("RepConv needs its output channels as first argument")
        c2, k, s = (list(args) + [3, 1][len(args) - 1 :])[:3]
        _check_ints([c2, k, s], "RepConv's [channels, kernel, stride]")
        if k != 3:
            raise RowError(f"RepConv folds into a 3x3 conv: kernel must be 3, got {k}")
        g = math.gcd(c1, c2) if depthwise else 1
        return Built(RepConv(c1, c2, 3, s, 1, g, bn=c1 == c2 and s == 1), c2, [c1, c2, 3, s, 1, g])

    return ModuleDef(build)


def _upsample(c1, args, n, ctx):
    size, scale, mode = (list(args) + [None, 2, "nearest"][len(args) :])[:3]
    if mode not in ("nearest", "bilinear"):
        raise RowError(f"upsample mode must be 'nearest' or 'bilinear', got {mode!r}")
    return Built(nn.Upsample(size, scale, mode), c1, [size, scale, mode])


def _concat(c_in, args, n, ctx):
    return Built(Concat(*(args or [1])), sum(c_in), list(args or [1]))


def _classes(args, ctx) -> int:
    """A head row's first argument: 'nc' (the model's class count) or a number."""
    nc = ctx["nc"] if (args or ["nc"])[0] == "nc" else args[0]
    _check_ints([nc], "number of classes")
    return nc


def _detect(c_in, args, n, ctx):
    nc = _classes(args, ctx)
    return Built(LegacyDetect(nc, 16, False, list(c_in)), 0, [nc, list(c_in)])


def _detect_v8(c_in, args, n, ctx):
    nc = _classes(args, ctx)
    return Built(DetectV8(nc, 16, False, list(c_in)), 0, [nc, list(c_in)])


def _lite_detect(c_in, args, n, ctx):
    """[nc, reg_max, depth, kernel, shared]: the depthwise-separable head; reg_max 16 is the engine's DFL, 1 regresses
    box sides directly; depth separable stages of kernel x kernel per branch (1, 3), one stack for both if shared."""
    nc = _classes(args, ctx)
    reg_max, depth, kernel, shared = (list(args[1:]) + [16, 1, 3, False][len(args[1:]) :])[:4]
    for value, what in ((reg_max, "reg_max"), (depth, "depth"), (kernel, "kernel")):
        _check_ints([value], what)
    if kernel % 2 == 0:
        raise RowError(f"LiteDetect's kernel must be odd, got {kernel}")
    if not isinstance(shared, bool):
        raise RowError(f"LiteDetect's 'shared' must be true or false, got {shared!r}")
    head = LiteDetect(nc, reg_max, list(c_in), depth, kernel, shared)
    return Built(head, 0, [nc, reg_max, list(c_in), depth, kernel, shared])


def _slim_detect(c_in, args, n, ctx):
    """[nc, width, rep]: the engine's two full 3x3 convs per branch at ``width`` channels (default 32); ``rep``: as
    re-parameterizable RepConv blocks (default false)."""
    nc = _classes(args, ctx)
    width = args[1] if len(args) > 1 else 32
    rep = args[2] if len(args) > 2 else False
    _check_ints([width], "width")
    if not isinstance(rep, bool):
        raise RowError(f"SlimDetect's 'rep' must be true or false, got {rep!r}")
    return Built(SlimDetect(nc, 16, list(c_in), width, rep), 0, [nc, 16, list(c_in), width, rep])


def _backbone(c1, args, n, ctx):
    if not args or args[0] not in BACKBONES:
        from lwdet.backbones import suggest

        name = args[0] if args else None
        raise RowError(f"backbone {name!r} is not known{suggest(name, BACKBONES)} Known: {', '.join(BACKBONES)}")
    if c1 != 3:
        raise RowError(f"a backbone takes the 3-channel image as input, got {c1} channels")
    module = build_backbone(args[0], ctx.get("backbone_weights"))
    return Built(module, list(module.channels), [args[0]])


def _index(c_in, args, n, ctx):
    """Pick one output of a multi-output layer; the row states its channels, checked against the source."""
    if not isinstance(c_in, list):
        raise RowError("Index must read a multi-output layer (a backbone)")
    if len(args) != 2:
        raise RowError(f"Index takes [channels, index], got {args!r}")
    declared, i = args
    if not isinstance(i, int) or not 0 <= i < len(c_in):
        raise RowError(f"index {i!r} out of range for a source with {len(c_in)} outputs")
    if declared != c_in[i]:
        raise RowError(f"declares {declared} channels but the source's output {i} has {c_in[i]} (outputs: {c_in})")
    return Built(Index(i), c_in[i], [i])


MODULES: dict[str, ModuleDef] = {
    "Backbone": ModuleDef(_backbone),
    "Index": ModuleDef(_index),
    "Conv": _conv_like(Conv),
    "DWConv": _conv_like(DWConv),
    "RepConv": _rep_conv(depthwise=False),
    "RepDWConv": _rep_conv(depthwise=True),
    "GhostConv": _conv_like(GhostConv),
    "C3": _conv_like(C3, repeats=True),
    "C3Ghost": _conv_like(C3Ghost, repeats=True),
    "C2f": _conv_like(C2f, repeats=True),
    "SPPF": _conv_like(LegacySPPF),
    "ASPP": _conv_like(ASPP),
    "nn.Upsample": ModuleDef(_upsample),
    "Concat": ModuleDef(_concat, multi_input=True),
    "Detect": ModuleDef(_detect, multi_input=True),
    "DetectV8": ModuleDef(_detect_v8, multi_input=True),
    "LiteDetect": ModuleDef(_lite_detect, multi_input=True),
    "SlimDetect": ModuleDef(_slim_detect, multi_input=True),
}
HEADS = ("Detect", "DetectV8", "LiteDetect", "SlimDetect")  # modules a model's last row may be
