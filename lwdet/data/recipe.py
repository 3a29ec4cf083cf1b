"""The ``lwdet_import:`` section of a data YAML: build a YOLO dataset from real annotations the first time it is used.

    path: neon-trees
    train: images/train
    val: images/val
    names: {0: Tree}
    lwdet_import:
      format: voc                                # voc | coco | csv, as `lwdet data import --format`
      source: ../shared/datasets/neon-trees      # only read; relative: beside the YAML, then the working folder
      val: [2019_YELL_2_541000_4977000_image_crop.png]   # the val images by name (or split: [0.8, 0.2], seed: 0)
      tile: 320
      overlap: 64
      full_val: true                             # also images/val-full, labels/val-full: the val images untiled

The keys and their defaults are those of ``lwdet data import`` (:data:`DEFAULTS`); the split is by source image,
before tiling, so no tile of a val image is trained on. ``classes`` defaults to the YAML's ``names`` (in order), so
the written class ids are the YAML's. The build is :func:`lwdet.data.importers.import_dataset`: into a temporary
folder beside the dataset folder, renamed into place when complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lwdet.errors import ConfigError

IMPORT_KEY = "lwdet_import"


def check_section(data_yaml: Path, key: str, section: Any, allowed, error: type[Exception] = ConfigError) -> None:
    """A data YAML's build section (``lwdet_import``, ``lwdet_bench``): a mapping with only ``allowed`` keys."""
    if not isinstance(section, dict):
        raise error(f"{data_yaml}: key '{key}' must be a mapping of {', '.join(allowed)}")
    unknown = sorted(set(map(str, section)) - set(allowed))
    if unknown:
        raise error(f"{data_yaml}: unknown key(s) in '{key}': {', '.join(unknown)} (allowed: {', '.join(allowed)})")


REQUIRED = ("format", "source")
DEFAULTS: dict[str, Any] = {
    "images": None,  # coco: the folder the JSON's file_name entries are relative to (default: the JSON's folder)
    "val": None,  # val image names (file name, name or stem); instead of split
    "split": None,  # train, val[, test] fractions by image; (0.8, 0.2) when neither val nor split is given
    "seed": 0,
    "tile": None,
    "overlap": 0,
    "min_visible": 0.5,
    "keep_empty": False,
    "difficult": "drop",
    "rename": None,  # {OLD: NEW} or "OLD=NEW,..."
    "classes": None,  # default: the YAML's names
    "full_val": False,
}
KEYS = (*REQUIRED, *DEFAULTS)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str_list(where: str, key: str, value) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or not all(isinstance(x, str) and x.strip() for x in items):
        raise ConfigError(f"{where}.{key} must be a non-empty list of names, got {value!r}")
    return [x.strip() for x in items]


def import_kwargs(data_yaml: Path, section: Any, names: dict[int, str]) -> dict[str, Any]:
    """The ``lwdet_import`` section, checked, as :func:`build_import` keyword arguments (the source is not touched)."""
    from lwdet.data.importers import DIFFICULT_MODES, READERS, parse_rename
    from lwdet.data.importers.split import _check_ratios
    from lwdet.data.tiling import TileOptions

    where = f"{data_yaml}: '{IMPORT_KEY}"
    check_section(data_yaml, IMPORT_KEY, section, KEYS)
    for key in REQUIRED:
        if not section.get(key):
            raise ConfigError(f"{where}.{key}' is missing")
    s = {**DEFAULTS, **section}
    if s["format"] not in READERS:
        raise ConfigError(f"{where}.format' is {s['format']!r}; choose from {', '.join(READERS)}")
    if s["images"] is not None and s["format"] != "coco":
        raise ConfigError(f"{where}.images' is only for format coco")
    if s["val"] is not None and s["split"] is not None:
        raise ConfigError(f"{where}': give 'val' (the val images by name) or 'split' (fractions), not both")
    val = _str_list(where, "val'", s["val"]) if s["val"] is not None else None
    try:
        split = tuple(_check_ratios(s["split"] if s["split"] is not None else (0.8, 0.2)))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}.split': {e}") from None
    for key in ("seed", "overlap"):
        if not _is_int(s[key]):
            raise ConfigError(f"{where}.{key}' must be an integer, got {s[key]!r}")
    for key in ("keep_empty", "full_val"):
        if not isinstance(s[key], bool):
            raise ConfigError(f"{where}.{key}' must be true or false, got {s[key]!r}")
    if s["difficult"] not in DIFFICULT_MODES:
        raise ConfigError(f"{where}.difficult' is {s['difficult']!r}; choose from {', '.join(DIFFICULT_MODES)}")
    tiling = None
    if s["tile"] is not None:
        if not _is_int(s["tile"]) or not isinstance(s["min_visible"], (int, float)):
            raise ConfigError(f"{where}': tile must be an integer and min_visible a number")
        try:
            tiling = TileOptions(s["tile"], s["overlap"], float(s["min_visible"]), s["keep_empty"])
        except ValueError as e:
            raise ConfigError(f"{where}': {e}") from None
    elif s["overlap"] or s["keep_empty"] or s["min_visible"] != 0.5:
        raise ConfigError(f"{where}': overlap, min_visible and keep_empty need tile")
    rename = s["rename"]
    if isinstance(rename, str):
        rename = parse_rename(rename)
    elif rename is not None:
        if not isinstance(rename, dict) or not rename:
            raise ConfigError(f"{where}.rename' must be a mapping {{OLD: NEW}} or 'OLD=NEW,...', got {rename!r}")
        rename = {str(k): str(v) for k, v in rename.items()}
    classes = list(names.values()) if s["classes"] is None else _str_list(where, "classes'", s["classes"])
    if classes != list(names.values()):
        raise ConfigError(f"{where}.classes' {classes} must equal 'names' {list(names.values())} (same order)")
    return dict(
        data_yaml=data_yaml,
        fmt=s["format"],
        source=str(s["source"]),
        images=None if s["images"] is None else str(s["images"]),
        split=split,
        val_names=val,
        seed=s["seed"],
        tiling=tiling,
        difficult=s["difficult"],
        rename=rename,
        classes=classes,
        full_val=s["full_val"],
    )


def find_input(data_yaml: Path, key: str, value: str) -> Path:
    """An input path of the section: absolute as given; relative: beside the YAML, then in the working folder."""
    p = Path(os.path.expanduser(value))
    tried = [p] if p.is_absolute() else [data_yaml.parent / p, Path.cwd() / p]
    for cand in tried:
        if cand.exists():
            return cand.resolve()
    raise FileNotFoundError(
        f"{data_yaml}: '{IMPORT_KEY}.{key}' {value!r} not found; tried {', '.join(str(t) for t in tried)}"
    )


def build_import(root: Path, *, data_yaml: Path, fmt: str, source: str, images: str | None, **kwargs):
    """Import the source into the new dataset folder ``root`` (:func:`lwdet.data.importers.import_dataset`)."""
    from lwdet.data.importers import import_dataset

    src = find_input(data_yaml, "source", source)
    img = find_input(data_yaml, "images", images) if images else None
    root = Path(root).absolute()
    if root.resolve().is_relative_to(src if src.is_dir() else src.parent):
        raise ConfigError(f"{data_yaml}: the dataset folder {root} is inside the source {src}; the source is only read")
    try:
        return import_dataset(fmt, src, root, images=img, **kwargs)
    except FileExistsError:
        raise
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{data_yaml}: '{IMPORT_KEY}': {e}") from None
    except ValueError as e:
        raise ConfigError(f"{data_yaml}: '{IMPORT_KEY}': {e}") from None


def full_val_dirs(root: Path) -> tuple[Path, Path]:
    """(images, labels) folders of the untiled val images a ``full_val: true`` build writes."""
    from lwdet.data.importers import FULL_VAL

    return root / "images" / FULL_VAL, root / "labels" / FULL_VAL
