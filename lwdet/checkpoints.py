"""Restricted checkpoint loading: a .pt is a pickle, and a pickle can run code when it is loaded.

lwdet loads checkpoints with ``torch.load(weights_only=True)`` and an allow-list: the engine's own list of
data types plus ``nn.Module`` classes from torch, torchvision, timm, ultralytics and lwdet. A checkpoint that
names anything else (a foreign class, a function) is refused unless the caller trusts the file. Enums and a few
listed data classes of those packages are allowed too.
"""

from __future__ import annotations

import enum
import importlib
from pathlib import Path

import torch
from torch import nn

TRUSTED_PACKAGES = ("torch", "torchvision", "timm", "ultralytics", "lwdet")
# Plain data classes pickled besides the modules: timm's backbones (checked: every shipped YAML's model), and the
# engine's distillation feature hook (a dict and an int; a distillation run's last.pt holds them, so resume needs it).
DATA_CLASSES = {"timm.models._features.FeatureInfo", "ultralytics.nn.distill_model.FeatureHook"}


class UntrustedCheckpointError(ValueError):
    """The checkpoint needs globals outside the allow-list."""


def _allowed(name: str, engine_registry: dict):
    if name in engine_registry:
        return engine_registry[name]
    module, _, attr = name.rpartition(".")
    if module.split(".")[0] not in TRUSTED_PACKAGES:
        return None
    try:
        obj = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
    if isinstance(obj, type) and (issubclass(obj, (nn.Module, enum.Enum)) or name in DATA_CLASSES):
        return obj  # classes are rebuilt from state; functions (callable by a pickle) are never allowed
    return None


def check_checkpoint(path: str | Path) -> list:
    """Return the allow-listed globals ``path`` needs; raise UntrustedCheckpointError naming the first other one."""
    from ultralytics.nn.tasks import _SafeLoad

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: not a torch checkpoint ({e})") from None
    registry = _SafeLoad._build()
    allowed, refused = [], []
    for name in needed:
        obj = _allowed(name, registry)
        if obj is None:
            refused.append(name)
        else:
            allowed.append((obj, name))
    if refused:
        raise UntrustedCheckpointError(
            f"{path}: refers to {', '.join(refused[:3])}{' ...' if len(refused) > 3 else ''}, outside lwdet's "
            "allow-list of model classes; loading it could run arbitrary code. Pass --trust-checkpoint only if you "
            "trust where the file came from."
        )
    return allowed


def load_checkpoint(path: str | Path, trust: bool = False) -> dict:
    """Load a checkpoint dict on the CPU; restricted to the allow-list unless ``trust``."""
    if trust:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    allowed = check_checkpoint(path)
    with torch.serialization.safe_globals(allowed):
        return torch.load(str(path), map_location="cpu", weights_only=True)


def load_weights(path: str | Path, trust: bool = False):
    """(model, checkpoint dict) of a .pt: the allow-list check (unless ``trust``), then the engine's own loader
    (EMA weights when saved, fp32, eval, ``args``/``stride``/``task`` set as the engine sets them).

    The one way lwdet turns a weights file into a model (export, profile, parts, bench's torch runtime, study):
    the engine unpickles in full, so the allow-list check must come first, and it does here.
    """
    from ultralytics.nn.tasks import load_checkpoint as engine_load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights not found: {path}")
    if not trust:
        check_checkpoint(path)
    return engine_load_checkpoint(path)


def vet(path: str | Path, trust: bool = False) -> None:
    """The allow-list check alone, for a .pt that the engine will load itself (training resume, ``lwdet.YOLO``'s
    loader: ``YOLO(path).val(...)`` is the checked way to evaluate a .pt)."""
    if not trust:
        check_checkpoint(path)
