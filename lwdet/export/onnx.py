"""ONNX export with the engine's recipe (TorchScript-based torch.onnx, onnxslim, metadata props), then checked."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from lwdet.artifacts import parity_file
from lwdet.export.files import _destination, _move_into_place, _staging
from lwdet.export.parity import _checked
from lwdet.export.prepare import _require, check_imgsz, engine_metadata, export_ready, load_model, model_name

LOGGER = logging.getLogger(__name__)


def _build_onnx(model: nn.Module, im: torch.Tensor, file: Path, half: bool, metadata: dict, opset: int) -> None:
    """The engine's ONNX recipe: TorchScript-based torch.onnx export, onnxslim, metadata props, IR <= 10, fp16."""
    import onnx
    import onnxslim
    from ultralytics.utils.export.engine import torch2onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch2onnx(model, im, str(file), opset=opset, input_names=["images"], output_names=["output0"])
    proto = onnx.load(str(file))
    try:
        proto = onnxslim.slim(proto)
    except Exception as e:  # the unslimmed graph is still correct; parity decides
        LOGGER.warning("onnxslim %s failed (%s); keeping the unslimmed graph", onnxslim.__version__, e)
    for k, v in metadata.items():
        meta = proto.metadata_props.add()
        meta.key, meta.value = k, str(v)
    proto.ir_version = min(proto.ir_version, 10)  # onnxruntime builds lag behind the newest IR
    if half:
        from onnxruntime.transformers import float16

        proto = float16.convert_float_to_float16(proto, keep_io_types=True)
    onnx.save(proto, str(file))


def export_onnx(
    weights_or_model: str | Path | nn.Module,
    out_dir: str | Path | None = None,
    imgsz: int | tuple[int, int] = 320,
    half: bool = False,
    *,
    data: str | Path | None = None,
    map_check: bool = True,
    overwrite: bool = False,
    name: str | None = None,
    opset: int | None = None,
    trust: bool = False,
    source: str | Path | None = None,
) -> Path:
    """Export to ``<out_dir>/<name>.onnx`` (default: beside the weights) with the parity report beside it.

    The engine's metadata goes into the file's metadata_props (AutoBackend reads it). ``half`` stores fp16 weights
    and keeps float32 input/output, as the engine's CPU fp16 export does. The file appears only after
    ``check_parity`` passed; its report ``<name>.onnx.parity.json`` is moved in right after it. ``trust`` loads a
    weights file outside the checkpoint allow-list;
    ``source`` names the weights file of a model given loaded already (``load_model``).
    """
    _require("onnx", "onnxslim", "onnxruntime")
    import onnx
    from ultralytics.utils.export.engine import best_onnx_opset

    model, source = load_model(weights_or_model, trust=trust, source=source)
    hw = check_imgsz(imgsz, model)
    dst = _destination(source, model_name(model), out_dir, name, "onnx")
    opset = opset or best_onnx_opset(onnx)
    with _staging(dst, overwrite) as tmp:
        file = tmp / dst.name
        ready, im = export_ready(model, hw, "onnx")
        metadata = engine_metadata(
            model, hw, "onnx", half, data=None, dynamic=False, opset=opset, simplify=True, nms=False, fraction=1.0
        )
        _build_onnx(ready, im, file, half, metadata, opset)
        report = _checked(model, ready, source, file, dst, hw, half, data, map_check)
        sidecar = report.save(tmp / parity_file(dst).name)
        _move_into_place(file, dst, overwrite)
        os.replace(sidecar, parity_file(dst))
    LOGGER.info("ONNX export: %s", dst)
    return dst
