"""Check a whole data YAML: find the images and labels the way the engine does, check each, add dataset-wide warnings."""

from __future__ import annotations

import glob
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import scan
from .cache import ResultCache, default_cache_dir, file_key
from .report import Issue, Report
from .scan import _RANK, IMG_FORMATS, KINDS, label_path_for
from .warn import class_split_warnings, tiny_object_warnings

DEFAULT_IMGSZ = 640  # the engine's default training input size


class _Collector:
    def __init__(self, report: Report):
        self.report = report

    def add(
        self,
        kind: str,
        file: str | os.PathLike,
        message: str,
        line: int | None = None,
        image: str | os.PathLike | None = None,
    ):
        self.report.issues.append(Issue(kind, KINDS[kind], str(file), line, message, str(image) if image else None))


def _split_images(root: Path, key: str, entry: Any, col: _Collector, yaml_file: Path) -> tuple[list[Path], list[Path]]:
    """Images of one split entry and the label folders to scan for orphans, as the engine finds them."""
    images: list[Path] = []
    label_dirs: list[Path] = []
    for e in entry if isinstance(entry, (list, tuple)) else [entry]:
        p = Path(os.path.expanduser(str(e)))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            found = glob.glob(os.path.join(glob.escape(str(p)), "**", "*.*"), recursive=True)
            here = [
                Path(f) for f in sorted(found) if f.rpartition(".")[-1].lower() in IMG_FORMATS and os.path.isfile(f)
            ]
            if not here:
                col.add("no_images", p, f"{key}: no images ({', '.join(sorted(IMG_FORMATS))}) in this folder")
            images += here
            lab_dir = label_path_for(p / "x.jpg").parent
            if lab_dir != p and not lab_dir.is_dir():
                col.add("missing_labels_dir", lab_dir, f"{key}: labels folder not found (expected beside {p})")
            else:
                label_dirs.append(lab_dir)
        elif p.is_file():
            lines = p.read_text(encoding="utf-8-sig", errors="replace").splitlines()
            parent = str(p.parent) + os.sep
            if not any(s.strip() for s in lines):
                col.add("no_images", p, f"{key}: the image list is empty")
            for n, line in enumerate(lines, 1):
                s = line.strip()
                if not s or s.rpartition(".")[-1].lower() not in IMG_FORMATS:
                    continue
                f = Path(s.replace("./", parent, 1) if s.startswith("./") else s)
                if f.is_file():
                    images.append(f)
                else:
                    col.add("missing_image", p, f"{key}: listed image not found: {f}", n, f)
        else:
            col.add("missing_dir", yaml_file, f"{key}: {p} not found")
    return images, label_dirs


def _resolve(data_yaml: Path) -> tuple[dict[str, Any], Path]:
    from .. import _check_keys, _load_yaml, _normalise_names, dataset_root  # the same YAML rules as ensure_dataset

    data = _load_yaml(data_yaml)
    for key in ("train", "val", "names"):
        if data.get(key) in (None, "", [], {}):
            raise ValueError(f"{data_yaml}: missing required key '{key}'")
    data["names"] = _normalise_names(data_yaml, data["names"])
    _check_keys(data_yaml, data)
    return data, dataset_root(data_yaml, data)


def _cache_for(cache: bool | str | os.PathLike | None, root: Path) -> ResultCache:
    if cache is False or cache is None:
        return ResultCache(None)
    folder = default_cache_dir() if cache is True else Path(cache).expanduser().absolute()
    if folder.resolve().is_relative_to(root):
        raise ValueError(f"check cache: refusing to write inside the dataset folder {root}: {folder}")
    return ResultCache(folder)


def _scan_images(images: list[Path], cache: ResultCache, workers: int | None, progress: bool | None) -> dict[Path, Any]:
    """(size, issues) per image: from the cache when path, size and mtime match, else decoded in a thread pool."""
    keys = {p: file_key(p) for p in images}
    out: dict[Path, Any] = {}
    todo = []
    for p in images:
        hit = cache.get(keys[p])
        if hit is None:
            todo.append(p)
        else:
            out[p] = (tuple(hit[0]) if hit[0] else None), [tuple(i) for i in hit[1]]
    if todo:
        workers = workers or min(8, os.cpu_count() or 1)
        bar = tqdm(
            total=len(todo),
            desc="check images",
            unit="img",
            disable=(None if len(todo) > 50 else True) if progress is None else not progress,
        )
        done = []
        with ThreadPoolExecutor(workers) as pool:  # Pillow's decoders release the GIL
            for p, res in zip(todo, pool.map(scan.scan_image, todo)):
                out[p] = res
                done.append((keys[p], None, res))
                bar.update()
                if len(done) >= 256:  # an interrupted check keeps what it decoded
                    cache.put(done)
                    done = []
        bar.close()
        cache.put(done)
    return out


def check_dataset(
    data_yaml: str | os.PathLike,
    *,
    imgsz: int | None = DEFAULT_IMGSZ,
    cache: bool | str | os.PathLike = True,
    workers: int | None = None,
    progress: bool | None = None,
) -> Report:
    """Check every image and label of a data YAML's train/val(/test) splits. Reads only.

    ``imgsz``: training input size for the tiny-object warning (None: no such warning). ``cache``: True (the
    default folder, :func:`lwdet.data.check.cache.default_cache_dir`), a folder outside the dataset, or False.
    ``workers``: decoding threads (default: CPUs, at most 8). ``progress``: a progress bar (None: on a terminal).
    Raises FileNotFoundError / ValueError if the YAML itself is missing or unusable; everything wrong with the data
    is an issue in the report.
    """
    data_yaml = Path(data_yaml).expanduser().absolute()
    data, root = _resolve(data_yaml)
    names = data["names"]
    report = Report(str(data_yaml), str(root), names, imgsz=imgsz)
    col = _Collector(report)
    totals = Counter({k: 0 for k in ("images", "label_files", "boxes", "negatives", "missing_labels", "orphan_labels")})
    if not root.is_dir():
        from .. import BUILD_KEYS

        built = [k for k in BUILD_KEYS if data.get(k) is not None]
        hint = (
            f" (built on first use from its '{built[0]}' section by lwdet train / lwdet study, or "
            "lwdet.data.ensure_dataset)"
            if built
            else ""
        )
        col.add("missing_dir", data_yaml, f"dataset folder not found: {root}{hint}")
        report.totals = dict(totals, errors=len(report.errors), warnings=len(report.warnings))
        return report

    found = {}
    for key in ("train", "val", "test"):
        if data.get(key) not in (None, "", [], {}):
            found[key] = _split_images(root, key, data[key], col, data_yaml)
    store = _cache_for(cache, root)
    try:
        scanned = _scan_images(
            list(dict.fromkeys(p for imgs, _ in found.values() for p in imgs)), store, workers, progress
        )
        boxes = _walk(report, col, found, scanned, store, totals, len(names))
    finally:
        store.close()

    class_split_warnings(report, lambda kind, msg: col.add(kind, data_yaml, msg))
    if imgsz:
        for key, (images, _) in found.items():
            sized = [(scanned[img][0], boxes[img]) for img in images if scanned[img][0] and boxes[img]]
            tiny_object_warnings(key, sized, imgsz, lambda kind, msg: col.add(kind, data_yaml, msg))
    report.issues.sort(key=lambda i: (_RANK[i.severity], i.file, i.line or 0))
    report.totals = dict(totals, errors=len(report.errors), warnings=len(report.warnings))
    return report


def _label(lab: Path, size: tuple[int, int] | None, nc: int, store: ResultCache, new: list) -> tuple[list, bool, list]:
    """(rows, empty, issues) of one label file, from the cache when the file, its image's size and nc are unchanged."""
    key, context = file_key(lab), [list(size) if size else None, nc]
    hit = store.get(key, context)
    if hit is not None:
        rows, empty, issues = hit
        return [tuple(r) for r in rows], empty, [tuple(i) for i in issues]
    issues: list = []
    rows, empty = scan.check_label(lab, size, nc, lambda kind, msg, line: issues.append((kind, msg, line)))
    new.append((key, context, (rows, empty, issues)))
    return rows, empty, issues


def _walk(
    report: Report, col: _Collector, found: dict, scanned: dict, store: ResultCache, totals: Counter, nc: int
) -> dict:
    """Per-file issues, totals and per-class counts of every split; returns image -> [(class, w, h)] normalised."""
    names = report.names
    boxes: dict[Path, list] = {}
    checked_labels: set[Path] = set()
    new_labels: list = []
    for key, (images, label_dirs) in found.items():
        report.images[key] = [str(p) for p in images]
        no_label_dirs = [Path(i.file) for i in report.issues if i.kind == "missing_labels_dir"]
        labels_expected = set()
        for img in images:
            lab = label_path_for(img)
            labels_expected.add(lab)
            if img in boxes:  # shared between splits: checked once
                continue
            totals["images"] += 1
            size, issues = scanned[img]
            for kind, msg in issues:
                col.add(kind, img, msg, None, img)
            boxes[img] = []
            if lab.is_file():
                totals["label_files"] += 1
                checked_labels.add(lab)
                rows, empty, issues = _label(lab, size, nc, store, new_labels)
                for kind, msg, line in issues:
                    col.add(kind, lab, msg, line, img)
                boxes[img] = rows
                totals["boxes"] += len(rows)
                totals["negatives"] += empty
            elif not any(lab.is_relative_to(d) for d in no_label_dirs):  # a missing folder is one error, not N
                totals["missing_labels"] += 1
                col.add(
                    "missing_label", img, f"no label file ({lab}); the engine takes the image as a negative", None, img
                )
        for d in label_dirs:
            for f in sorted(glob.glob(os.path.join(glob.escape(str(d)), "**", "*.txt"), recursive=True)):
                f = Path(f)
                if f not in labels_expected and f not in checked_labels and d != Path(report.root):
                    totals["orphan_labels"] += 1
                    col.add("orphan_label", f, "label file without an image; the engine ignores it")
        per_class = Counter(c for img in images for c, _, _ in boxes[img])
        report.class_counts[key] = {names[i]: per_class[i] for i in names}
    store.put(new_labels)
    return boxes
