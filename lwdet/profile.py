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
"""

from __future__ import annotations

import json
import logging
import sys
import weakref
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from lwdet.backbones import BackboneSpec, get_spec

LOGGER = logging.getLogger(__name__)

BYTES_PER_ELEMENT = 4  # memory-access cost and weight sizes are stated at fp32
MB = 1e6
CATEGORIES = ("conv1x1", "conv_kxk", "depthwise", "linear", "elementwise", "other")
CONVENTIONS = {
    "macs": "multiply-adds of Conv2d and Linear (out x C_in/groups x kh x kw; out x in_features); bias, BatchNorm, "
            "activations and element-wise ops not counted (the papers' convention)",
    "gflops": "2 x MACs / 1e9 (the engine's GFLOPs unit)",
    "engine_gflops": "ultralytics get_flops on the same model: also charges BatchNorm and extrapolates from a proxy "
                     "input (overcounts size-independent squeeze-excite costs)",
    "memory_access": "ShuffleNetV2 MAC: elements read + written per op (conv/linear: input + output + weights and "
                     "bias; element-wise and other data-moving ops: inputs + output); BatchNorm (folded), views and "
                     "tensor factories not counted; MB = 1e6 bytes at 4 bytes per element",
    "peak_activation": "largest total size of tensor storages alive at once during one batch-1 eval forward "
                       "(input + tensors the forward creates; parameters and buffers excluded; kernel scratch "
                       "not included)",
}

# aten ops that are not memory traffic of the deployed graph: BatchNorm is folded into the conv before it runs.
_FOLDED = {"native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit", "batch_norm"}
# copies are tagged pointwise in aten, but they are data movement (a channel shuffle's .contiguous(), dtype casts)
_COPIES = {"clone", "_to_copy", "copy_", "contiguous"}
# ops whose tensor arguments are read for their shape or dtype only
_FACTORIES = {"new_empty", "new_zeros", "new_ones", "new_full", "empty_like", "zeros_like", "ones_like", "full_like",
              "_local_scalar_dense"}


@dataclass
class OpCost:
    """One counted op: a conv / linear call, or an aten op (summed over its calls within one module)."""

    module: str  # qualified module name ("" for the root)
    op: str  # "Conv2d 3x3/2 g=16", "Linear", or the aten op name ("add_", "cat", ...)
    category: str  # one of CATEGORIES
    macs: int = 0
    elements: int = 0  # memory-access cost in elements
    calls: int = 1


@dataclass
class Profile:
    """Everything ``profile_*`` measures; ``to_dict`` / ``save`` give the JSON form."""

    name: str
    kind: str  # "detector" | "classifier" | "backbone" | "model"
    source: str | None
    imgsz: list[int]  # [H, W]
    params: int
    macs: int
    gflops: float  # 2 x macs / 1e9
    engine_gflops: float | None
    memory_access_mb: float
    breakdown: dict[str, dict]  # category -> {"ops", "macs", "memory_access_mb"}
    peak_activation_mb: float
    peak_activation_at: str  # module running when the peak was reached
    weights_mb: dict[str, float]  # {"fp32": params x 4, "fp16": params x 2} in MB
    layers: list[dict] = field(default_factory=list)  # per top-level block
    ops: list[dict] = field(default_factory=list)  # per counted op
    files: list[dict] = field(default_factory=list)  # {"path", "format", "fp16", "bytes"} of what exists
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS))

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, file: str | Path) -> Path:
        file = Path(file)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return file


# ------------------------------------------------------------------------------------------------------- counting
def _is_pointwise(func) -> bool:
    if torch.Tag.pointwise in func.tags:
        return True
    name = func.overloadpacket.__name__  # in-place variants (hardswish_) are not always tagged; their base is
    base = getattr(torch.ops.aten, name[:-1], None) if name.endswith("_") else None
    return base is not None and any(torch.Tag.pointwise in getattr(base, o).tags for o in base.overloads())


def conv_category(m: nn.Conv2d) -> str:
    """'depthwise' (groups == C_in > 1), 'conv1x1' or 'conv_kxk' (grouped convs go by their kernel)."""
    if m.groups > 1 and m.groups == m.in_channels:
        return "depthwise"
    return "conv1x1" if tuple(m.kernel_size) == (1, 1) else "conv_kxk"


def conv_macs(m: nn.Conv2d, out: torch.Tensor) -> int:
    """Multiply-adds of one conv call: output elements x (C_in / groups) x k_h x k_w."""
    kh, kw = m.kernel_size
    return out.numel() * (m.in_channels // m.groups) * kh * kw


class _Tracker(TorchDispatchMode):
    """Sees every aten op of the forward: tracks live storages (peak memory) and counts non-conv memory access."""

    def __init__(self, static: set[int], baseline: int):
        super().__init__()
        self.static = static  # storages of parameters, buffers and the input: not created by the forward
        self.stack: list[str] = []  # names of the modules running, innermost last
        self.inside_counted = 0  # > 0 while a Conv2d / Linear runs (its hook accounts for it)
        self.live: dict[int, list[int]] = {}  # storage address -> [bytes, live tensors]
        self.current = self.peak = baseline
        self.peak_at = ""
        self.ops: dict[tuple[str, str], OpCost] = {}
        self._finalizers: list[weakref.finalize] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        for t in outs:
            self._track(t)
        if not self.inside_counted and outs:
            self._account(func, args, kwargs, outs)
        return out

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key, nbytes = storage.data_ptr(), storage.nbytes()
        if not nbytes or key in self.static:
            return
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [nbytes, 0]
            self.current += nbytes
            if self.current > self.peak:
                self.peak, self.peak_at = self.current, self.stack[-1] if self.stack else ""
        entry[1] += 1
        self._finalizers.append(weakref.finalize(t, self._release, key))

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                self.current -= entry[0]
                del self.live[key]

    def _account(self, func, args, kwargs, outs) -> None:
        name = func.overloadpacket.__name__
        if func.is_view or name in _FOLDED or name in _FACTORIES:
            return
        ins = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if not ins:  # a factory (arange, zeros): creates data, reads none
            return
        category = "elementwise" if name not in _COPIES and _is_pointwise(func) else "other"
        elements = sum(t.numel() for t in ins) + sum(t.numel() for t in outs)
        self.add(self.stack[-1] if self.stack else "", name, category, 0, elements)

    def add(self, module: str, op: str, category: str, macs: int, elements: int) -> None:
        """Count one call; calls of the same op in the same module add up (in order of first call)."""
        cost = self.ops.get((module, op))
        if cost is None:
            self.ops[(module, op)] = OpCost(module, op, category, macs, elements)
        else:
            cost.macs += macs
            cost.elements += elements
            cost.calls += 1

    def close(self) -> None:
        for f in self._finalizers:
            f.detach()


def _storages(tensors) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in tensors}


def measure(model: nn.Module, x: torch.Tensor) -> tuple[list[OpCost], int, str]:
    """(counted ops, peak activation bytes, module at the peak) of one eval forward of ``model`` on ``x``."""
    was_training = model.training
    model.eval()
    static = _storages([*model.parameters(), *model.buffers(), x])
    tracker = _Tracker(static, baseline=x.untyped_storage().nbytes())

    names: dict[int, list[str]] = defaultdict(list)  # a module shared by several parents has several names
    for name, m in model.named_modules(remove_duplicate=False):
        names[id(m)].append(name)

    def name_of(m: nn.Module) -> str:
        """The name under the running parent (the engine's Conv rows share one SiLU instance)."""
        candidates = names[id(m)]
        parent = tracker.stack[-1] if tracker.stack else None
        return next((n for n in candidates if len(candidates) == 1 or n.rpartition(".")[0] == parent), candidates[0])

    def pre(m):
        def hook(_m, _inp):
            tracker.stack.append(name_of(m))
            tracker.inside_counted += isinstance(m, (nn.Conv2d, nn.Linear))

        return hook

    def post(m):
        def hook(_m, inp, out):
            name = tracker.stack.pop()
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                tracker.inside_counted -= 1
                weights = sum(p.numel() for p in m.parameters(recurse=False))
                elements = inp[0].numel() + out.numel() + weights
                if isinstance(m, nn.Conv2d):
                    kh, kw = m.kernel_size
                    op = f"Conv2d {kh}x{kw}/{m.stride[0]} g={m.groups}"
                    tracker.add(name, op, conv_category(m), conv_macs(m, out), elements)
                else:
                    tracker.add(name, "Linear", "linear", out.numel() * m.in_features, elements)

        return hook

    handles = []
    for m in model.modules():
        handles += [m.register_forward_pre_hook(pre(m)), m.register_forward_hook(post(m))]
    try:
        with torch.no_grad(), tracker:
            model(x)
    finally:
        for h in handles:
            h.remove()
        tracker.close()
        model.train(was_training)
    return list(tracker.ops.values()), tracker.peak, tracker.peak_at


# --------------------------------------------------------------------------------------------------------- reports
def _groups(model: nn.Module) -> dict[str, nn.Module]:
    """Top-level blocks to report on: root children, with containers of blocks (timm 'blocks', the YAML's rows)
    opened one level."""
    groups = {}
    for name, child in model.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and any(any(True for _ in c.children()) for c in child):
            groups.update({f"{name}.{k}": c for k, c in child.named_children()})
        else:
            groups[name] = child
    return groups


def _group_of(module: str, names: list[str]) -> str:
    for g in names:
        if module == g or module.startswith(g + "."):
            return g
    return "(root)"


def _type_name(m: nn.Module) -> str:
    """The model YAML's module name of a row ('C3', 'nn.Upsample'), else the class name."""
    row_type = getattr(m, "type", None)  # nn.Module.type is also a method
    return row_type if isinstance(row_type, str) else type(m).__name__


def _mb(elements: int) -> float:
    return elements * BYTES_PER_ELEMENT / MB


def _engine_gflops(model: nn.Module, hw: tuple[int, int]) -> float | None:
    from ultralytics.utils.torch_utils import get_flops

    return get_flops(model, list(hw)) or None  # 0.0 means thop failed


def check_imgsz(imgsz, multiple: int = 32) -> tuple[int, int]:
    """(H, W) from an int or a pair, each a positive multiple of ``multiple`` (the largest stride)."""
    hw = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    if len(hw) != 2 or not all(isinstance(v, int) and v > 0 and v % multiple == 0 for v in hw):
        raise ValueError(f"imgsz must be a positive multiple of {multiple} or a pair of them, got {imgsz!r}")
    return hw


def profile_model(model: nn.Module, imgsz: int | tuple[int, int], *, name: str = "model", kind: str = "model",
                  source: str | None = None, engine_gflops: bool = True) -> Profile:
    """Profile any module that takes one (1, 3, H, W) image; see the module docstring for what is measured."""
    hw = check_imgsz(imgsz)
    ops, peak, peak_at = measure(model, torch.zeros(1, 3, *hw))
    params = sum(p.numel() for p in model.parameters())
    macs = sum(o.macs for o in ops)
    elements = sum(o.elements for o in ops)
    breakdown = {c: {"ops": 0, "macs": 0, "memory_access_mb": 0.0} for c in CATEGORIES}
    for o in ops:
        b = breakdown[o.category]
        b["ops"] += o.calls
        b["macs"] += o.macs
        b["memory_access_mb"] += _mb(o.elements)
    groups = _groups(model)
    names = sorted(groups, key=len, reverse=True)  # longest prefix wins
    per_group = defaultdict(lambda: [0, 0])
    for o in ops:
        g = per_group[_group_of(o.module, names)]
        g[0] += o.macs
        g[1] += o.elements
    layers = [
        {"name": g, "type": _type_name(m), "params": sum(p.numel() for p in m.parameters()),
         "macs": per_group[g][0], "memory_access_mb": _mb(per_group[g][1])}
        for g, m in groups.items()
    ]
    if "(root)" in per_group:  # functional ops in the root's own forward (a classifier's flatten / mean)
        layers.append({"name": "(root)", "type": "functional", "params": 0, "macs": per_group["(root)"][0],
                       "memory_access_mb": _mb(per_group["(root)"][1])})
    return Profile(
        name=name, kind=kind, source=source, imgsz=list(hw), params=params, macs=macs, gflops=2 * macs / 1e9,
        engine_gflops=_engine_gflops(model, hw) if engine_gflops else None, memory_access_mb=_mb(elements),
        breakdown=breakdown, peak_activation_mb=peak / MB, peak_activation_at=peak_at,
        weights_mb={"fp32": params * 4 / MB, "fp16": params * 2 / MB}, layers=layers,
        ops=[{**asdict(o), "memory_access_mb": _mb(o.elements)} for o in ops],
    )


# ------------------------------------------------------------------------------------------------------ detectors
def resolve_detector(source: str | Path, nc: int | None = None, trust: bool = False) -> tuple[nn.Module, Path | None]:
    """(detector, weights file or None) from a model YAML, a .pt checkpoint, a run folder (weights/best.pt) or an
    export (a *_ncnn_model folder or a .onnx file, profiled through the weights it was exported from)."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") and (path.is_file() or path.parent == Path(".")):  # or a shipped/engine name
        from lwdet.models import build_model

        return build_model(path, nc=nc, verbose=False), None
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    weights = _weights_of(path)
    if nc is not None:
        LOGGER.warning("--nc %d ignored: %s fixes its number of classes", nc, weights)
    from ultralytics.nn.tasks import load_checkpoint

    from lwdet.checkpoints import check_checkpoint

    if not trust:
        check_checkpoint(weights)  # a .pt is a pickle: only allow-listed classes before the engine unpickles it
    model, _ = load_checkpoint(weights)
    return model, weights


def _weights_of(path: Path) -> Path:
    from lwdet.export import NCNN_SUFFIX, RUNTIME_FILE

    if path.is_dir() and path.name.endswith(NCNN_SUFFIX):  # lwdet.export writes beside the weights, names them
        runtime = path / RUNTIME_FILE
        name = json.loads(runtime.read_text(encoding="utf-8"))["source"]["weights"] if runtime.is_file() else None
        weights = path.parent / (name or path.name[: -len(NCNN_SUFFIX)] + ".pt")
    elif path.is_dir():
        weights = path / "weights" / "best.pt"
        if not weights.is_file():
            raise FileNotFoundError(f"{path} is not a run folder: {weights} does not exist")
    elif path.suffix == ".onnx":
        weights = path.with_suffix(".pt")
    elif path.suffix == ".pt":
        weights = path
    else:
        raise ValueError(f"{path}: expected a model YAML, a .pt file, a run folder or an export")
    if not weights.is_file():
        raise FileNotFoundError(f"{path}: the weights it was exported from are not there ({weights})")
    return weights


def file_sizes(folder: str | Path) -> list[dict]:
    """Sizes of the weights and exports in ``folder``: .pt, .onnx, ncnn .bin (fp16 read from lwdet's parity report
    where there is one, else guessed from bytes per parameter by the caller)."""
    from lwdet.export import NCNN_FILES, NCNN_SUFFIX, parity_file, read_parity

    folder = Path(folder)
    found = []
    for p in sorted(folder.iterdir()):
        if p.suffix in (".pt", ".onnx") and p.is_file():
            fmt, file = p.suffix[1:], p
        elif p.is_dir() and p.name.endswith(NCNN_SUFFIX) and (p / NCNN_FILES[1]).is_file():
            fmt, file = "ncnn", p / NCNN_FILES[1]
        else:
            continue
        fp16 = read_parity(p).half if fmt != "pt" and parity_file(p).is_file() else None
        found.append({"path": str(file), "format": fmt, "fp16": fp16, "bytes": file.stat().st_size})
    return found


def _folders_of(source: Path, weights: Path | None) -> list[Path]:
    if source.is_dir() and (source / "weights").is_dir():
        return [source / "weights"]
    if weights is not None:
        return [weights.parent]
    return []


def profile_detector(source: str | Path, imgsz: int | tuple[int, int] = 320, nc: int | None = None,
                     trust: bool = False) -> Profile:
    """Profile a detector from a model YAML, .pt, run folder or export; lists the weights and exports beside it."""
    source = Path(source)
    from lwdet.engine_models import deployed

    model, weights = resolve_detector(source, nc, trust)
    model = deployed(model.float().eval())  # what export runs: a YOLO26 head without its unused branch
    hw = check_imgsz(imgsz, int(max(model.stride)))
    stem = Path(getattr(model, "yaml", {}).get("yaml_file", "") or source).stem
    profile = profile_model(model, hw, name=stem, kind="detector", source=str(source))
    profile.files = [f for d in _folders_of(source, weights) for f in file_sizes(d)]
    for f in profile.files:  # no parity report: fp16 weights take about half the fp32 bytes
        if f["fp16"] is None and f["format"] != "pt":
            f["fp16"] = f["bytes"] < 0.75 * profile.params * BYTES_PER_ELEMENT
    return profile


# ----------------------------------------------------------------------------------------------------- classifiers
def build_classifier(backbone: str | BackboneSpec, num_classes: int = 1000) -> nn.Module:
    """The full ImageNet classifier that a registered backbone comes from, as its paper describes it (random init)."""
    spec = backbone if isinstance(backbone, BackboneSpec) else get_spec(backbone)
    if spec.source == "timm":
        import timm

        return timm.create_model(spec.model, pretrained=False, num_classes=num_classes)
    import torchvision

    return getattr(torchvision.models, spec.model)(weights=None, num_classes=num_classes)


def profile_classifier(backbone: str | BackboneSpec, imgsz: int = 224, engine_gflops: bool = True) -> Profile:
    """Profile a backbone as its ImageNet classifier (1000 classes), to compare with the paper's numbers."""
    spec = backbone if isinstance(backbone, BackboneSpec) else get_spec(backbone)
    return profile_model(build_classifier(spec), imgsz, name=spec.name, kind="classifier",
                         source=f"{spec.source}:{spec.model}", engine_gflops=engine_gflops)


def profile_backbone(backbone: str, imgsz: int = 320) -> Profile:
    """Profile a backbone as lwdet builds it for a detector (features at strides 8/16/32, no classifier)."""
    from lwdet.backbones import build_backbone

    spec = get_spec(backbone)
    return profile_model(build_backbone(backbone), imgsz, name=spec.name, kind="backbone",
                         source=f"{spec.source}:{spec.model}")


# ------------------------------------------------------------------------------------------------------ formatting
def format_profile(p: Profile, layers: bool = True) -> str:
    """A readable report: summary, breakdown by layer type, per-block table and file sizes."""
    h, w = p.imgsz
    lines = [
        f"{p.name} ({p.kind}, {p.source}) at {h}x{w}, batch 1",
        f"  params                  {p.params / 1e6:9.3f} M   (weights about {p.weights_mb['fp32']:.2f} MB fp32, "
        f"{p.weights_mb['fp16']:.2f} MB fp16)",
        f"  multiply-adds (MACs)    {p.macs / 1e6:9.1f} M   Conv2d + Linear only",
        f"  GFLOPs (2 x MACs)       {p.gflops:9.3f}     the engine's unit",
    ]
    if p.engine_gflops:
        lines.append(f"  engine get_flops        {p.engine_gflops:9.3f}     GFLOPs; also charges BatchNorm and "
                     f"extrapolates from a proxy input")
    lines += [
        f"  memory-access cost      {p.memory_access_mb:9.2f} MB  ShuffleNetV2 MAC: inputs + outputs + weights per "
        f"op, fp32",
        f"  peak activation memory  {p.peak_activation_mb:9.2f} MB  live tensors during the forward (at "
        f"{p.peak_activation_at or '(root)'})",
        "",
        f"  {'by layer type':<14}{'ops':>6}{'MACs (M)':>12}{'MAC %':>8}{'mem. access (MB)':>18}{'%':>7}",
    ]
    for c, b in p.breakdown.items():
        mac_share = 100 * b["macs"] / max(p.macs, 1)
        access_share = 100 * b["memory_access_mb"] / max(p.memory_access_mb, 1e-9)
        lines.append(f"  {c:<14}{b['ops']:>6}{b['macs'] / 1e6:>12.1f}{mac_share:>8.1f}"
                     f"{b['memory_access_mb']:>18.2f}{access_share:>7.1f}")
    lines.append("  (elementwise: aten pointwise ops such as activations, residual add, SE multiply; other: concat, "
                 "pooling/means, upsampling, copies, softmax; BatchNorm is folded and not counted)")
    if layers:
        lines += ["", f"  {'block':<16}{'type':<22}{'params':>10}{'MACs (M)':>11}{'mem. access (MB)':>18}"]
        for r in p.layers:
            lines.append(f"  {r['name']:<16}{r['type'][:21]:<22}{r['params']:>10}{r['macs'] / 1e6:>11.2f}"
                         f"{r['memory_access_mb']:>18.2f}")
    if p.files:
        lines += ["", "  files"]
        for f in p.files:
            precision = "" if f["format"] == "pt" else " fp16" if f["fp16"] else " fp32"
            lines.append(f"  {f['bytes'] / MB:9.2f} MB  {f['format']}{precision:<5}  {f['path']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m lwdet.profile``: the same as ``lwdet profile`` (lwdet.cli.profile)."""
    from lwdet.cli.profile import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
