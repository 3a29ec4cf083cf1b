"""COCO detection JSON reader (``images``, ``annotations``, ``categories``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .common import RecordSet, _clean_name, _finish, _Notes, _number, _record


def _get(obj: Any, key: str, where: str, kinds: tuple[type, ...], json_path: Path) -> Any:
    if not isinstance(obj, dict):
        raise ValueError(f"{json_path}: {where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{json_path}: {where}.{key}: missing")
    v = obj[key]
    if not isinstance(v, kinds) or isinstance(v, bool):
        want = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{json_path}: {where}.{key}: expected {want}, got {v!r}")
    return v


def read_coco(json_path: str | os.PathLike, images: str | os.PathLike | None = None) -> RecordSet:
    """COCO detection JSON; ``images``: folder that ``file_name`` is relative to (default: the JSON's folder).

    ``iscrowd=1`` marks a box difficult (see :func:`lwdet.data.importers.apply_difficult`).
    """
    json_path = Path(json_path)
    if not json_path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {json_path}")
    img_dir = Path(images) if images is not None else json_path.parent
    if not img_dir.is_dir():
        raise FileNotFoundError(f"COCO images folder not found: {img_dir}")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{json_path}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{json_path}: not UTF-8 text") from None
    text = (str,)
    cats = _get(data, "categories", "$", (list,), json_path)
    images_ = _get(data, "images", "$", (list,), json_path)
    anns = (
        _get(data, "annotations", "$", (list,), json_path) if isinstance(data, dict) and "annotations" in data else []
    )
    if not cats:
        raise ValueError(f"{json_path}: categories: empty")

    cat_index, names = {}, []
    for i, c in enumerate(cats):
        cid, cname = (
            _get(c, "id", f"categories[{i}]", (int,), json_path),
            _get(c, "name", f"categories[{i}]", text, json_path),
        )
        if cid in cat_index:
            raise ValueError(f"{json_path}: categories[{i}].id: {cid} is used twice")
        if cname.strip() in names:
            raise ValueError(f"{json_path}: categories[{i}].name: {cname!r} is used twice")
        cat_index[cid] = len(names)
        names.append(cname.strip())

    by_id: dict[int, tuple[int, dict]] = {}
    for i, im in enumerate(images_):
        iid = _get(im, "id", f"images[{i}]", (int, str), json_path)
        _get(im, "file_name", f"images[{i}]", text, json_path)
        if iid in by_id:
            raise ValueError(f"{json_path}: images[{i}].id: {iid!r} is used twice")
        by_id[iid] = (i, im)

    notes = _Notes()
    boxes: dict[Any, list] = {iid: [] for iid in by_id}
    for i, a in enumerate(anns):
        where = f"annotations[{i}]"
        iid = _get(a, "image_id", where, (int, str), json_path)
        cid = _get(a, "category_id", where, (int,), json_path)
        if iid not in by_id:
            raise ValueError(f"{json_path}: {where}.image_id: {iid!r} is not the id of any image")
        if cid not in cat_index:
            raise ValueError(f"{json_path}: {where}.category_id: {cid} is not the id of any category")
        bbox = _get(a, "bbox", where, (list,), json_path)
        if len(bbox) != 4:
            raise ValueError(f"{json_path}: {where}.bbox: expected [x, y, width, height], got {bbox!r}")
        x, y, bw, bh = (_number(v, f"{json_path}: {where}.bbox[{k}]") for k, v in enumerate(bbox))
        if bw < 0 or bh < 0:
            raise ValueError(f"{json_path}: {where}.bbox: negative {'width' if bw < 0 else 'height'} in {bbox!r}")
        crowd = bool(a.get("iscrowd", 0))  # a region of many objects: handled as 'difficult' (apply_difficult)
        boxes[iid].append((names[cat_index[cid]], x, y, x + bw, y + bh, f"{json_path}: {where}", crowd))

    records = []
    for iid, (i, im) in tqdm(by_id.items(), desc="read coco", unit="img", disable=None if len(by_id) > 200 else True):
        name = _clean_name(im["file_name"])
        sw, sh = im.get("width"), im.get("height")
        stated = None
        if sw is not None and sh is not None:
            stated = (
                int(_number(sw, f"{json_path}: images[{i}].width")),
                int(_number(sh, f"{json_path}: images[{i}].height")),
            )
            stated = stated if min(stated) > 0 else None
        records.append(_record(img_dir / name, name, f"{json_path}: images[{i}]", boxes[iid], notes, stated))
    return _finish(records, names, f"coco {json_path.absolute()} images {img_dir.absolute()}", notes, json_path)
