"""int8 ncnn export with an accuracy proof: ``lwdet export RUN --int8 --calib DIR|DATA_YAML``.

1. The fp32 ncnn export is built and proven as usual (``export_ncnn``, in the staging folder).
2. Calibration (``lwdet.quantize``): ncnn computes every quantizable layer's input on the calibration images; the
   thresholds (KL by default) give the input scales; weights get one scale per output channel.
3. Accuracy first: the all-int8 model's mAP50-95 (the engine's validator, as every parity mAP) must be within
   ``tolerance`` (relative) of the fp32 export's. If not, a sensitivity pass ranks the layers by the output error
   each causes alone, and the fewest most sensitive layers stay float until it is (at most ``max_float`` of them);
   else the export is refused with the measured numbers and nothing is written.
4. The folder ``<stem>_int8_ncnn_model/`` is a complete export (metadata.yaml, lwdet.json with an ``int8`` entry,
   parity.json with the fp32 / int8 mAPs, the layers kept float and the file sizes), moved into place in one rename.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lwdet.artifacts import NCNN_BIN, NCNN_PARAM, PARITY_FILE, ExportMeta
from lwdet.export.files import _destination, _move_into_place, _staging
from lwdet.export.ncnn import export_ncnn
from lwdet.export.parity import INT8_TOLERANCE as INT8_RAW
from lwdet.export.parity import (
    VACUOUS,
    ParityError,
    ParityReport,
    _compare,
    _engine_data,
    read_parity,
    val_map,
)
from lwdet.export.prepare import check_imgsz, load_model, model_name

if TYPE_CHECKING:
    from torch import nn

LOGGER = logging.getLogger(__name__)

INT8_TOLERANCE = 0.01  # int8 mAP50-95 >= fp32 export's x (1 - tolerance)
MAX_FLOAT = 0.5  # at most this fraction of the quantizable layers may stay float
CALIB_IMAGES = 200  # calibration images used (spread evenly over what is given)
MIN_CALIB_IMAGES = 16
RANK_IMAGES = 8  # calibration images the sensitivity pass compares outputs on
INT8_SUFFIX = "_int8"  # <stem>_int8_ncnn_model
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class CalibrationError(ValueError):
    """Calibration input that cannot calibrate (missing, not images, too few): one line, exit status 2."""


def _split_images(data_yaml: Path, split: str) -> list[Path]:
    import yaml

    d = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    if split not in d:
        raise CalibrationError(f"{data_yaml}: no '{split}' split to calibrate on")
    files = []
    for entry in d[split] if isinstance(d[split], list) else [d[split]]:
        p = Path(entry) if Path(entry).is_absolute() else Path(d["path"]) / entry
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.suffix == ".txt" and p.is_file():
            files += [Path(s) if Path(s).is_absolute() else p.parent / s for s in p.read_text().split() if s]
    return files


def calibration_images(calib: str | Path, n: int = CALIB_IMAGES) -> list[Path]:
    """Up to ``n`` images, evenly spread: a folder's (recursively), or a data YAML's train split."""
    calib = Path(calib)
    if calib.is_dir():
        files = sorted(f for f in calib.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    elif calib.suffix in (".yaml", ".yml") and calib.is_file():
        with tempfile.TemporaryDirectory(prefix="lwdet-calib-") as tmp:
            files = _split_images(_engine_data(calib, Path(tmp)), "train")
    else:
        raise CalibrationError(f"--calib {calib}: not a folder of images or a data YAML")
    if len(files) < MIN_CALIB_IMAGES:
        raise CalibrationError(
            f"--calib {calib}: {len(files)} image(s); int8 calibration needs at least {MIN_CALIB_IMAGES} "
            f"(a few hundred of the kind the detector will see are better)"
        )
    if n < MIN_CALIB_IMAGES:
        raise CalibrationError(f"--calib-images {n}: at least {MIN_CALIB_IMAGES}")
    idx = np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int)
    return [files[i] for i in sorted(set(idx))]


def _loader(hw: tuple[int, int]):
    import cv2

    from lwdet.edge.preprocess import preprocess

    def load(f: Path) -> np.ndarray:
        img = cv2.imread(str(f))
        if img is None:
            raise CalibrationError(f"--calib: cannot read image {f}")
        return preprocess(img, hw)[0]

    return load


def int8_path(weights: str | Path, out_dir=None, name: str | None = None) -> Path:
    """Where ``export_ncnn_int8`` writes: ``<stem>_int8_ncnn_model`` beside the weights."""
    from lwdet.export.files import output_path

    return output_path(weights, "ncnn", out_dir, name or f"{Path(weights).stem}{INT8_SUFFIX}")


def export_ncnn_int8(
    weights: str | Path | nn.Module,
    out_dir: str | Path | None = None,
    imgsz: int | tuple[int, int] = 320,
    *,
    calib: str | Path,
    data: str | Path | None,
    tolerance: float = INT8_TOLERANCE,
    method: str = "kl",
    calib_images: int = CALIB_IMAGES,
    max_float: float = MAX_FLOAT,
    overwrite: bool = False,
    name: str | None = None,
    trust: bool = False,
    progress=None,
    source: str | Path | None = None,
) -> Path:
    """The int8 export of ``weights`` (see the module docstring); returns its folder. ``ParityError`` (the numbers in
    its report) when no allowed set of float layers meets ``tolerance``; ``CalibrationError`` for bad input.

    ``weights`` may be a model loaded already (``load_model``) with ``source`` its file: it is loaded once, and the
    fp32 export inside is made from the same model."""
    from lwdet.quantize import (
        METHODS,
        blob_scales,
        collect_stats,
        int8_graph,
        keep_float_search,
        rank_layers,
        read_graph,
    )

    if method not in METHODS:
        raise CalibrationError(f"--calib-method {method!r}: expected one of {', '.join(METHODS)}")
    if not 0 <= tolerance < 1:
        raise CalibrationError(f"--int8-tolerance {tolerance}: a fraction in [0, 1), e.g. 0.01 for 1 %")
    if data is None:
        raise CalibrationError("int8 needs a data YAML for its accuracy proof (the run's data.yaml, or --data)")
    images = calibration_images(calib, calib_images)  # bad input fails before any work
    model, source = load_model(weights, trust=trust, source=source)
    hw = check_imgsz(imgsz, model)
    stem = (source or Path(model_name(model))).stem
    dst = _destination(source, model_name(model), out_dir, name or f"{stem}{INT8_SUFFIX}", "ncnn")
    load = _loader(hw)
    with _staging(dst, overwrite) as tmp:
        fp32_dir = export_ncnn(model, tmp, hw, data=data, map_check=True, name="fp32", source=source)
        fp32 = read_parity(fp32_dir)
        graph = read_graph(fp32_dir / NCNN_PARAM, fp32_dir / NCNN_BIN)
        layers = graph.quantizable()
        blobs = sorted({lay.bottoms[0] for lay in layers})
        stats = collect_stats(fp32_dir / NCNN_PARAM, fp32_dir / NCNN_BIN, images, load, blobs, progress)
        scales = blob_scales(graph, stats, method)
        data_yaml = _engine_data(data, tmp)
        trial = tmp / "trial_ncnn_model"  # the engine's AutoBackend recognises ncnn folders by the suffix
        shutil.copytree(fp32_dir, trial)
        (trial / PARITY_FILE).unlink()

        def evaluate(keep) -> float:
            int8_graph(graph, scales, keep).write(trial / NCNN_PARAM, trial / NCNN_BIN)
            return val_map(trial, data_yaml, hw)

        def ranked() -> list[str]:
            inputs = [load(f) for f in images[:RANK_IMAGES]]
            order = rank_layers(graph, scales, inputs, tmp, max(hw), progress)
            LOGGER.info("int8 sensitivity, worst first: %s", ", ".join(f"{n} {e:.3g}" for n, e in order[:8]))
            return [n for n, _ in order]

        map_fp32 = float(fp32.map_export)
        target = map_fp32 * (1 - tolerance)
        max_kept = int(max_float * len(layers))
        kept, search = keep_float_search(ranked, evaluate, target, max_kept)
        int8_graph(graph, scales).write(tmp / "all.param", tmp / "all.bin")
        sizes = {
            "bin_bytes_fp32": (fp32_dir / NCNN_BIN).stat().st_size,
            "bin_bytes_int8_all": (tmp / "all.bin").stat().st_size,
        }
        info = {
            "method": method,
            "calib": str(calib),
            "calib_images": len(images),
            "tolerance": tolerance,
            "map_torch": fp32.map_torch,
            "map_fp32": map_fp32,
            "map_int8_all": search.steps[0].map5095,
            "map_int8": None,
            "target": target,
            "layers": len(layers),
            "layers_int8": None,
            "kept_float": kept,
            "max_float": max_kept,
            "search": [vars(s) for s in search.steps],
            **sizes,
        }
        folder = tmp / dst.name
        shutil.copytree(fp32_dir, folder)
        if kept is None:
            best = max(search.steps, key=lambda s: s.map5095)
            report = _int8_report(fp32, folder, dst, info, best.map5095)
            report.failures.append(
                f"int8 mAP50-95 {search.steps[0].map5095:.4f} with every layer int8, best {best.map5095:.4f} with "
                f"{best.kept} of {len(layers)} layers float (at most {max_kept}, --int8-max-float {max_float}); "
                f"fp32 export {map_fp32:.4f}, target >= {target:.4f} (--int8-tolerance {tolerance})"
            )
            raise ParityError(report)
        final = int8_graph(graph, scales, kept)
        final.write(folder / NCNN_PARAM, folder / NCNN_BIN)
        map_int8 = next(s.map5095 for s in reversed(search.steps) if s.kept == len(kept))
        info.update(map_int8=map_int8, layers_int8=len(layers) - len(kept),
                    bin_bytes_int8=(folder / NCNN_BIN).stat().st_size)  # fmt: skip
        int8 = {k: info[k] for k in ("method", "calib_images", "layers", "layers_int8", "kept_float")}
        replace(ExportMeta.load(folder), int8=int8).save(folder)
        report = _compare(model, folder, hw, False, data, False, tolerance=INT8_RAW)
        report = _int8_report(fp32, folder, dst, info, map_int8, raw=report)
        if report.failures:
            raise ParityError(report)
        report.save(folder / PARITY_FILE)
        _move_into_place(folder, dst, overwrite)
    LOGGER.info("int8 ncnn export: %s (%d of %d layers int8, mAP50-95 %.4f vs fp32 %.4f)", dst, info["layers_int8"],
                len(layers), map_int8, map_fp32)  # fmt: skip
    return dst


def _int8_report(fp32: ParityReport, folder: Path, dst: Path, info: dict, map_int8: float, raw=None) -> ParityReport:
    """parity.json of an int8 export: raw outputs against PyTorch (gross-breakage tolerances, as fp16), mAP against
    the fp32 export's (relative tolerance), and the ``int8`` section."""
    r = raw or fp32
    report = ParityReport(
        format="ncnn",
        path=str(dst),
        source=fp32.source,
        imgsz=fp32.imgsz,
        half=False,
        n_random=r.n_random,
        n_images=r.n_images,
        max_abs_diff=r.max_abs_diff if raw else float("nan"),
        box_max_abs_diff=r.box_max_abs_diff if raw else float("nan"),
        score_max_abs_diff=r.score_max_abs_diff if raw else float("nan"),
        box_tolerance=r.box_tolerance if raw else float("nan"),
        score_tolerance=r.score_tolerance if raw else float("nan"),
        map_torch=fp32.map_torch,
        map_export=map_int8,
        map_tolerance=info["map_fp32"] - info["target"],
        data=fp32.data,
        failures=list(raw.failures) if raw else [],
        map_check=VACUOUS if not info["map_fp32"] else "compared with the fp32 export (relative tolerance)",
        reference_branches=fp32.reference_branches,
        reparameterized=fp32.reparameterized,
        int8=info,
    )
    return report
