"""Export trained detectors to ONNX and ncnn, and prove that the export computes what PyTorch computes.

One function per format (``export_onnx``, ``export_ncnn``). Each builds into a hidden temporary folder next to the
destination, runs ``check_parity`` on what it built, writes the parity report, and only then moves the result into
place: a failed export leaves nothing behind and never replaces a good export.

The exported graph is the engine's export-mode model (fused, eval, ``Detect.export = True``): one input
``(1, 3, H, W)`` RGB in [0, 1], letterboxed, and one output ``(1, 4 + nc, N)``, see ``OUTPUT_LAYOUT``.

ncnn goes through pnnx directly, not through the engine's exporter: that one first runs
``check_requirements("pnnx==20260526")``, which pip-installs another pnnx over the pinned one.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

LOGGER = logging.getLogger(__name__)

NCNN_SUFFIX = "_ncnn_model"  # the engine's AutoBackend recognises ncnn folders by this suffix
NCNN_FILES = ("model.ncnn.param", "model.ncnn.bin")
PARITY_FILE = "parity.json"  # inside an ncnn folder; an ONNX file gets a sidecar <name>.onnx.parity.json
RUNTIME_FILE = "lwdet.json"  # metadata for the torch-free runtime (stdlib json; the Pi has no PyYAML)
OUTPUT_LAYOUT = "(4+nc, N) per image: rows 0-3 cx, cy, w, h in input pixels; rows 4.. class scores after sigmoid"
INPUT_LAYOUT = "(3, H, W) per image: RGB float32 in [0, 1], letterboxed (pad value 114/255), no mean/std"


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted raw-output difference: boxes relative to the input side, scores absolute."""

    box_rel: float  # max |dbox| in pixels <= box_rel * max(H, W)
    score: float  # max |dscore|, scores in [0, 1]


# Raw-output tolerances. Differences seen (max over inputs; boxes as a fraction of the input side):
# fp32: ncnn (fp16 off) and onnxruntime reorder sums and approximate exp/sigmoid: trained GhostNet / MobileNetV3-ASPP
#   runs 1.3e-5 / 1.5e-4 (boxes) and 1.5e-6 / 8e-6 (scores); the 32 shipped models with randomised weights
#   (tests/test_export.py) up to 1.4e-4 and 4.4e-4. 1e-3 of the side is 0.32 px at 320 px, far below anything structural
#   (an anchor off by half a stride is 4 px).
# fp16: rounding the weights to fp16 (ncnn and onnxruntime alike) moves the boxes of some anchors a lot, as the DFL
#   bins are a stride wide: 8.6e-2 of the side (11 px at 128 px) on an undertrained MobileNetV3-ASPP run whose
#   mAP50-95 moved by 3e-6; scores up to 1.7e-2. So fp16 raw outputs only catch gross breakage (garbage, inf, NaN);
#   the mAP check is the criterion for an fp16 export, and an fp16 export without data is only smoke-tested.
TOLERANCES = {False: Tolerance(box_rel=1e-3, score=1e-3), True: Tolerance(box_rel=0.25, score=0.05)}
MAP_TOLERANCE = 0.005  # |mAP50-95(export) - mAP50-95(PyTorch)|, i.e. 0.5 mAP points


class ExportError(RuntimeError):
    """A converter failed or produced something that does not load."""


class ParityError(RuntimeError):
    """The export does not compute what PyTorch computes; ``.report`` holds the numbers."""

    def __init__(self, report: "ParityReport"):
        super().__init__(report)
        self.report = report

    def __str__(self) -> str:
        r = self.report
        return f"{r.format} export of {r.source} fails the parity check: {'; '.join(r.failures)}"


@dataclass
class ParityReport:
    """Raw-output and mAP differences between PyTorch and one export (saved as parity.json)."""

    format: str
    path: str
    source: str
    imgsz: list[int]
    half: bool
    n_random: int  # random inputs compared
    n_images: int  # validation images compared
    max_abs_diff: float
    box_max_abs_diff: float  # pixels
    score_max_abs_diff: float
    box_tolerance: float  # pixels
    score_tolerance: float
    map_torch: float | None = None  # mAP50-95 on the validation set, both through the engine's validator
    map_export: float | None = None
    map_tolerance: float = MAP_TOLERANCE
    data: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def save(self, file: str | Path) -> Path:
        Path(file).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return Path(file)

    @classmethod
    def from_dict(cls, d: dict) -> "ParityReport":
        return cls(**{k: v for k, v in d.items() if k != "passed"})


# ----------------------------------------------------------------------------------------------------------- model
def load_model(weights_or_model: str | Path | nn.Module) -> tuple[nn.Module, Path | None]:
    """A float eval-mode detector (a copy when given a module) and the weights file it came from."""
    from ultralytics.nn.modules import Detect

    if isinstance(weights_or_model, nn.Module):
        model, source = deepcopy(weights_or_model).float().eval(), None
    else:
        source = Path(weights_or_model)
        if not source.is_file():
            raise FileNotFoundError(f"weights not found: {source}")
        from ultralytics.nn.tasks import load_checkpoint

        model, _ = load_checkpoint(source)
    if not isinstance(getattr(model, "model", [None])[-1], Detect):
        raise ValueError(f"{source or type(model).__name__}: not a detection model (its last layer is not Detect)")
    if getattr(model, "end2end", False):  # YOLO26: export runs the one-to-many branch (export_ready); so does the
        model.end2end = False  # reference, else it would return top-k (1, 300, 6) rows instead of (1, 4 + nc, N)
    return model, source


def check_imgsz(imgsz: int | tuple[int, int] | list[int], model: nn.Module | None = None) -> tuple[int, int]:
    """(H, W) from an int or a pair; each a positive multiple of the model's largest stride (32)."""
    hw = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    stride = int(max(model.stride)) if model is not None else 32
    if len(hw) != 2 or not all(isinstance(v, int) and v > 0 and v % stride == 0 for v in hw):
        raise ValueError(f"imgsz must be a positive multiple of {stride} (the largest stride) or a pair of them, "
                         f"got {imgsz!r}")
    return hw


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


# ------------------------------------------------------------------------------------------------------ converters
def _trace(model: nn.Module, im: torch.Tensor) -> torch.jit.ScriptModule:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, im, check_trace=False)
    for w in caught:  # parity below judges the result; the warnings are kept for whoever debugs an export
        LOGGER.debug("trace: %s", w.message)
    return traced


def _run_pnnx(folder: Path, im: torch.Tensor, half: bool) -> None:
    """Convert folder/model.pt (TorchScript) with the pnnx executable, everything written inside ``folder``.

    The executable is called directly rather than through ``pnnx.export``, which ignores its exit status, runs in
    the current directory, and imports the generated ``model_pnnx.py``.
    """
    import pnnx

    shape = ",".join(str(v) for v in im.shape)
    cmd = [pnnx.EXEC_PATH, "model.pt", f"inputshape=[{shape}]f32", "device=cpu", f"fp16={int(half)}",
           "pnnxparam=model.pnnx.param", "pnnxbin=model.pnnx.bin", "pnnxpy=model_pnnx.py",
           "pnnxonnx=model.pnnx.onnx", "ncnnparam=model.ncnn.param", "ncnnbin=model.ncnn.bin", "ncnnpy=model_ncnn.py"]
    r = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    LOGGER.debug("pnnx output:\n%s%s", r.stdout, r.stderr)
    missing = [f for f in NCNN_FILES if not (folder / f).is_file()]
    if r.returncode != 0 or missing:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise ExportError(f"pnnx {_versions()['pnnx']} failed (exit status {r.returncode}"
                          f"{', no ' + ', '.join(missing) if missing else ''}):\n{tail}")


def _require(*modules: str) -> None:
    """Import the converters/runtimes of the 'export' extra, or say how to install them."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ExportError(f"{name} is not installed ({e}); install lwdet's export extra: pip install -e '.[export]'"
                              ) from None


def _build_ncnn(model: nn.Module, im: torch.Tensor, folder: Path, half: bool) -> None:
    _trace(model, im).save(str(folder / "model.pt"))
    _run_pnnx(folder, im, half)
    for f in folder.iterdir():  # pnnx's TorchScript, pnnx graph, python, onnx and debug files are not deployed
        if f.name not in NCNN_FILES:
            shutil.rmtree(f) if f.is_dir() else f.unlink()


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


# --------------------------------------------------------------------------------------------------------- runners
def ncnn_options(half: bool) -> dict:
    """The ncnn Net options an export is checked with, saved in lwdet.json for the runtime to set the same.

    ncnn's defaults compute in fp16 wherever the CPU can (fp16 storage on x86 with F16C, storage and arithmetic on
    ARMv8.2 such as the Pi 5), whatever precision the weights were stored in. An fp32 export is checked, and should
    run, with fp16 off; an fp16 export with ncnn's defaults.
    """
    return {"use_fp16_packed": half, "use_fp16_storage": half, "use_fp16_arithmetic": half, "use_bf16_storage": False}


class _NcnnRunner:
    """Run an ncnn folder with the ncnn python binding, on the CPU, with ``ncnn_options(half)``."""

    def __init__(self, folder: Path, half: bool = False):
        import ncnn

        self.ncnn, self.net = ncnn, ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        for k, v in ncnn_options(half).items():
            setattr(self.net.opt, k, v)
        param, weights = (str(folder / f) for f in NCNN_FILES)
        if self.net.load_param(param) != 0 or self.net.load_model(weights) != 0:
            raise ExportError(f"ncnn {ncnn.__version__} cannot load {param}{self._unknown_layers(folder)}")
        if len(self.net.input_names()) != 1 or len(self.net.output_names()) != 1:
            raise ExportError(f"{param}: expected one input and one output, got {self.net.input_names()} -> "
                              f"{self.net.output_names()}")
        self.input_name, self.output_name = self.net.input_names()[0], self.net.output_names()[0]

    @staticmethod
    def _unknown_layers(folder: Path) -> str:
        lines = (folder / NCNN_FILES[0]).read_text().splitlines()[2:]
        kinds = sorted({line.split()[0] for line in lines if line.startswith("pnnx.")})
        return f" (layers ncnn does not have: {', '.join(kinds)})" if kinds else ""

    def __call__(self, x: np.ndarray) -> np.ndarray:  # (1, 3, H, W) -> (1, 4+nc, N)
        with self.net.create_extractor() as ex:
            ex.input(self.input_name, self.ncnn.Mat(np.ascontiguousarray(x[0], dtype=np.float32)))
            ret, out = ex.extract(self.output_name)
        if ret != 0:
            raise ExportError(f"ncnn failed to compute '{self.output_name}' (status {ret})")
        return np.array(out)[None]


class _OnnxRunner:
    def __init__(self, file: Path):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x.astype(np.float32)})[0]


def export_format(path: str | Path) -> str:
    """'ncnn' for a ``*_ncnn_model`` folder, 'onnx' for a ``.onnx`` file."""
    path = Path(path)
    if path.name.endswith(NCNN_SUFFIX):
        return "ncnn"
    if path.suffix == ".onnx":
        return "onnx"
    raise ValueError(f"{path}: not an export lwdet knows (a *{NCNN_SUFFIX} folder or a .onnx file)")


# ---------------------------------------------------------------------------------------------------------- parity
def _engine_data(data: str | Path, workdir: Path) -> Path:
    """An engine-ready copy of a data YAML (absolute paths; lwdet's embedded dataset generated if missing)."""
    from lwdet.data import write_engine_yaml

    return write_engine_yaml(data, workdir / "data.yaml")


def _val_images(data_yaml: Path, n: int) -> list[Path]:
    from ultralytics.data.utils import IMG_FORMATS

    d = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    files = []
    for entry in d["val"] if isinstance(d["val"], list) else [d["val"]]:
        p = Path(entry) if Path(entry).is_absolute() else Path(d["path"]) / entry
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix[1:].lower() in IMG_FORMATS)
        elif p.suffix == ".txt":
            files += [Path(line.strip()) if Path(line.strip()).is_absolute() else p.parent / line.strip()
                      for line in p.read_text().splitlines() if line.strip()]
    return files[:n]


def parity_inputs(imgsz: tuple[int, int], n_random: int = 2, images: list[Path] = ()) -> list[np.ndarray]:
    """Inputs (1, 3, H, W) float32: seeded uniform noise, then images letterboxed as the validator does."""
    import cv2
    from ultralytics.data.augment import LetterBox

    rng = np.random.default_rng(0)
    xs = [rng.random((1, 3, *imgsz), dtype=np.float32) for _ in range(n_random)]
    letterbox = LetterBox(imgsz, auto=False, scaleup=False)
    for f in images:
        img = cv2.imread(str(f))
        if img is None:
            raise FileNotFoundError(f"cannot read image {f}")
        img = letterbox(image=img)[..., ::-1].transpose(2, 0, 1)  # BGR HWC -> RGB CHW
        xs.append(np.ascontiguousarray(img[None], dtype=np.float32) / 255)
    return xs


def val_map(model_or_export: nn.Module | str | Path, data_yaml: str | Path, imgsz: tuple[int, int]) -> float:
    """mAP50-95 through the engine's DetectionValidator, batch 1, square letterbox (rect=False) for every format.

    ``rect=False`` for PyTorch too: exports have a fixed input, so rectangular batches would compare letterboxing,
    not the export.
    """
    from ultralytics.models.yolo.detect import DetectionValidator

    # a module is copied (the validator fuses what it is given); an export goes by path, as AutoBackend loads it
    model = deepcopy(model_or_export) if isinstance(model_or_export, nn.Module) else str(model_or_export)
    with tempfile.TemporaryDirectory(prefix="lwdet-val-") as tmp:  # the validator's save_dir
        size = imgsz[0] if imgsz[0] == imgsz[1] else list(imgsz)
        args = dict(task="detect", mode="val", data=str(data_yaml), imgsz=size, batch=1, rect=False, device="cpu",
                    workers=0, plots=False, verbose=False, save_json=False, project=tmp, name="val", exist_ok=True)
        stats = DetectionValidator(args=args)(model=model)
    return float(stats["metrics/mAP50-95(B)"])


def check_parity(weights_or_model: str | Path | nn.Module, export_path: str | Path, imgsz: int | tuple[int, int], *,
                 half: bool = False, data: str | Path | None = None, map_check: bool = True, n_random: int = 2,
                 n_images: int = 4, raise_on_failure: bool = True) -> ParityReport:
    """Compare an export with PyTorch: raw output on random inputs and validation images, and mAP50-95.

    Raw output: max |difference| of boxes (pixels) and scores against ``TOLERANCES[half]``; ncnn runs with
    ``ncnn_options(half)``. mAP (when ``data`` is given and ``map_check``): both through the engine's validator,
    |difference| <= ``MAP_TOLERANCE``. Raises ``ParityError`` (carrying the report) when a number is out of
    tolerance, unless ``raise_on_failure=False``.
    """
    model, source = load_model(weights_or_model)
    report = _compare(model, Path(export_path), check_imgsz(imgsz, model), half, data, map_check, n_random, n_images)
    report.source = str(source or model_name(model))
    if report.failures and raise_on_failure:
        raise ParityError(report)
    return report


def _compare(model: nn.Module, export_path: Path, hw: tuple[int, int], half: bool, data, map_check: bool,
             n_random: int = 2, n_images: int = 4) -> ParityReport:
    fmt = export_format(export_path)
    tol = TOLERANCES[bool(half)]
    with tempfile.TemporaryDirectory(prefix="lwdet-parity-") as tmp:
        data_yaml = _engine_data(data, Path(tmp)) if data else None
        images = _val_images(data_yaml, n_images) if data_yaml else []
        if data_yaml:
            nc = len(yaml.safe_load(data_yaml.read_text(encoding="utf-8"))["names"])
            if nc != len(model.names):
                raise ValueError(f"{data}: {nc} classes, but the model has {len(model.names)}")
        inputs = parity_inputs(hw, n_random, images)
        run = _NcnnRunner(export_path, half) if fmt == "ncnn" else _OnnxRunner(export_path)
        with torch.no_grad():
            refs = [model(torch.from_numpy(x)) for x in inputs]
        refs = [(r[0] if isinstance(r, (list, tuple)) else r).numpy() for r in refs]
        outs = [run(x) for x in inputs]
        box = score = 0.0
        failures = []
        for out, ref in zip(outs, refs):
            if out.shape != ref.shape:
                failures.append(f"output shape {out.shape} != PyTorch {ref.shape}")
                break
            box = max(box, float(np.abs(out[:, :4] - ref[:, :4]).max()))
            score = max(score, float(np.abs(out[:, 4:] - ref[:, 4:]).max()))
        report = ParityReport(
            format=fmt, path=str(export_path), source=model_name(model), imgsz=list(hw), half=bool(half),
            n_random=n_random, n_images=len(images), max_abs_diff=max(box, score), box_max_abs_diff=box,
            score_max_abs_diff=score, box_tolerance=tol.box_rel * max(hw), score_tolerance=tol.score,
            data=str(data) if data else None, failures=failures)
        if not (box <= report.box_tolerance):  # also catches NaN
            failures.append(f"boxes max |diff| {box:.3g} px > {report.box_tolerance:.3g} px")
        if not (score <= report.score_tolerance):
            failures.append(f"scores max |diff| {score:.3g} > {report.score_tolerance:.3g}")
        if data_yaml and map_check and not failures:  # a raw-output failure already decides; mAP costs time
            report.map_torch = val_map(model, data_yaml, hw)
            report.map_export = val_map(export_path, data_yaml, hw)
            if not abs(report.map_export - report.map_torch) <= MAP_TOLERANCE:
                failures.append(f"mAP50-95 PyTorch {report.map_torch:.4f} vs {fmt} {report.map_export:.4f} "
                                f"(|diff| {abs(report.map_export - report.map_torch):.4f} > {MAP_TOLERANCE})")
    maps = "" if report.map_torch is None else f", mAP50-95 {report.map_torch:.4f} vs {report.map_export:.4f}"
    LOGGER.info("parity %s: boxes max |diff| %.3g px (tol %.3g), scores %.3g (tol %.3g)%s",
                fmt, box, report.box_tolerance, score, report.score_tolerance, maps)
    return report


def parity_file(export_path: str | Path) -> Path:
    """Where an export's parity report lives: inside an ncnn folder, beside an ONNX file."""
    export_path = Path(export_path)
    return export_path / PARITY_FILE if export_format(export_path) == "ncnn" else Path(f"{export_path}.parity.json")


def read_parity(export_path: str | Path) -> ParityReport:
    """The parity report saved with an export."""
    return ParityReport.from_dict(json.loads(parity_file(export_path).read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------------------------- atomic writes
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Linux renameat2(2); False where the C library, kernel or filesystem lacks it (the caller falls back)."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def _move_into_place(src: Path, dst: Path, overwrite: bool) -> None:
    """Rename ``src`` to ``dst``. Without ``overwrite`` an existing ``dst`` is an error; with it, a folder is swapped
    in one atomic exchange (renameat2) where the system has it, else renamed aside and restored on failure."""
    if not overwrite or not dst.exists():
        if _renameat2(src, dst, _RENAME_NOREPLACE):
            return
        if dst.exists():
            raise FileExistsError(errno.EEXIST, "already exists", str(dst))
        os.rename(src, dst)
    elif src.is_file():
        os.replace(src, dst)  # atomic for files
    elif _renameat2(src, dst, _RENAME_EXCHANGE):
        shutil.rmtree(src)  # src now holds the old folder
    else:
        old = dst.with_name(f".old-{os.getpid()}-{dst.name}")
        os.rename(dst, old)
        try:
            os.rename(src, dst)
        except BaseException:
            os.rename(old, dst)
            raise
        shutil.rmtree(old)


@contextmanager
def _staging(dst: Path, overwrite: bool):
    """A hidden temporary folder beside ``dst``, removed when the block fails (or after the move succeeded)."""
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} already exists; pass overwrite=True (--overwrite) to replace it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", suffix=f"-{dst.name}", dir=dst.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def output_path(weights: str | Path, fmt: str, out_dir: str | Path | None = None, name: str | None = None) -> Path:
    """Where ``export_<fmt>`` writes: ``<out_dir or weights folder>/<name or weights stem>_ncnn_model`` or ``.onnx``."""
    weights = Path(weights)
    suffix = {"ncnn": NCNN_SUFFIX, "onnx": ".onnx"}[fmt]
    return Path(out_dir or weights.parent).resolve() / f"{name or weights.stem}{suffix}"


def _destination(source: Path | None, model: nn.Module, out_dir, name, fmt: str) -> Path:
    if out_dir is None and source is None:
        raise ValueError("out_dir is required when exporting a module rather than a weights file")
    return output_path(source or Path(model_name(model)), fmt, out_dir, name)


def _checked(model: nn.Module, source: Path | None, built: Path, dst: Path, hw, half, data, map_check) -> ParityReport:
    """Parity of the staged export; the report names the destination (the staging folder is about to go)."""
    report = _compare(model, built, hw, half, data, map_check)
    report.path, report.source = str(dst), str(source or model_name(model))
    if report.failures:
        raise ParityError(report)
    return report


# --------------------------------------------------------------------------------------------------------- formats
def export_ncnn(weights_or_model: str | Path | nn.Module, out_dir: str | Path | None = None,
                imgsz: int | tuple[int, int] = 320, half: bool = False, *, data: str | Path | None = None,
                map_check: bool = True, overwrite: bool = False, name: str | None = None) -> Path:
    """Export to ``<out_dir>/<name>_ncnn_model/`` (default: beside the weights, named after them) via pnnx.

    The folder holds model.ncnn.param/bin, the engine's metadata.yaml (AutoBackend loads it), lwdet.json (for the
    torch-free runtime) and parity.json. It appears only after ``check_parity`` passed; see the module docstring.
    """
    _require("pnnx", "ncnn")
    model, source = load_model(weights_or_model)
    hw = check_imgsz(imgsz, model)
    dst = _destination(source, model, out_dir, name, "ncnn")
    with _staging(dst, overwrite) as tmp:
        folder = tmp / dst.name  # named *_ncnn_model so the engine's AutoBackend loads it for the mAP check
        folder.mkdir()
        ready, im = export_ready(model, hw, "ncnn")
        _build_ncnn(ready, im, folder, half)
        metadata = engine_metadata(model, hw, "ncnn", half)
        (folder / "metadata.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True))
        probe = _NcnnRunner(folder, half)
        runtime = {
            "format": "ncnn", "model": model_name(model),
            "names": [metadata["names"][i] for i in range(len(metadata["names"]))],
            "imgsz": list(hw), "strides": [int(s) for s in model.stride.tolist()],
            "input": {"blob": probe.input_name, "shape": [1, 3, *hw], "layout": INPUT_LAYOUT},
            "output": {"blob": probe.output_name, "shape": [4 + len(metadata["names"]), _n_anchors(model, hw)],
                       "layout": OUTPUT_LAYOUT},
            "fp16": bool(half), "ncnn_options": ncnn_options(bool(half)),
            "source": {"weights": source.name if source else None, "sha256": _sha256(source) if source else None},
            "versions": _versions(), "date": metadata["date"],
        }
        (folder / RUNTIME_FILE).write_text(json.dumps(runtime, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        report = _checked(model, source, folder, dst, hw, half, data, map_check)
        report.save(folder / PARITY_FILE)
        _move_into_place(folder, dst, overwrite)
    LOGGER.info("ncnn export: %s", dst)
    return dst


def export_onnx(weights_or_model: str | Path | nn.Module, out_dir: str | Path | None = None,
                imgsz: int | tuple[int, int] = 320, half: bool = False, *, data: str | Path | None = None,
                map_check: bool = True, overwrite: bool = False, name: str | None = None,
                opset: int | None = None) -> Path:
    """Export to ``<out_dir>/<name>.onnx`` (default: beside the weights) with the parity report beside it.

    The engine's metadata goes into the file's metadata_props (AutoBackend reads it). ``half`` stores fp16 weights
    and keeps float32 input/output, as the engine's CPU fp16 export does. The file appears only after
    ``check_parity`` passed; its report ``<name>.onnx.parity.json`` is moved in right after it.
    """
    _require("onnx", "onnxslim", "onnxruntime")
    import onnx
    from ultralytics.utils.export.engine import best_onnx_opset

    model, source = load_model(weights_or_model)
    hw = check_imgsz(imgsz, model)
    dst = _destination(source, model, out_dir, name, "onnx")
    opset = opset or best_onnx_opset(onnx)
    with _staging(dst, overwrite) as tmp:
        file = tmp / dst.name
        ready, im = export_ready(model, hw, "onnx")
        metadata = engine_metadata(model, hw, "onnx", half, data=None, dynamic=False, opset=opset, simplify=True,
                                   nms=False, fraction=1.0)
        _build_onnx(ready, im, file, half, metadata, opset)
        report = _checked(model, source, file, dst, hw, half, data, map_check)
        sidecar = report.save(tmp / parity_file(dst).name)
        _move_into_place(file, dst, overwrite)
        os.replace(sidecar, parity_file(dst))
    LOGGER.info("ONNX export: %s", dst)
    return dst


EXPORTERS = {"ncnn": export_ncnn, "onnx": export_onnx}


def resolve_source(path: str | Path, data: str | Path | None = None) -> tuple[Path, Path | None]:
    """(weights, data YAML or None) from a run folder (weights/best.pt, data.yaml) or a .pt file."""
    path = Path(path)
    if path.is_dir():
        weights = path / "weights" / "best.pt"
        if not weights.is_file():
            raise FileNotFoundError(f"{path} is not a run folder with weights: {weights} does not exist")
        data = data or (path / "data.yaml" if (path / "data.yaml").is_file() else None)
    elif path.suffix == ".pt":
        if not path.is_file():
            raise FileNotFoundError(f"weights not found: {path}")
        weights = path
    else:
        raise FileNotFoundError(f"{path}: neither a run folder nor a .pt file")
    if data is not None and not Path(data).is_file():
        raise FileNotFoundError(f"data YAML not found: {data}")
    return weights, Path(data) if data else None
