"""A real-format import end to end: large Pascal VOC images -> tiled YOLO dataset -> check -> train.

    python benchmarks/voc_tiled_e2e.py --out build/voc-e2e --images 12 --epochs 3

Writes a Pascal VOC folder (JPEGImages/ + Annotations/*.xml) of 1600-2400 px photos with 20-40 small
Fashion-MNIST objects each, imports it with `python -m lwdet.data import --format voc --tile 640 --overlap 64`,
checks it with `python -m lwdet.data check`, and trains `train.py --backbone shufflenetv2_050` on the tiles.
"""

import argparse
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import cv2

ROOT = Path(__file__).resolve().parents[1]  # the clone: default --out folder, and where train.py is run
CLASSES = ["t_shirt", "trouser", "dress", "sneaker", "bag"]


def voc_xml(name: str, w: int, h: int, boxes, labels) -> str:
    objs = "".join(
        f"<object><name>{escape(lab)}</name><difficult>0</difficult><bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for (x0, y0, x1, y1), lab in zip(boxes, labels)
    )
    return (
        f"<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height><depth>3</depth>"
        f"</size>{objs}</annotation>\n"
    )


def make_voc(src: Path, n: int, seed: int) -> None:
    from lwdet.data.synth import render_image

    (src / "JPEGImages").mkdir(parents=True)
    (src / "Annotations").mkdir()
    for i in range(n):
        split = "train" if i < n * 3 // 4 else "val"  # val photos use the held-out Fashion-MNIST items
        r = render_image(
            seed, split, i, classes=CLASSES, min_side=1600, max_side=2400, objects=(20, 40), scale=(24, 96)
        )
        name = f"photo_{i:03d}.jpg"
        cv2.imwrite(str(src / "JPEGImages" / name), r.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        h, w = r.image.shape[:2]
        xml = voc_xml(name, w, h, r.boxes.tolist(), [CLASSES[c] for c in r.classes])
        (src / "Annotations" / f"photo_{i:03d}.xml").write_text(xml)


def run(*cmd) -> None:
    print("$", " ".join(map(str, cmd)), flush=True)
    subprocess.run([sys.executable, *map(str, cmd)], check=True, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "voc-e2e")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    src, dst = args.out / "VOC", args.out / "yolo"
    if args.out.exists():
        sys.exit(f"{args.out} exists; pick another --out")
    make_voc(src, args.images, args.seed)
    val = args.out / "val.txt"
    val.write_text("".join(f"photo_{i:03d}.jpg\n" for i in range(args.images * 3 // 4, args.images)))
    run("-m", "lwdet.data", "import", "--format", "voc", src, dst, "--val-list", val, "--tile", 640, "--overlap", 64)
    run("-m", "lwdet.data", "check", dst / "data.yaml")
    run(
        "train.py",
        "--backbone",
        "shufflenetv2_050",
        "--data",
        dst / "data.yaml",
        "--epochs",
        args.epochs,
        "--imgsz",
        320,
        "--no-plots",
        "--project",
        args.out / "runs",
        "--name",
        "voc",
    )


if __name__ == "__main__":
    main()
