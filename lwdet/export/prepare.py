"""Prepare a detector for export: load it (through the checkpoint allow-list), check the input size, and put it in
the engine's export mode; the metadata both formats carry. Shared by ``ncnn`` and ``onnx``."""

from __future__ import annotations

import hashlib
import logging
import warnings
from copy import deepcopy
from datetime import datetime
from pathlib import Path

import torch
from torch import nn

from lwdet.artifacts import check_imgsz as _check_hw

LOGGER = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """A converter failed or produced something that does not load."""


# ----------------------------------------------------------------------------------------------------------- model
def load_model(
    weights_or_model: str | Path | nn.Module, trust: bool = False, source: str | Path | None = None
) -> tuple[nn.Module, Path | None]:
    """A float eval-mode detector (a copy when given a module) and the weights file it came from.

    A weights file goes through ``lwdet.checkpoints.load_weights``: classes outside the allow-list are refused
    (``UntrustedCheckpointError``) unless ``trust``. A module loaded already (one load per ``lwdet export``) is
    copied; ``source`` then names the file it was loaded from (the export's default place, name and checksum).
    """
    from ultralytics.nn.modules import Detect

    from lwdet.checkpoints import load_weights

    if isinstance(weights_or_model, nn.Module):
        model, source = deepcopy(weights_or_model).float().eval(), (Path(source) if source else None)
    else:
        source = Path(weights_or_model)
        model, _ = load_weights(source, trust=trust)
    if not isinstance(getattr(model, "model", [None])[-1], Detect):
        raise ValueError(f"{source or type(model).__name__}: not a detection model (its last layer is not Detect)")
    if getattr(model, "end2end", False):  # YOLO26: export runs the one-to-many branch (export_ready); so does the
        model.end2end = False  # reference, else it would return top-k (1, 300, 6) rows instead of (1, 4 + nc, N)
    return model, source


def check_imgsz(imgsz: int | tuple[int, int] | list[int], model: nn.Module | None = None) -> tuple[int, int]:
    """``lwdet.artifacts.check_imgsz`` with the model's largest stride (32 without a model)."""
    return _check_hw(imgsz, int(max(model.stride)) if model is not None else 32)


def model_name(model: nn.Module) -> str:
    """The model YAML's stem, e.g. 'yolov5n-ghostnet_100-aspp'."""
    return Path(getattr(model, "yaml", {}).get("yaml_file", "") or "model").stem


def export_ready(model: nn.Module, imgsz: tuple[int, int], fmt: str) -> tuple[nn.Module, torch.Tensor]:
    """A copy prepared as the engine's exporter prepares it, and the (zero) input it was dry-run on.

    Fused, eval, fp32, no gradients; the Detect head returns the single decoded tensor (1, 4+nc, N). The dry run
    caches the anchors for this input size, so tracing bakes them in as constants (without it pnnx keeps the
    shape arithmetic as ``pnnx.Expression`` layers that ncnn cannot load).
    """
    from ultralytics.nn.modules import C2f, Detect

    model = deepcopy(model).float().eval()
    for p in model.parameters():
        p.requires_grad = False
    if getattr(model, "end2end", False):  # ncnn has no top-k: YOLO26 exports its one-to-many branch, raw layout, as
        model.end2end = False  # the engine's own ncnn export does (docs/engine-models.md)
    model = model.fuse(verbose=False)
    anchors = _n_anchors(model, imgsz)
    for m in model.modules():
        if isinstance(m, Detect):  # instance attributes, as the engine's exporter sets them
            m.export, m.format, m.dynamic, m.xyxy, m.shape = True, fmt, False, False, None
            m.max_det, m.agnostic_nms = min(getattr(m, "max_det", 300), anchors), False
        elif isinstance(m, C2f):
            m.forward = m.forward_split
    im = torch.zeros(1, model.yaml.get("channels", 3), *imgsz)
    with torch.no_grad():
        model(im)
    return model, im


def _n_anchors(model: nn.Module, imgsz: tuple[int, int]) -> int:
    return sum((imgsz[0] // int(s)) * (imgsz[1] // int(s)) for s in model.stride.tolist())


def engine_metadata(model: nn.Module, imgsz: tuple[int, int], fmt: str, half: bool, **args) -> dict:
    """The metadata dict the engine's exporter writes (metadata.yaml / ONNX props), so AutoBackend reads ours."""
    from ultralytics import __version__ as engine_version

    trained_on = model.args.get("data") if isinstance(getattr(model, "args", None), dict) else None
    return {
        "description": f"lwdet {model_name(model)} model" + (f" trained on {trained_on}" if trained_on else ""),
        "author": "lwdet",
        "date": datetime.now().astimezone().isoformat(),
        "version": engine_version,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "stride": int(max(model.stride)),
        "task": getattr(model, "task", "detect"),
        "head": type(model.model[-1]).__name__,
        "batch": 1,
        "imgsz": list(imgsz),
        "names": {int(k): str(v) for k, v in model.names.items()},
        "args": {"batch": 1, "quantize": 16 if half else None, **args},
        "channels": model.yaml.get("channels", 3),
        "end2end": False,
    }


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import lwdet

    out = {"lwdet": lwdet.__version__}
    for pkg in ("ultralytics", "torch", "pnnx", "ncnn", "onnx", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _trace(model: nn.Module, im: torch.Tensor) -> torch.jit.ScriptModule:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, im, check_trace=False)
    for w in caught:  # parity below judges the result; the warnings are kept for whoever debugs an export
        LOGGER.debug("trace: %s", w.message)
    return traced


def _require(*modules: str) -> None:
    """Import the converters/runtimes of the 'export' extra, or say how to install them."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ExportError(
                f"{name} is not installed ({e}); install lwdet's export extra: pip install -e '.[export]'"
            ) from None
