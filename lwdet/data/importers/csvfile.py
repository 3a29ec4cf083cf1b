"""CSV reader: rows ``image_path,xmin,ymin,xmax,ymax,label``."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .common import RecordSet, _clean_name, _finish, _Notes, _number, _record

_CSV_COLUMNS = "image_path,xmin,ymin,xmax,ymax,label"


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_csv(csv_path: str | os.PathLike) -> RecordSet:
    """CSV rows ``image_path,xmin,ymin,xmax,ymax,label`` (header optional, paths relative to the CSV).

    A row ``image_path,,,,,`` declares an image with no objects (a negative).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"CSV file not found: {csv_path}")
    groups: dict[str, tuple[int, list]] = {}  # image name -> (first line, boxes)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            first = True
            for row in reader:
                where = f"{csv_path}:{reader.line_num}"
                cells = [c.strip() for c in row]
                if not any(cells):
                    continue
                if len(cells) != 6:
                    raise ValueError(f"{where}: expected 6 columns ({_CSV_COLUMNS}), got {len(cells)}")
                path, coords, label = cells[0], cells[1:5], cells[5]
                if first and not any(_is_number(c) for c in coords):  # a header row
                    first = False
                    continue
                first = False
                if not path:
                    raise ValueError(f"{where}: image_path is empty")
                name = _clean_name(path)
                _, boxes = groups.setdefault(name, (reader.line_num, []))
                if not any(coords) and not label:
                    continue  # negative image
                for col, c in zip(("xmin", "ymin", "xmax", "ymax", "label"), coords + [label]):
                    if not c:
                        raise ValueError(f"{where}: {col} is empty (a negative image leaves all five fields empty)")
                vals = [_number(c, f"{where}: {col}") for col, c in zip(("xmin", "ymin", "xmax", "ymax"), coords)]
                boxes.append((label, *vals, where))
    except UnicodeDecodeError:
        raise ValueError(f"{csv_path}: not UTF-8 text") from None
    except csv.Error as e:
        raise ValueError(f"{csv_path}: {e}") from None
    notes, records = _Notes(), []
    for name, (line, boxes) in groups.items():
        image = Path(name) if Path(name).is_absolute() else csv_path.parent / name
        records.append(_record(image, name, f"{csv_path}:{line}", boxes, notes))
    names = sorted({lab for r in records for lab in r.labels})
    return _finish(records, names, f"csv {csv_path.absolute()}", notes, csv_path)
