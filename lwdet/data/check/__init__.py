"""Check a YOLO-layout dataset for input the engine would drop, misread or silently alter.

:func:`check_dataset` reads the data YAML, finds images the way the engine does (a folder, searched
recursively, or a ``.txt`` list of image paths) and their labels (the last ``/images/`` becomes
``/labels/``, the extension ``.txt``), and returns a :class:`Report`: issues, totals and the boxes per
class per split. It only reads the dataset: nothing in it is modified, moved, deleted or cached there.
Per-image results are cached outside it (:mod:`.cache`, keyed by path, size and mtime), so a second
check of an unchanged dataset decodes nothing. :func:`good_samples` lists the images without errors;
:func:`write_good_yaml` writes them as image lists plus a data YAML, outside the dataset.

Severities: ``error`` (the engine drops the image or learns from wrong boxes), ``warning``
(usable, but probably not what was meant), ``info`` (counted only, e.g. empty label files, which
are negatives).

Modules: :mod:`.scan` (one image, one label file), :mod:`.cache`, :mod:`.dataset` (the walk),
:mod:`.warn` (dataset-wide warnings), :mod:`.report` (the result, summaries).
"""

from __future__ import annotations

from .cache import default_cache_dir
from .dataset import DEFAULT_IMGSZ, check_dataset
from .report import Issue, Report, format_report, good_samples, write_good_yaml
from .scan import FORMAT_SUFFIXES, IMG_FORMATS, KINDS, label_path_for
from .warn import MIN_OBJECT_PX

__all__ = [
    "IMG_FORMATS",
    "FORMAT_SUFFIXES",
    "KINDS",
    "MIN_OBJECT_PX",
    "DEFAULT_IMGSZ",
    "Issue",
    "Report",
    "label_path_for",
    "check_dataset",
    "default_cache_dir",
    "good_samples",
    "write_good_yaml",
    "format_report",
]
