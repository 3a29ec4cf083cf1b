"""Re-parameterization: a model trains with parallel branches and deploys each block as one convolution.

Two kinds of block carry training-time branches in lwdet detectors: timm's (RepGhostNet's identity-BN branch,
MobileOne's over-parameterized 3x3 / 1x1 / identity branches), folded by timm's own ``reparameterize_model``, and
the engine's ``RepConv`` (3x3 + 1x1 + identity-BN, lwdet's ``--rep`` neck and head), folded by the engine's
``DetectionModel.fuse``. ``LwdetModel.fuse`` folds the first (``fold_timm_bodies``) before the engine's fuse and
records what changed (``folded``), so every path that fuses a model (export, bench of a checkpoint, the engine's validator)
deploys the folded graph. Training never calls it.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

# method names timm's reparameterize_model calls (besides ``fuse``, which it replaces the module with)
_TIMM_METHODS = ("reparameterize", "switch_to_deploy")


def _timm_bodies(model: nn.Module) -> list[nn.Module]:
    """The timm networks inside lwdet backbones (``TimmFeatures`` / ``TimmTaps`` keep theirs as ``body``)."""
    from lwdet.backbones import TimmFeatures, TimmTaps

    return [m.body for m in model.modules() if isinstance(m, (TimmFeatures, TimmTaps))]


def branches(model: nn.Module) -> int:
    """How many blocks of ``model`` still carry training-time branches (0 once re-parameterized)."""
    from ultralytics.nn.modules import RepConv

    n = sum(1 for m in model.modules() if isinstance(m, RepConv) and hasattr(m, "conv1"))
    for body in _timm_bodies(model):
        for m in body.modules():
            if any(hasattr(m, a) for a in _TIMM_METHODS) and _has_branches(m):
                n += 1
    return n


def _has_branches(m: nn.Module) -> bool:
    """A timm re-parameterizable block not yet folded (each family marks the folded state its own way)."""
    if hasattr(m, "fusion_bn") or hasattr(m, "fusion_conv"):  # RepGhostModule: lists emptied when folded
        return bool(len(getattr(m, "fusion_bn", [])) or len(getattr(m, "fusion_conv", [])))
    if hasattr(m, "reparam_conv"):  # MobileOneBlock and the other byobnet rep blocks
        return m.reparam_conv is None
    return True  # a kind lwdet does not know: assume it has branches, reparameterize_model will fold it


def fold_timm(network: nn.Module) -> bool:
    """Fold a timm network's re-parameterizable blocks in place (timm's ``reparameterize_model``); False when it has
    none (then nothing is touched: timm's walk would also replace any module that has a ``fuse`` method)."""
    from timm.utils.model import reparameterize_model

    if not any(hasattr(m, a) for m in network.modules() for a in _TIMM_METHODS):
        return False
    reparameterize_model(network, inplace=True)
    return True


def fold_timm_bodies(model: nn.Module) -> None:
    """Fold the re-parameterizable blocks of every timm backbone in ``model``, in place (eval mode: BN statistics)."""
    for body in _timm_bodies(model):
        fold_timm(body)


def folded(model: nn.Module, fold: Callable[[nn.Module], object]) -> dict:
    """Run ``fold(model)`` (in place) and say what it changed: ``{"blocks": blocks that had training-time branches,
    "params_trained": ..., "params_deployed": ...}``, or ``{}`` when nothing had branches (``fold`` runs either way)."""
    blocks = branches(model)
    params = sum(p.numel() for p in model.parameters())
    fold(model)
    if not blocks:
        return {}
    return {"blocks": blocks, "params_trained": params, "params_deployed": sum(p.numel() for p in model.parameters())}


def _fold_everything(model: nn.Module) -> None:
    from ultralytics.nn.modules import RepConv

    fold_timm_bodies(model)
    for m in model.modules():
        if isinstance(m, RepConv) and hasattr(m, "conv1"):
            m.fuse_convs()
            m.forward = m.forward_fuse


def fold_all(model: nn.Module) -> dict:
    """Every branch folded, timm's and the engine's ``RepConv`` (BatchNorm elsewhere left as it is): the graph the
    export deploys, for counting. In place; returns what changed (``folded``)."""
    return folded(model, _fold_everything)
