"""Prove that an export computes what PyTorch computes: raw outputs on random inputs and validation images, and
mAP50-95 through the engine's validator. ``ParityReport`` is what parity.json holds."""

from __future__ import annotations

import json
import logging
import tempfile
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from lwdet.artifacts import MAP_TOLERANCE, parity_file
from lwdet.export.prepare import check_imgsz, load_model, model_name
from lwdet.export.runners import _NcnnRunner, _OnnxRunner, export_format
from lwdet.reparam import branches

LOGGER = logging.getLogger(__name__)


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
# int8 (lwdet.export.int8): rounding every activation moves single low-score anchors anywhere (a trained RepGhostNet-0.5
#   at 160 px: 66 px and 0.10 in score with mAP50-95 0.2289 against fp32's 0.2300; a 5-epoch GhostNet at 128 px: 133
#   px), so the raw outputs are reported and only their shape and finiteness checked (inf and NaN fail); the mAP
#   against the fp32 export is the criterion.
INT8_TOLERANCE = Tolerance(box_rel=1e6, score=1.0)
# |mAP50-95(export) - mAP50-95(PyTorch)| <= MAP_TOLERANCE (lwdet.artifacts: 0.005, i.e. 0.5 mAP points)
VACUOUS = "vacuous: no detections"  # ParityReport.map_check when PyTorch's mAP is 0: 0 against 0 proves nothing


class ParityError(RuntimeError):
    """The export does not compute what PyTorch computes; ``.report`` holds the numbers."""

    def __init__(self, report: ParityReport):
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
    map_check: str | None = None  # None: mAP not compared; "compared"; VACUOUS: PyTorch mAP50-95 was 0
    # the PyTorch side's blocks with training-time branches (the trained model as it is; 0 for most detectors) and
    # what the export folded (lwdet.reparam: blocks, params_trained, params_deployed; empty when nothing)
    reference_branches: int = 0
    reparameterized: dict = field(default_factory=dict)
    # an int8 export (lwdet.export.int8): calibration, fp32 / int8 mAP50-95, the layers kept float, sizes; else empty
    int8: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def save(self, file: str | Path) -> Path:
        Path(file).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return Path(file)

    @classmethod
    def from_dict(cls, d: dict) -> ParityReport:
        return cls(**{k: v for k, v in d.items() if k != "passed"})


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
            files += [
                Path(line.strip()) if Path(line.strip()).is_absolute() else p.parent / line.strip()
                for line in p.read_text().splitlines()
                if line.strip()
            ]
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
        args = dict(
            task="detect",
            mode="val",
            data=str(data_yaml),
            imgsz=size,
            batch=1,
            rect=False,
            device="cpu",
            workers=0,
            plots=False,
            verbose=False,
            save_json=False,
            project=tmp,
            name="val",
            exist_ok=True,
        )
        stats = DetectionValidator(args=args)(model=model)
    return float(stats["metrics/mAP50-95(B)"])


def check_parity(
    weights_or_model: str | Path | nn.Module,
    export_path: str | Path,
    imgsz: int | tuple[int, int],
    *,
    half: bool = False,
    data: str | Path | None = None,
    map_check: bool = True,
    n_random: int = 2,
    n_images: int = 4,
    raise_on_failure: bool = True,
    trust: bool = False,
) -> ParityReport:
    """Compare an export with PyTorch: raw output on random inputs and validation images, and mAP50-95.

    Raw output: max |difference| of boxes (pixels) and scores against ``TOLERANCES[half]``; ncnn runs with
    ``ncnn_options(half)``. mAP (when ``data`` is given and ``map_check``): both through the engine's validator,
    |difference| <= ``MAP_TOLERANCE``. Raises ``ParityError`` (carrying the report) when a number is out of
    tolerance, unless ``raise_on_failure=False``. When PyTorch's mAP is 0 the report's ``map_check`` says
    ``VACUOUS`` and a warning is logged: the comparison then shows nothing about the export.
    """
    model, source = load_model(weights_or_model, trust=trust)
    report = _compare(model, Path(export_path), check_imgsz(imgsz, model), half, data, map_check, n_random, n_images)
    report.source = str(source or model_name(model))
    if report.failures and raise_on_failure:
        raise ParityError(report)
    return report


def _compare(
    model: nn.Module,
    export_path: Path,
    hw: tuple[int, int],
    half: bool,
    data,
    map_check: bool,
    n_random: int = 2,
    n_images: int = 4,
    tolerance: Tolerance | None = None,
) -> ParityReport:
    fmt = export_format(export_path)
    tol = tolerance or TOLERANCES[bool(half)]
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
            format=fmt,
            path=str(export_path),
            source=model_name(model),
            imgsz=list(hw),
            half=bool(half),
            n_random=n_random,
            n_images=len(images),
            max_abs_diff=max(box, score),
            box_max_abs_diff=box,
            score_max_abs_diff=score,
            box_tolerance=tol.box_rel * max(hw),
            score_tolerance=tol.score,
            data=str(data) if data else None,
            failures=failures,
            reference_branches=branches(model),
        )
        if not (box <= report.box_tolerance):  # also catches NaN
            failures.append(f"boxes max |diff| {box:.3g} px > {report.box_tolerance:.3g} px")
        if not (score <= report.score_tolerance):
            failures.append(f"scores max |diff| {score:.3g} > {report.score_tolerance:.3g}")
        if data_yaml and map_check and not failures:  # a raw-output failure already decides; mAP costs time
            report.map_torch = val_map(model, data_yaml, hw)
            report.map_export = val_map(export_path, data_yaml, hw)
            report.map_check = VACUOUS if report.map_torch == 0 else "compared"
            if report.map_check == VACUOUS:
                LOGGER.warning(
                    "parity %s: PyTorch mAP50-95 is 0 on %s (the model detects nothing there), so the "
                    "mAP check is vacuous: 0 against 0 proves nothing; only the raw outputs were compared",
                    fmt,
                    data,
                )
            if not abs(report.map_export - report.map_torch) <= MAP_TOLERANCE:
                failures.append(
                    f"mAP50-95 PyTorch {report.map_torch:.4f} vs {fmt} {report.map_export:.4f} "
                    f"(|diff| {abs(report.map_export - report.map_torch):.4f} > {MAP_TOLERANCE})"
                )
    maps = "" if report.map_torch is None else f", mAP50-95 {report.map_torch:.4f} vs {report.map_export:.4f}"
    LOGGER.info(
        "parity %s: boxes max |diff| %.3g px (tol %.3g), scores %.3g (tol %.3g)%s",
        fmt,
        box,
        report.box_tolerance,
        score,
        report.score_tolerance,
        maps,
    )
    return report


def read_parity(export_path: str | Path) -> ParityReport:
    """The parity report saved with an export."""
    return ParityReport.from_dict(json.loads(parity_file(export_path).read_text(encoding="utf-8")))


def _checked(
    model: nn.Module, ready: nn.Module, source: Path | None, built: Path, dst: Path, hw, half, data, map_check
) -> ParityReport:
    """Parity of the staged export built from ``ready`` (``model`` fused); the report names the destination (the
    staging folder is about to go) and what re-parameterization folded."""
    report = _compare(model, built, hw, half, data, map_check)
    report.path, report.source = str(dst), str(source or model_name(model))
    report.reparameterized = dict(getattr(ready, "reparameterized", {}))
    if report.failures:
        raise ParityError(report)
    return report
