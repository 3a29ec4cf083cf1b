"""One contract per artifact: the files of a run folder and of an export, the export metadata (``lwdet.json``) and
how a path given by a person resolves to them. Torch-free and YAML-free: the Pi runtime (``lwdet.edge``) reads it.

Run folder (written by ``lwdet.training``, the engine's trainer)::

    <run>/weights/best.pt, weights/last.pt, results.csv, args.yaml, data.yaml, <model>.yaml,
          ncnn_layer_type_ms.json (lwdet.parts, written by the study)

Exports (written by ``lwdet.export`` beside the weights they came from)::

    <stem>_ncnn_model/model.ncnn.param, model.ncnn.bin, lwdet.json, metadata.yaml, parity.json
    <stem>.onnx, <stem>.onnx.parity.json
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

from lwdet.errors import ConfigError

# ---------------------------------------------------------------------------------------------------- run folder
WEIGHTS_DIR = "weights"
BEST = "best.pt"  # inside WEIGHTS_DIR
LAST = "last.pt"
RESULTS_CSV = "results.csv"  # the engine's per-epoch metrics
ARGS_YAML = "args.yaml"  # the engine's training arguments
DATA_YAML = "data.yaml"  # the dataset, as the engine read it (absolute paths)
LAYER_TIMES = "ncnn_layer_type_ms.json"  # ncnn ms per layer type (lwdet.parts)
SLICED_EVAL = "sliced_eval.json"  # a study's full-size accuracy, sliced vs letterbox (lwdet.study.sliced)


def best_weights(run: str | Path) -> Path:
    return Path(run) / WEIGHTS_DIR / BEST


def last_weights(run: str | Path) -> Path:
    return Path(run) / WEIGHTS_DIR / LAST


# ------------------------------------------------------------------------------------------------------- exports
NCNN_SUFFIX = "_ncnn_model"  # the engine's AutoBackend recognises ncnn folders by this suffix
NCNN_PARAM, NCNN_BIN = "model.ncnn.param", "model.ncnn.bin"
NCNN_FILES = (NCNN_PARAM, NCNN_BIN)
EXPORT_META = "lwdet.json"  # ExportMeta, for the torch-free runtime (stdlib json: the Pi has no PyYAML)
ENGINE_META = "metadata.yaml"  # the engine's metadata (AutoBackend reads it)
PARITY_FILE = "parity.json"  # inside an ncnn folder; an ONNX file gets a sidecar <name>.onnx.parity.json
ONNX_SUFFIX = ".onnx"
MAP_TOLERANCE = 0.005  # |mAP50-95 difference| an export may show against its reference (parity; per-board numerics)


def parity_file(export_path: str | Path) -> Path:
    """Where an export's parity report lives: inside an ncnn folder, beside an ONNX file."""
    export_path = Path(export_path)
    return export_path / PARITY_FILE if export_path.suffix != ONNX_SUFFIX else Path(f"{export_path}.parity.json")


def ncnn_folder(weights: str | Path) -> Path:
    """``<stem>_ncnn_model`` beside a weights file: where ``export_ncnn`` writes by default."""
    weights = Path(weights)
    return weights.parent / f"{weights.stem}{NCNN_SUFFIX}"


# --------------------------------------------------------------------------------------------------- input size
def check_imgsz(imgsz, stride: int = 32) -> tuple[int, int]:
    """(H, W) from an int or a pair, each a positive multiple of ``stride`` (the model's largest stride)."""
    hw = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz) if isinstance(imgsz, (tuple, list)) else ()
    if len(hw) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % stride == 0 for v in hw
    ):
        raise ValueError(
            f"imgsz must be a positive multiple of {stride} (the largest stride) or a pair of them, got {imgsz!r}"
        )
    return hw


# --------------------------------------------------------------------------------------------- export metadata
EXPORT_META_VERSION = 1
OUTPUT_LAYOUT = "(4+nc, N) per image: rows 0-3 cx, cy, w, h in input pixels; rows 4.. class scores after sigmoid"
INPUT_LAYOUT = "(3, H, W) per image: RGB float32 in [0, 1], letterboxed (pad value 114/255), no mean/std"


@dataclass(frozen=True)
class Blob:
    """An input or output of the exported graph: ncnn blob name, shape, and what its values mean."""

    blob: str
    shape: list[int]
    layout: str = ""


@dataclass(frozen=True)
class ExportMeta:
    """What ``lwdet.json`` says about an export; ``lwdet.export`` writes it and ``lwdet.edge`` reads it.

    ``version`` changes whenever a key changes meaning or goes; readers refuse versions they do not know.
    """

    format: str  # "ncnn"
    model: str  # the model YAML's stem
    names: list[str]  # class names, by class id
    imgsz: list[int]  # [H, W], fixed in the graph
    input: Blob
    output: Blob
    strides: list[int] = field(default_factory=lambda: [8, 16, 32])
    fp16: bool = False
    ncnn_options: dict = field(default_factory=dict)  # the ncnn Net options parity was checked with
    source: dict = field(default_factory=dict)  # {"weights": file name, "sha256": ...}
    versions: dict = field(default_factory=dict)  # package versions at export time
    date: str = ""
    # optional, added after export by tools/pi_numerics.py report --record: the per-board numerics measured under
    # emulation and the runtime's per-board fp16 default (docs: deploy/raspberry-pi/README.md section 8)
    board_numerics: dict = field(default_factory=dict)
    # what the export folded before conversion (lwdet.reparam): {"blocks", "params_trained", "params_deployed"};
    # empty when the detector has no re-parameterizable branches
    reparameterized: dict = field(default_factory=dict)
    # an int8 export (lwdet.export.int8): {"method", "calib_images", "layers", "layers_int8", "kept_float"}; empty
    # for a float export. ncnn runs the layers stored int8 in int8 (``opt.use_int8_inference``, on by default)
    int8: dict = field(default_factory=dict)
    version: int = EXPORT_META_VERSION

    REQUIRED = ("version", "format", "model", "names", "imgsz", "input", "output")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {"version": d.pop("version"), **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, folder: str | Path) -> Path:
        """Write ``<folder>/lwdet.json`` atomically (the one writer of that file)."""
        file = Path(folder) / EXPORT_META
        tmp = file.with_name(f".{file.name}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, file)
        return file

    @classmethod
    def from_dict(cls, d: dict, where: str = EXPORT_META) -> ExportMeta:
        """Check and convert; a ConfigError naming ``where`` and the key for an unknown version or a missing key."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(d).__name__}")
        if d.get("version") != EXPORT_META_VERSION:
            if "version" not in d:
                raise ConfigError(
                    f"{where}: missing key 'version' (written by an lwdet older than this format; re-export the model)"
                )
            raise ConfigError(
                f"{where}: unknown version {d['version']!r} (this lwdet reads version "
                f"{EXPORT_META_VERSION}); re-export the model or update lwdet"
            )
        missing = [k for k in cls.REQUIRED if k not in d]
        if missing:
            raise ConfigError(f"{where}: missing key {missing[0]!r}")
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(d) - known):
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} for version {EXPORT_META_VERSION}")
        try:
            blobs = {k: Blob(**d[k]) if isinstance(d[k], dict) else Blob(str(d[k]), []) for k in ("input", "output")}
            names = [str(n) for n in d["names"]]
            imgsz = [int(v) for v in d["imgsz"]]
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: key 'input', 'output', 'names' or 'imgsz' malformed ({e})") from None
        if len(imgsz) != 2:
            raise ConfigError(f"{where}: key 'imgsz' must be [H, W], got {d['imgsz']!r}")
        return cls(**{**d, **blobs, "names": names, "imgsz": imgsz})

    @classmethod
    def from_json(cls, text: str, where: str = EXPORT_META) -> ExportMeta:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{where}: not valid JSON ({e})") from None
        return cls.from_dict(d, where)

    @classmethod
    def load(cls, folder: str | Path) -> ExportMeta:
        file = Path(folder) / EXPORT_META
        return cls.from_json(file.read_text(encoding="utf-8"), str(file))


# ---------------------------------------------------------------------------------------------- source resolution
class Source(NamedTuple):
    """What a path names: the weights (.pt), the run folder they belong to, the export, and the data YAML."""

    weights: Path | None  # None: an export whose weights are not beside it
    run: Path | None = None
    export: Path | None = None  # a *_ncnn_model folder or a .onnx file
    data: Path | None = None


def _run_of(weights: Path) -> Path | None:
    run = weights.parent.parent
    return run if weights.parent.name == WEIGHTS_DIR and (run / ARGS_YAML).is_file() else None


def export_weights(export: Path) -> Path:
    """The .pt an export came from, beside it: lwdet.json's ``source.weights``, else ``<stem>.pt`` (returned even
    when missing, for the error message)."""
    export = Path(export)
    if export.suffix == ONNX_SUFFIX:
        return export.with_suffix(".pt")
    names = []
    if (export / EXPORT_META).is_file():
        try:
            names.append(
                (json.loads((export / EXPORT_META).read_text(encoding="utf-8")).get("source") or {}).get("weights")
            )
        except (OSError, ValueError, AttributeError):
            pass
    stem = export.name.removesuffix(NCNN_SUFFIX)
    candidates = [export.parent / n for n in names if n] + [export.parent / f"{stem}.pt"]
    return next((c for c in candidates if c.is_file()), candidates[0])


def resolve_source(path: str | Path, data: str | Path | None = None, *, need_weights: bool = True) -> Source:
    """A run folder (weights/best.pt, data.yaml), a .pt file or an export (*_ncnn_model folder, .onnx) -> Source.

    A run folder's ``data.yaml`` is the data unless ``data`` is given. With ``need_weights`` (default), an export
    whose weights are not beside it is a FileNotFoundError; without it, ``weights`` is None then.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such file or folder" if path.suffix != ".pt" else f"weights not found: {path}"
        )
    run = export = None
    if path.is_dir() and path.name.endswith(NCNN_SUFFIX) or path.suffix == ONNX_SUFFIX:
        export, weights = path, export_weights(path)
        if not weights.is_file():
            if need_weights:
                raise FileNotFoundError(f"{path}: the weights it was exported from are not there ({weights})")
            weights = None
    elif path.is_dir():
        weights, run = best_weights(path), path
        if not weights.is_file():
            raise FileNotFoundError(f"{path} is not a run folder with weights: {weights} does not exist")
    elif path.suffix == ".pt":
        weights = path
    else:
        raise FileNotFoundError(f"{path}: neither a run folder, a .pt file nor an export")
    run = run or (_run_of(weights) if weights else None)
    if data is None and run is not None and (run / DATA_YAML).is_file():
        data = run / DATA_YAML
    if data is not None and not Path(data).is_file():
        raise FileNotFoundError(f"data YAML not found: {data}")
    return Source(weights, run, export, Path(data) if data else None)


def export_siblings(folder: str | Path) -> dict[str, Path | None]:
    """The .pt an export came from and an .onnx of it, where present: lwdet.json's ``source.weights`` or
    ``<stem>.pt``, and ``<stem>.onnx``, beside ``<stem>_ncnn_model/``; else the first such file inside it."""
    folder = Path(folder)
    stem = folder.name.removesuffix(NCNN_SUFFIX)
    found = {}
    for suffix, beside in (("pt", export_weights(folder)), ("onnx", folder.parent / f"{stem}{ONNX_SUFFIX}")):
        found[suffix] = beside if beside.is_file() else (sorted(folder.glob(f"*.{suffix}")) or [None])[0]
    return found
