"""Counting one forward: MACs of Conv2d / Linear by forward hooks, memory-access cost and live tensor storage (peak
activation memory) at the aten-op level. Conventions: the ``lwdet.profile`` docstring."""

from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

BYTES_PER_ELEMENT = 4  # memory-access cost and weight sizes are stated at fp32
CATEGORIES = ("conv1x1", "conv_kxk", "depthwise", "linear", "elementwise", "other")
# aten ops that are not memory traffic of the deployed graph: BatchNorm is folded into the conv before it runs.
_FOLDED = {"native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit", "batch_norm"}
# copies are tagged pointwise in aten, but they are data movement (a channel shuffle's .contiguous(), dtype casts)
_COPIES = {"clone", "_to_copy", "copy_", "contiguous"}
# ops whose tensor arguments are read for their shape or dtype only
_FACTORIES = {
    "new_empty",
    "new_zeros",
    "new_ones",
    "new_full",
    "empty_like",
    "zeros_like",
    "ones_like",
    "full_like",
    "_local_scalar_dense",
}


@dataclass
class OpCost:
    """One counted op: a conv / linear call, or an aten op (summed over its calls within one module)."""

    module: str  # qualified module name ("" for the root)
    op: str  # "Conv2d 3x3/2 g=16", "Linear", or the aten op name ("add_", "cat", ...)
    category: str  # one of CATEGORIES
    macs: int = 0
    elements: int = 0  # memory-access cost in elements
    calls: int = 1


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
