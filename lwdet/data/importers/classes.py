"""Choose what an import keeps: difficult / crowd boxes, renamed or merged classes, a keep-list of classes."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from .common import Record, RecordSet

__all__ = ["DIFFICULT_MODES", "parse_rename", "apply_difficult", "select_classes"]

LOGGER = logging.getLogger(__name__)

# What to do with a VOC <difficult>1 / COCO iscrowd=1 box. The engine's labels have no "ignore" flag and its loss no
# ignore regions, so the choices it can express are: drop the box (the object then counts as background),
# keep it as an ordinary box, or mask it (paint the region the letterbox grey, so it is neither object nor background).
DIFFICULT_MODES = ("drop", "keep", "mask")


def parse_rename(text: str) -> dict[str, str]:
    """``"car=vehicle,truck=vehicle"`` -> {'car': 'vehicle', 'truck': 'vehicle'}."""
    out: dict[str, str] = {}
    for item in str(text).split(","):
        old, eq, new = item.partition("=")
        old, new = old.strip(), new.strip()
        if not eq or not old or not new:
            raise ValueError(f"--rename: expected OLD=NEW[,OLD=NEW...], got {item.strip()!r}")
        if old in out and out[old] != new:
            raise ValueError(f"--rename: {old!r} is renamed twice ({out[old]!r} and {new!r})")
        out[old] = new
    return out


def _keep(
    rec: Record, keep: np.ndarray, labels: Sequence[str] | None = None, masked: np.ndarray | None = None
) -> Record:
    labels = rec.labels if labels is None else labels
    hard = rec.is_difficult()[keep]
    return replace(
        rec,
        boxes=rec.boxes[keep],
        labels=tuple(lab for lab, k in zip(labels, keep) if k),
        difficult=tuple(hard.tolist()) if hard.any() else (),
        masked=rec.masked if masked is None else masked,
    )


def apply_difficult(rs: RecordSet, mode: str = "drop") -> RecordSet:
    """Drop, keep (as ordinary boxes) or mask (paint over, drop the box) every difficult / crowd box."""
    if mode not in DIFFICULT_MODES:
        raise ValueError(f"difficult: unknown choice {mode!r}; choose from {', '.join(DIFFICULT_MODES)}")
    n = sum(int(r.is_difficult().sum()) for r in rs.records)
    if not n:
        return rs
    records = []
    for r in rs.records:
        hard = r.is_difficult()
        if mode == "keep":
            records.append(replace(r, difficult=()))
        elif mode == "drop":
            records.append(_keep(r, ~hard))
        else:
            records.append(_keep(r, ~hard, masked=np.concatenate([r.masked.reshape(-1, 4), r.boxes[hard]])))
    what = {"drop": "dropped", "keep": "kept as ordinary boxes", "mask": "masked (painted grey, box dropped)"}[mode]
    note = f"difficult / crowd boxes {what} (--difficult {mode}): {n}"
    LOGGER.info(note)
    return replace(rs, records=records, notes=[*rs.notes, note])


def select_classes(
    rs: RecordSet, rename: Mapping[str, str] | None = None, classes: Sequence[str] | None = None
) -> RecordSet:
    """Rename / merge classes (``rename``: old -> new), then keep only ``classes`` (in that order, their new ids).

    A name that is not a class of the source raises ValueError listing the source's classes.
    """
    notes = list(rs.notes)
    names = list(rs.names)
    records = list(rs.records)
    if rename:
        unknown = [old for old in rename if old not in names]
        if unknown:
            raise ValueError(
                f"--rename: {', '.join(map(repr, unknown))} not a class of the source; its classes: {', '.join(names)}"
            )
        new_names = list(dict.fromkeys(rename.get(n, n) for n in names))
        records = [replace(r, labels=tuple(rename.get(lab, lab) for lab in r.labels)) for r in records]
        merged = Counter(rename.get(n, n) for n in names)
        for new, k in merged.items():
            if k > 1:
                olds = [n for n in names if rename.get(n, n) == new]
                notes.append(f"merged classes {', '.join(olds)} into {new!r}")
        names = new_names
    if classes is not None:
        classes = list(dict.fromkeys(c.strip() for c in classes if c.strip()))
        unknown = [c for c in classes if c not in names]
        if not classes or unknown:
            raise ValueError(
                f"--classes: {', '.join(map(repr, unknown)) or 'no names given'}: not a class of the source"
                f"{' (after --rename)' if rename else ''}; its classes: {', '.join(names)}"
            )
        wanted = set(classes)
        dropped: Counter[str] = Counter()
        kept_records = []
        for r in records:
            keep = np.array([lab in wanted for lab in r.labels], bool)
            dropped.update(lab for lab in r.labels if lab not in wanted)
            kept_records.append(_keep(r, keep) if not keep.all() else r)
        emptied = sum(1 for old, new in zip(records, kept_records) if len(old.labels) and not len(new.labels))
        note = (
            f"--classes kept {len(classes)} of {len(names)} classes; dropped {sum(dropped.values())} boxes"
            + (f" ({', '.join(f'{k} {v}' for k, v in sorted(dropped.items()))})" if dropped else "")
            + (f"; {emptied} images left without boxes are kept as negatives" if emptied else "")
        )
        LOGGER.info(note)
        notes.append(note)
        records, names = kept_records, classes
    if not any(len(r.labels) for r in records):
        raise ValueError("no boxes left after choosing classes; nothing to train on")
    return replace(rs, records=records, names=names, notes=notes)
