"""Pascal VOC reader: one XML per image (LabelImg, CVAT, the VOC devkit)."""

from __future__ import annotations

import glob
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from tqdm import tqdm

from ..check.scan import IMG_FORMATS
from .common import RecordSet, _finish, _Notes, _number, _record


def _xml_text(el: ET.Element, path: str, xml: Path, required: bool = True) -> str | None:
    found = el.find(path)
    text = found.text.strip() if found is not None and found.text else ""
    if not text:
        if required:
            raise ValueError(f"{xml}: <{path}> missing or empty")
        return None
    return text


def _voc_image(xml: Path, filename: str | None, base: Path) -> Path:
    if filename:
        p = base / filename
        if p.is_file():
            return p
    # tools disagree on <filename> (missing, no extension, stale): fall back to the XML's own stem
    found = [Path(p) for p in sorted(glob.glob(glob.escape(str(base / xml.stem)) + ".*"))]
    found = [p for p in found if p.suffix[1:].lower() in IMG_FORMATS]
    if len(found) == 1:
        return found[0]
    raise FileNotFoundError(f"{xml}: <filename> {filename!r}: no such image in {base}")


def read_voc(src: str | os.PathLike) -> RecordSet:
    """Pascal VOC: ``SRC/Annotations/*.xml`` with ``SRC/JPEGImages/``, or XMLs beside their images.

    ``<difficult>1</difficult>`` marks a box difficult (see :func:`lwdet.data.importers.apply_difficult`).
    """
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"VOC folder not found: {src}")
    ann_dir = src / "Annotations"
    if ann_dir.is_dir():
        xml_root, img_root = ann_dir, src / "JPEGImages" if (src / "JPEGImages").is_dir() else ann_dir
    else:
        xml_root = img_root = src
    xmls = sorted(xml_root.rglob("*.xml"))
    if not xmls:
        raise FileNotFoundError(f"no VOC annotations (*.xml) in {xml_root}")
    notes, records = _Notes(), []
    for xml in tqdm(xmls, desc="read voc", unit="xml", disable=None if len(xmls) > 200 else True):
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as e:
            raise ValueError(f"{xml}: not valid XML ({e})") from None
        if root.tag != "annotation":
            raise ValueError(f"{xml}: root element is <{root.tag}>, expected <annotation>")
        base = img_root / xml.parent.relative_to(xml_root)
        image = _voc_image(xml, _xml_text(root, "filename", xml, required=False), base)
        stated = None
        if root.find("size") is not None:
            sw = _xml_text(root, "size/width", xml, required=False)
            sh = _xml_text(root, "size/height", xml, required=False)
            if sw is not None and sh is not None:
                wh = int(_number(sw, f"{xml}: <size/width>")), int(_number(sh, f"{xml}: <size/height>"))
                stated = wh if min(wh) > 0 else None  # some tools write 0 when they do not know
        boxes = []
        for i, obj in enumerate(root.findall("object"), 1):
            path = f"object[{i}]"
            label = _xml_text(obj, "name", xml, required=False)
            if label is None:
                raise ValueError(f"{xml}: <{path}/name> missing or empty")
            if obj.find("bndbox") is None:
                raise ValueError(f"{xml}: <{path}/bndbox> missing ({label!r})")
            coords = []
            for tag in ("xmin", "ymin", "xmax", "ymax"):
                text = _xml_text(obj, f"bndbox/{tag}", xml, required=False)
                if text is None:
                    raise ValueError(f"{xml}: <{path}/bndbox/{tag}> missing or empty ({label!r})")
                coords.append(_number(text, f"{xml}: <{path}/bndbox/{tag}>"))
            hard = _xml_text(obj, "difficult", xml, required=False)
            boxes.append((label, *coords, f"{xml}: <{path}>", hard is not None and hard not in ("0", "false", "False")))
        name = image.relative_to(img_root).as_posix() if image.is_relative_to(img_root) else image.name
        records.append(_record(image, name, str(xml), boxes, notes, stated))
    names = sorted({lab for r in records for lab in r.labels})
    return _finish(records, names, f"voc {src.absolute()}", notes, src)
