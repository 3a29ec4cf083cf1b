"""Build neon-trees-recipe: the NEON *training* orthophoto cut into a training part and a held-out strip, for choosing
a fine-tuning recipe without touching the val orthophoto (issue 36, point 3).

The training orthophoto (2299 x 2472 px, 574 crowns) is cut at row ``--cut`` (default 1856: the bottom quarter is
held out): the top part is tiled for training and the bottom strip for validation, each as lwdet's importer tiles the
full study (320 px tiles, 64 px overlap), so no training tile sees a held-out pixel. A crown cut by the line goes to
the part holding at least half of it (clipped to it). The val orthophoto stays for the final reading.

    python benchmarks/neon_recipe_split.py datasets/neon-trees-recipe        # then train with
    lwdet train ... --data datasets/neon-trees-recipe/data.yaml

Imagery: NEON (National Ecological Observatory Network); annotations and files from the example data of the
deepforest 2.1.0 Python package (MIT licence, Weecology).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

SOURCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "neon-trees"
TRAIN_IMAGE = "2019_YELL_2_528000_4978000_image_crop2"


def _boxes(xml: Path) -> list[tuple[str, int, int, int, int]]:
    out = []
    for obj in ET.parse(xml).getroot().iter("object"):
        b = obj.find("bndbox")
        out.append((obj.findtext("name"), *(int(float(b.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))))
    return out


def _write_voc(dst: Path, stem: str, image: Image.Image, boxes) -> None:
    image.save(dst / f"{stem}.png")
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = f"{stem}.png"
    size = ET.SubElement(root, "size")
    for k, v in (("width", image.width), ("height", image.height), ("depth", 3)):
        ET.SubElement(size, k).text = str(v)
    for name, x0, y0, x1, y1 in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "difficult").text = "0"
        bb = ET.SubElement(obj, "bndbox")
        for k, v in zip(("xmin", "ymin", "xmax", "ymax"), (x0, y0, x1, y1)):
            ET.SubElement(bb, k).text = str(v)
    ET.ElementTree(root).write(dst / f"{stem}.xml")


def split_source(src: Path, work: Path, cut: int) -> tuple[int, int]:
    """Write the top part and the bottom strip of the training orthophoto as two VOC pairs into ``work``."""
    image = Image.open(src / f"{TRAIN_IMAGE}.png").convert("RGB")
    top, bottom = [], []
    for name, x0, y0, x1, y1 in _boxes(src / f"{TRAIN_IMAGE}.xml"):
        above = max(0, min(y1, cut) - y0)
        if above * 2 >= y1 - y0:
            top.append((name, x0, y0, x1, min(y1, cut)))
        else:
            bottom.append((name, x0, max(y0, cut) - cut, x1, y1 - cut))
    _write_voc(work, "train-top", image.crop((0, 0, image.width, cut)), top)
    _write_voc(work, "heldout-bottom", image.crop((0, cut, image.width, image.height)), bottom)
    return len(top), len(bottom)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dst", type=Path, help="new dataset folder (must not exist)")
    ap.add_argument("--source", type=Path, default=SOURCE, help="the neon-trees VOC folder (../shared/datasets/...)")
    ap.add_argument(
        "--cut", type=int, default=1856, help="row of the training orthophoto where the held-out strip starts"
    )
    args = ap.parse_args(argv)
    if args.dst.exists():
        print(f"error: {args.dst} exists; pick a new folder", file=sys.stderr)
        return 2
    if not (args.source / f"{TRAIN_IMAGE}.png").is_file():
        print(f"error: {args.source / (TRAIN_IMAGE + '.png')} not found (--source)", file=sys.stderr)
        return 2
    from lwdet.data.importers import import_dataset
    from lwdet.data.tiling import TileOptions

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        n_top, n_bottom = split_source(args.source, work, args.cut)
        import_dataset("voc", work, args.dst, val_names=["heldout-bottom.png"], tiling=TileOptions(320, 64))
    print(f"{args.dst}: training part {n_top} crowns, held-out strip {n_bottom} crowns (cut at row {args.cut})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
