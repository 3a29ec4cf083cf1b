"""ncnn export through pnnx: trace, convert, keep model.ncnn.param/bin, write metadata.yaml and lwdet.json, check.

pnnx is called directly, not through the engine's exporter: that one first runs ``check_requirements("pnnx==...")``,
which pip-installs another pnnx over the pinned one.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import torch
import yaml
from torch import nn

from lwdet.artifacts import ENGINE_META, INPUT_LAYOUT, NCNN_FILES, OUTPUT_LAYOUT, PARITY_FILE, Blob, ExportMeta
from lwdet.export.files import _destination, _move_into_place, _staging
from lwdet.export.parity import _checked
from lwdet.export.prepare import (
    ExportError,
    _n_anchors,
    _require,
    _sha256,
    _trace,
    _versions,
    check_imgsz,
    engine_metadata,
    export_ready,
    load_model,
    model_name,
)
from lwdet.export.runners import _NcnnRunner, ncnn_options

LOGGER = logging.getLogger(__name__)


def _run_pnnx(folder: Path, im: torch.Tensor, half: bool) -> None:
    """Convert folder/model.pt (TorchScript) with the pnnx executable, everything written inside ``folder``.

    The executable is called directly rather than through ``pnnx.export``, which ignores its exit status, runs in
    the current directory, and imports the generated ``model_pnnx.py``.
    """
    import pnnx

    shape = ",".join(str(v) for v in im.shape)
    cmd = [
        pnnx.EXEC_PATH,
        "model.pt",
        f"inputshape=[{shape}]f32",
        "device=cpu",
        f"fp16={int(half)}",
        "pnnxparam=model.pnnx.param",
        "pnnxbin=model.pnnx.bin",
        "pnnxpy=model_pnnx.py",
        "pnnxonnx=model.pnnx.onnx",
        "ncnnparam=model.ncnn.param",
        "ncnnbin=model.ncnn.bin",
        "ncnnpy=model_ncnn.py",
    ]
    r = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    LOGGER.debug("pnnx output:\n%s%s", r.stdout, r.stderr)
    missing = [f for f in NCNN_FILES if not (folder / f).is_file()]
    if r.returncode != 0 or missing:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise ExportError(
            f"pnnx {_versions()['pnnx']} failed (exit status {r.returncode}"
            f"{', no ' + ', '.join(missing) if missing else ''}):\n{tail}"
        )


def _build_ncnn(model: nn.Module, im: torch.Tensor, folder: Path, half: bool) -> None:
    _trace(model, im).save(str(folder / "model.pt"))
    _run_pnnx(folder, im, half)
    for f in folder.iterdir():  # pnnx's TorchScript, pnnx graph, python, onnx and debug files are not deployed
        if f.name not in NCNN_FILES:
            shutil.rmtree(f) if f.is_dir() else f.unlink()


def export_ncnn(
    weights_or_model: str | Path | nn.Module,
    out_dir: str | Path | None = None,
    imgsz: int | tuple[int, int] = 320,
    half: bool = False,
    *,
    data: str | Path | None = None,
    map_check: bool = True,
    overwrite: bool = False,
    name: str | None = None,
    trust: bool = False,
    source: str | Path | None = None,
) -> Path:
    """Export to ``<out_dir>/<name>_ncnn_model/`` (default: beside the weights, named after them) via pnnx.

    The folder holds model.ncnn.param/bin, the engine's metadata.yaml (AutoBackend loads it), lwdet.json (for the
    torch-free runtime, ``lwdet.artifacts.ExportMeta``) and parity.json. It appears only after ``check_parity``
    passed; see ``lwdet.export``. ``trust`` loads a weights file outside the checkpoint allow-list;
    ``source`` names the weights file of a model given loaded already (``load_model``).
    """
    _require("pnnx", "ncnn")
    model, source = load_model(weights_or_model, trust=trust, source=source)
    hw = check_imgsz(imgsz, model)
    dst = _destination(source, model_name(model), out_dir, name, "ncnn")
    with _staging(dst, overwrite) as tmp:
        folder = tmp / dst.name  # named *_ncnn_model so the engine's AutoBackend loads it for the mAP check
        folder.mkdir()
        ready, im = export_ready(model, hw, "ncnn")
        _build_ncnn(ready, im, folder, half)
        metadata = engine_metadata(model, hw, "ncnn", half)
        (folder / ENGINE_META).write_text(yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True))
        probe = _NcnnRunner(folder, half)
        names = [metadata["names"][i] for i in range(len(metadata["names"]))]
        ExportMeta(
            format="ncnn",
            model=model_name(model),
            names=names,
            imgsz=list(hw),
            strides=[int(s) for s in model.stride.tolist()],
            input=Blob(probe.input_name, [1, 3, *hw], INPUT_LAYOUT),
            output=Blob(probe.output_name, [4 + len(names), _n_anchors(model, hw)], OUTPUT_LAYOUT),
            fp16=bool(half),
            ncnn_options=ncnn_options(bool(half)),
            source={"weights": source.name if source else None, "sha256": _sha256(source) if source else None},
            versions=_versions(),
            date=metadata["date"],
            reparameterized=dict(getattr(ready, "reparameterized", {})),
        ).save(folder)
        report = _checked(model, ready, source, folder, dst, hw, half, data, map_check)
        report.save(folder / PARITY_FILE)
        _move_into_place(folder, dst, overwrite)
    LOGGER.info("ncnn export: %s", dst)
    return dst
