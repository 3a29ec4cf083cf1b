"""Datasets: the embedded default detection set and data-YAML handling.

``DEFAULT_DATA`` is ``fmnist-det.yaml``, shipped in the package (``lwdet/cfg/datasets/``). Its
``lwdet_synth:`` section tells :func:`ensure_dataset` how to generate the images
(with :func:`lwdet.data.synth.build_detection_set`) the first time it is used, into
``datasets/fmnist-det/`` under the current folder (or ``$LWDET_DATASETS``; see :mod:`lwdet.cfg`).
The other build-on-first-use sections: ``lwdet_bench:`` (:mod:`lwdet.data.benchmark`) and ``lwdet_import:``
(real annotations imported, optionally tiled: :mod:`lwdet.data.recipe`). A YAML has at most one of them.
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from lwdet import cfg

from .layout import dataset_root
from .recipe import IMPORT_KEY, check_section
from .synth import build_detection_set

__all__ = [
    "DEFAULT_DATA",
    "SYNTH_KEY",
    "IMPORT_KEY",
    "data_classes",
    "dataset_root",
    "ensure_dataset",
    "write_engine_yaml",
    "build_detection_set",
]

LOGGER = logging.getLogger(__name__)

DEFAULT_DATA = cfg.DATASETS / "fmnist-det.yaml"
SYNTH_KEY = "lwdet_synth"
BENCH_KEY = "lwdet_bench"  # a data YAML naming a build of the benchmark set (lwdet.data.benchmark), built on first use
BENCH_ARGS = ("seed", "n_train", "n_val", "n_test", "workers")
BUILD_KEYS = (SYNTH_KEY, BENCH_KEY, IMPORT_KEY)  # sections that build the dataset on first use
_REQUIRED = ("train", "val", "names")
# A data YAML is data: the engine would run a 'download' entry as a shell or Python script, lwdet refuses it.
DATA_KEYS = ("path", "train", "val", "test", "names", "nc", "channels", *BUILD_KEYS)


def _check_keys(data_yaml: Path, data: dict[str, Any]) -> None:
    import difflib

    if "download" in data:
        raise ValueError(
            f"{data_yaml}: key 'download' is refused: lwdet never runs a data YAML's download script; "
            "fetch the data yourself and point 'path' at it"
        )
    for key in data:
        if key not in DATA_KEYS:
            close = difflib.get_close_matches(str(key), DATA_KEYS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"{data_yaml}: unknown key '{key}'{hint} Known: {', '.join(DATA_KEYS)}")
    if len(builds := [k for k in BUILD_KEYS if data.get(k) is not None]) > 1:
        raise ValueError(f"{data_yaml}: give one build section, not {' and '.join(builds)}")
    if "nc" in data and data["nc"] != len(data["names"]):
        raise ValueError(f"{data_yaml}: 'nc' is {data['nc']} but 'names' lists {len(data['names'])} classes")


def _load_yaml(data_yaml: Path) -> dict[str, Any]:
    if not data_yaml.is_file():
        raise FileNotFoundError(f"dataset YAML not found: {data_yaml}")
    try:
        data = yaml.safe_load(data_yaml.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{data_yaml}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{data_yaml}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _normalise_names(data_yaml: Path, names: Any) -> dict[int, str]:
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        raise ValueError(f"{data_yaml}: key 'names' must be a non-empty list or {{id: name}} mapping")
    try:
        out = {int(k): str(v) for k, v in names.items()}
    except (TypeError, ValueError):
        raise ValueError(f"{data_yaml}: key 'names' must map integer ids to names") from None
    if sorted(out) != list(range(len(out))):
        raise ValueError(f"{data_yaml}: key 'names' ids must be 0..{len(out) - 1}, got {sorted(out)}")
    return dict(sorted(out.items()))


def _synth_kwargs(data_yaml: Path, synth: Any, names: dict[int, str]) -> dict[str, Any]:
    if not isinstance(synth, dict):
        raise ValueError(f"{data_yaml}: key '{SYNTH_KEY}' must be a mapping of build_detection_set arguments")
    allowed = set(inspect.signature(build_detection_set).parameters) - {"out_dir"}
    unknown = sorted(set(synth) - allowed)
    if unknown:
        raise ValueError(
            f"{data_yaml}: unknown key(s) in '{SYNTH_KEY}': {', '.join(map(str, unknown))} (allowed: {', '.join(sorted(allowed))})"
        )
    kwargs = dict(synth)
    kwargs.setdefault("classes", list(names.values()))
    if [str(c) for c in kwargs["classes"]] != list(names.values()):
        raise ValueError(
            f"{data_yaml}: '{SYNTH_KEY}.classes' {list(kwargs['classes'])} must equal 'names' {list(names.values())} (same order)"
        )
    for key in ("n_train", "n_val"):
        if key not in kwargs:
            raise ValueError(f"{data_yaml}: missing key '{SYNTH_KEY}.{key}'")
    return kwargs


def _bench_kwargs(data_yaml: Path, bench: Any, names: dict[int, str]) -> dict[str, Any]:
    """The ``lwdet_bench`` section, checked, as build_benchmark_set arguments."""
    from lwdet.data.benchmark import CLASS_NAMES

    check_section(data_yaml, BENCH_KEY, bench, BENCH_ARGS, ValueError)
    if list(names.values()) != list(CLASS_NAMES):
        raise ValueError(f"{data_yaml}: 'names' must be the benchmark set's classes in order: {list(CLASS_NAMES)}")
    return dict(bench)


def _build_if_missing(root: Path, build, kwargs: dict[str, Any], data_yaml: Path) -> None:
    """Build the dataset folder ``root`` with ``build(root, **kwargs)`` unless it exists."""
    if root.exists():
        return
    LOGGER.info("dataset %s not found; generating it from %s", root, data_yaml.name)
    try:
        build(root, **kwargs)
    except FileExistsError:
        if not root.is_dir():  # another process built it concurrently: fine
            raise


def _split_paths(root: Path, entry: Any) -> list[Path]:
    entries = entry if isinstance(entry, (list, tuple)) else [entry]
    return [p if p.is_absolute() else root / p for p in (Path(str(e)) for e in entries)]


def ensure_dataset(data_yaml: str | os.PathLike) -> dict[str, Any]:
    """Load a data YAML, generating its dataset first if it is a missing synthetic one.

    Returns the YAML's dict with ``path`` absolute (relative ``path`` values are
    resolved against the YAML's folder, or for a data YAML shipped in the package
    against :func:`lwdet.cfg.datasets_root`; no ``path`` means the YAML's folder) and
    ``names`` as ``{id: name}``.

    Raises FileNotFoundError if the YAML, the dataset folder or a train/val split
    is missing, ValueError if a required key is missing or malformed.
    """
    data_yaml = Path(data_yaml).expanduser().absolute()
    data = _load_yaml(data_yaml)
    for key in _REQUIRED:
        if data.get(key) in (None, "", [], {}):
            raise ValueError(f"{data_yaml}: missing required key '{key}'")
    data["names"] = _normalise_names(data_yaml, data["names"])
    _check_keys(data_yaml, data)

    root = dataset_root(data_yaml, data)
    data["path"] = str(root)

    if data.get(SYNTH_KEY) is not None:
        _build_if_missing(
            root, build_detection_set, _synth_kwargs(data_yaml, data[SYNTH_KEY], data["names"]), data_yaml
        )
    if data.get(BENCH_KEY) is not None:
        from lwdet.data.benchmark import build_benchmark_set

        _build_if_missing(
            root, build_benchmark_set, _bench_kwargs(data_yaml, data[BENCH_KEY], data["names"]), data_yaml
        )
    if data.get(IMPORT_KEY) is not None:
        from .recipe import build_import, full_val_dirs, import_kwargs

        kwargs = import_kwargs(data_yaml, data[IMPORT_KEY], data["names"])
        _build_if_missing(root, build_import, kwargs, data_yaml)
        if kwargs["full_val"] and not all(d.is_dir() for d in full_val_dirs(root)):
            raise FileNotFoundError(
                f"{data_yaml}: '{IMPORT_KEY}.full_val' is true but {root} has no {full_val_dirs(root)[0]} (built "
                "before full_val was set?): move the dataset folder away to build it again"
            )
    if not root.is_dir():
        raise FileNotFoundError(f"{data_yaml}: dataset folder not found: {root}")
    for key in ("train", "val"):
        for p in _split_paths(root, data[key]):
            if not p.exists():
                raise FileNotFoundError(f"{data_yaml}: '{key}' not found: {p}")
    return data


def data_classes(data_yaml: str | os.PathLike) -> tuple[int, int]:
    """(classes, image channels) of a data YAML, as the engine's trainer reads them (``len(names)``, ``channels``
    or 3), without building or checking its dataset: what a model is built for before training starts."""
    data_yaml = Path(data_yaml).expanduser().absolute()
    data = _load_yaml(data_yaml)
    if data.get("names") in (None, "", [], {}):
        raise ValueError(f"{data_yaml}: missing required key 'names'")
    return len(_normalise_names(data_yaml, data["names"])), int(data.get("channels", 3))


def build_missing(data_yaml: str | os.PathLike) -> Path | None:
    """Build the dataset of a data YAML with a build section if its folder is missing; returns the folder built
    (None: nothing to build). For a check, which otherwise only reads."""
    data_yaml = Path(data_yaml).expanduser().absolute()
    data = _load_yaml(data_yaml)
    if not any(data.get(k) is not None for k in BUILD_KEYS) or dataset_root(data_yaml, data).exists():
        return None
    return Path(ensure_dataset(data_yaml)["path"])


def write_engine_yaml(data_yaml: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write the data YAML for the engine (ultralytics) to ``out_path``.

    The copy has an absolute ``path`` (ultralytics would resolve a relative one
    against its own settings folder) and no build section (``lwdet_synth`` ...). The dataset
    is generated first if needed. Refuses to write inside the dataset folder.
    """
    data = ensure_dataset(data_yaml)
    for key in BUILD_KEYS:
        data.pop(key, None)
    out_path = Path(out_path).expanduser().absolute()
    root = Path(data["path"])
    if out_path.resolve().is_relative_to(root):
        raise ValueError(f"refusing to write the engine YAML inside the dataset folder {root}: {out_path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = f"# Engine copy of {Path(data_yaml).absolute()} written by lwdet; do not edit.\n" + yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", dir=out_path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path
