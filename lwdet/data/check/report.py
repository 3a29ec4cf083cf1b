"""The check's result: issues, totals, per-class box counts per split; the images without errors; a readable summary."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .scan import KINDS


@dataclass(frozen=True)
class Issue:
    kind: str
    severity: str
    file: str
    line: int | None
    message: str
    image: str | None = None  # the image this issue disqualifies or concerns

    def where(self, root: str | None = None) -> str:
        f = self.file
        if root and Path(f).is_relative_to(root):
            f = str(Path(f).relative_to(root))
        return f"{f}:{self.line}" if self.line else f


@dataclass
class Report:
    data_yaml: str
    root: str
    names: dict[int, str]
    issues: list[Issue] = field(default_factory=list)
    images: dict[str, list[str]] = field(default_factory=dict)  # split -> every image found
    totals: dict[str, int] = field(default_factory=dict)  # images, label_files, boxes, negatives, ...
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class name -> boxes
    imgsz: int | None = None  # the training input size the tiny-object warning assumed

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Issues per kind, in KINDS order."""
        c = Counter(i.kind for i in self.issues)
        return {k: c[k] for k in KINDS if c[k]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_yaml": self.data_yaml,
            "root": self.root,
            "ok": self.ok,
            "totals": self.totals,
            "counts": self.counts(),
            "class_counts": self.class_counts,
            "imgsz": self.imgsz,
            "issues": [asdict(i) for i in self.issues],
            "good": {s: good_samples(self, s) for s in self.images},
        }


def good_samples(report: Report, split: str | None = None, also_bad: Iterable[str] = ()) -> list[str]:
    """Images of ``split`` (default: all splits, in order) with no error, nor an issue of a kind in ``also_bad``.

    E.g. ``also_bad={"jpeg_no_eoi"}`` keeps the engine from rewriting those files in place.
    """
    unknown = sorted(set(also_bad) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown issue kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    also_bad = set(also_bad)
    bad = {i.image for i in report.issues if i.image and (i.severity == "error" or i.kind in also_bad)}
    splits: Iterable[str] = [split] if split is not None else report.images
    out, seen = [], set()
    for s in splits:
        for img in report.images.get(s, []):
            if img not in bad and img not in seen:
                seen.add(img)
                out.append(img)
    return out


def write_good_yaml(report: Report, out_dir: str | os.PathLike, also_bad: Iterable[str] = ()) -> Path:
    """Write ``out_dir/{split}.txt`` (absolute paths of the good images) and ``out_dir/data.yaml`` using them.

    Labels stay where they are (the engine finds them from the image paths). ``out_dir`` must be
    new and outside the dataset folder. Returns the data YAML's path.
    """
    out_dir = Path(out_dir).expanduser().absolute()
    if out_dir.resolve().is_relative_to(report.root):
        raise ValueError(f"refusing to write inside the dataset folder {report.root}: {out_dir}")
    if out_dir.exists():
        raise FileExistsError(f"folder already exists, not overwriting: {out_dir}")
    lists = {s: good_samples(report, s, also_bad) for s in report.images}
    for s in ("train", "val"):
        if not lists.get(s):
            raise ValueError(f"{report.data_yaml}: no good images left in split '{s}'")
    out_dir.mkdir(parents=True)
    for s, imgs in lists.items():
        (out_dir / f"{s}.txt").write_text("".join(f"{p}\n" for p in imgs))
    data = {"path": report.root, **{s: str(out_dir / f"{s}.txt") for s in lists}, "names": dict(report.names)}
    out = out_dir / "data.yaml"
    out.write_text(
        f"# Images of {report.data_yaml} without errors (lwdet.data check).\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    )
    return out


def format_report(report: Report, max_issues: int = 20) -> str:
    """Readable summary: totals, issues per kind, the first ``max_issues`` issues with file:line."""
    t = report.totals
    per_split = ", ".join(f"{s} {len(v)}" for s, v in report.images.items())
    lines = [
        f"dataset   {report.root}  ({report.data_yaml})",
        f"images    {t.get('images', 0)} ({per_split or 'none'}), label files {t.get('label_files', 0)}, "
        f"boxes {t.get('boxes', 0)}, negatives {t.get('negatives', 0)} (empty label files)",
        f"issues    {len(report.errors)} errors, {len(report.warnings)} warnings",
    ]
    lines += _class_table(report)
    counts = report.counts()
    if counts:
        lines.append("")
        lines += [f"  {KINDS[k]:<8} {k:<22} {n:>6}" for k, n in counts.items()]
        shown = report.issues[:max_issues]
        lines.append("")
        lines.append(f"first {len(shown)} of {len(report.issues)} issues (paths relative to the dataset folder):")
        lines += [f"  {i.severity:<8} {i.kind:<22} {i.where(report.root)}: {i.message}" for i in shown]
    good = len(good_samples(report))
    lines.append("")
    verdict = "OK" if report.ok else f"FAILED ({len(report.errors)} errors)"
    lines.append(f"{verdict}: {good} of {t.get('images', 0)} images have no errors of their own")
    return "\n".join(lines)


def _class_table(report: Report, max_rows: int = 30) -> list[str]:
    """Boxes per class (rows) per split (columns); empty if no split has labels."""
    splits = [s for s in report.class_counts]
    if not splits:
        return []
    names = list(report.names.values())
    w = max(8, *(len(n) for n in names[:max_rows]))
    out = ["", f"  {'class':<{w}} " + " ".join(f"{s:>8}" for s in splits)]
    for n in names[:max_rows]:
        out.append(f"  {n:<{w}} " + " ".join(f"{report.class_counts[s].get(n, 0):>8}" for s in splits))
    if len(names) > max_rows:
        out.append(f"  ... {len(names) - max_rows} more classes (all in --json)")
    return out
