"""Split records into train / val (/ test) by source image: before any tiling, so no tile of a val image is trained on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from .common import Record, _clean_name


def _check_ratios(ratios: Sequence[float]) -> list[float]:
    ratios = [float(r) for r in ratios]
    if len(ratios) not in (2, 3) or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6 or ratios[1] <= 0:
        raise ValueError(f"split ratios must be train,val[,test] >= 0 summing to 1 with val > 0, got {ratios}")
    return ratios


def split_records(
    records: Sequence[Record], ratios: Sequence[float] = (0.8, 0.2), seed: int = 0
) -> dict[str, list[Record]]:
    """Deterministic split by image: ``ratios`` = (train, val) or (train, val, test), summing to 1."""
    ratios = _check_ratios(ratios)
    order = sorted(records, key=lambda r: r.name)
    n = len(order)
    n_val = min(max(round(n * ratios[1]), 1), n)
    n_test = round(n * ratios[2]) if len(ratios) == 3 else 0
    if len(ratios) == 3 and ratios[2] > 0:
        n_test = max(n_test, 1)
    if n - n_val - n_test < 1:
        raise ValueError(f"{n} image(s) are too few for the split {','.join(f'{r:g}' for r in ratios)}")
    perm = np.random.default_rng(seed).permutation(n)
    picked = [order[i] for i in perm]
    out = {"train": picked[n_val + n_test :], "val": picked[:n_val]}
    if len(ratios) == 3:
        out["test"] = picked[n_val : n_val + n_test]
    return {k: sorted(v, key=lambda r: r.name) for k, v in out.items()}


def split_by_list(records: Sequence[Record], val_list: str | os.PathLike) -> dict[str, list[Record]]:
    """Val = the images named in ``val_list`` (one a line: name, file name or stem; ``#`` comments); train = the rest."""
    val_list = Path(val_list)
    if not val_list.is_file():
        raise FileNotFoundError(f"val list not found: {val_list}")
    entries = []
    for n, line in enumerate(val_list.read_text(encoding="utf-8-sig").splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append((f"{val_list}:{n}", entry))
    return _split_by_entries(records, entries, str(val_list))


def split_by_names(records: Sequence[Record], names: Sequence[str], where: str = "val") -> dict[str, list[Record]]:
    """Val = the images ``names`` lists (name, file name or stem); train = the rest. ``where`` names the list in errors."""
    return _split_by_entries(records, [(f"{where}[{i}]", str(n).strip()) for i, n in enumerate(names)], where)


def _split_by_entries(
    records: Sequence[Record], entries: Sequence[tuple[str, str]], where: str
) -> dict[str, list[Record]]:
    keys: dict[str, set[int]] = {}
    for i, r in enumerate(records):
        base = PurePosixPath(r.name)
        for k in {r.name, base.name, str(base.with_suffix("")), base.stem}:
            keys.setdefault(k, set()).add(i)
    val: set[int] = set()
    for at, entry in entries:
        hits = keys.get(_clean_name(entry), set())
        if not hits:
            raise ValueError(f"{at}: {entry!r} matches no imported image")
        if len(hits) > 1:
            names = ", ".join(sorted(records[i].name for i in hits))
            raise ValueError(f"{at}: {entry!r} matches several images ({names}); give the full name")
        val |= hits
    if not val:
        raise ValueError(f"{where}: lists no images")
    if len(val) == len(records):
        raise ValueError(f"{where}: lists every image; nothing is left to train on")
    by_name = sorted(range(len(records)), key=lambda i: records[i].name)
    return {"train": [records[i] for i in by_name if i not in val], "val": [records[i] for i in by_name if i in val]}
