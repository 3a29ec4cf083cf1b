"""Export trained detectors to ONNX and ncnn, and prove that the export computes what PyTorch computes.

One function per format (``export_onnx``, ``export_ncnn``). Each builds into a hidden temporary folder next to the
destination, runs ``check_parity`` on what it built, writes the parity report, and only then moves the result into
place: a failed export leaves nothing behind and never replaces a good export.

The exported graph is the engine's export-mode model (fused, eval, ``Detect.export = True``): one input
``(1, 3, H, W)`` RGB in [0, 1], letterboxed, and one output ``(1, 4 + nc, N)``, see ``OUTPUT_LAYOUT``.

Layers: ``prepare`` (load through the checkpoint allow-list, export mode, metadata), ``ncnn`` and ``onnx`` (the
converters), ``runners`` (run an export), ``parity`` (the proof), ``files`` (staging and the atomic move). File
names and the ``lwdet.json`` format live in ``lwdet.artifacts``.
"""

from __future__ import annotations

from pathlib import Path

from lwdet.artifacts import (
    EXPORT_META,
    INPUT_LAYOUT,
    NCNN_FILES,
    NCNN_SUFFIX,
    OUTPUT_LAYOUT,
    PARITY_FILE,
    ExportMeta,
    parity_file,
)
from lwdet.export.files import output_path
from lwdet.export.ncnn import export_ncnn
from lwdet.export.onnx import export_onnx
from lwdet.export.parity import (
    MAP_TOLERANCE,
    TOLERANCES,
    VACUOUS,
    ParityError,
    ParityReport,
    Tolerance,
    check_parity,
    parity_inputs,
    read_parity,
    val_map,
)
from lwdet.export.prepare import ExportError, check_imgsz, engine_metadata, export_ready, load_model, model_name
from lwdet.export.runners import export_format, ncnn_options

EXPORTERS = {"ncnn": export_ncnn, "onnx": export_onnx}

__all__ = [
    "EXPORTERS",
    "INPUT_LAYOUT",
    "MAP_TOLERANCE",
    "NCNN_FILES",
    "NCNN_SUFFIX",
    "OUTPUT_LAYOUT",
    "PARITY_FILE",
    "EXPORT_META",
    "TOLERANCES",
    "VACUOUS",
    "ExportError",
    "ExportMeta",
    "ParityError",
    "ParityReport",
    "Tolerance",
    "check_imgsz",
    "check_parity",
    "engine_metadata",
    "export_format",
    "export_ncnn",
    "export_onnx",
    "export_ready",
    "load_model",
    "model_name",
    "ncnn_options",
    "output_path",
    "parity_file",
    "parity_inputs",
    "read_parity",
    "resolve_source",
    "val_map",
]


def resolve_source(path: str | Path, data: str | Path | None = None) -> tuple[Path, Path | None]:
    """(weights, data YAML or None): ``lwdet.artifacts.resolve_source`` in the shape export's CLI uses."""
    from lwdet.artifacts import resolve_source as resolve

    src = resolve(path, data)
    return src.weights, src.data
