#!/usr/bin/env python3
"""Per-board numerics of an ncnn export (used by tools/pi_emulated.sh; also runs on a real Pi).

    python tools/pi_numerics.py inputs EXPORT VAL_IMAGES out/inputs.npy          # fixed inputs, made once on x86
    python tools/pi_numerics.py measure EXPORT out/inputs.npy VAL_IMAGES out/TAG --fp16 on|off|auto
    python tools/pi_numerics.py report out/ VAL_LABELS --export EXPORT [--json t.json] [--record]

``inputs`` and ``measure`` need only numpy, ncnn and OpenCV (they run inside the Pi root filesystem); ``report``
needs pycocotools and compares every ``out/TAG`` with ``out/x86``. ``--record`` adds the table to the export's
lwdet.json under ``board_numerics`` (a new file next to it is written first, then moved over it).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lwdet.edge.boards import parse_fp16  # lwdet/ on the path: installed, or setup.sh's .pth on the Pi


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("inputs")
    a.add_argument("export", type=Path)
    a.add_argument("images", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--n-images", type=int, default=4)
    m = sub.add_parser("measure")
    m.add_argument("export", type=Path)
    m.add_argument("inputs", type=Path)
    m.add_argument("images", type=Path)
    m.add_argument("out", type=Path, help="writes OUT.npy (raw outputs) and OUT.json (detections, CPU)")
    m.add_argument("--fp16", type=parse_fp16, default=None, help="on, off or auto (the board's default)")
    r = sub.add_parser("report")
    r.add_argument("results", type=Path)
    r.add_argument("labels", type=Path, help="the val set's YOLO label folder")
    r.add_argument("--export", type=Path, required=True, help="the export (names, parity.json)")
    r.add_argument("--json", type=Path)
    r.add_argument("--record", action="store_true", help="add the table to the export's lwdet.json")
    args = p.parse_args(argv)
    try:
        if args.cmd == "inputs":
            from lwdet.edge.numerics import fixed_inputs, image_files
            from lwdet.edge.runner import read_export_meta

            imgsz = tuple(read_export_meta(args.export).imgsz)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            np.save(args.out, fixed_inputs(imgsz, image_files(args.images)[: args.n_images]))
        elif args.cmd == "measure":
            from lwdet.edge.numerics import image_files, measure, save

            raw, result = measure(args.export, np.load(args.inputs), image_files(args.images), args.fp16)
            save(args.out, raw, result)
            print(f"{args.out.name}: {result['info']}")
        else:
            from lwdet.edge.runner import read_export_meta
            from lwdet.pi_numerics import board_table, markdown

            meta = read_export_meta(args.export)
            from lwdet.artifacts import parity_file

            parity_path = parity_file(args.export)
            parity = json.loads(parity_path.read_text()) if parity_path.is_file() else None
            rows = board_table(args.results, args.labels, meta.names, parity)
            print(markdown(rows), end="")
            if args.json:
                args.json.write_text(json.dumps(rows, indent=2) + "\n")
            if args.record:
                record(args.export, rows)
    except (OSError, ValueError, KeyError) as e:
        print(f"pi_numerics.py: error: {e}", file=sys.stderr)
        return 2
    return 0


def record(export: Path, rows: list[dict]) -> None:
    """lwdet.json gains one key, ``board_numerics``: the measured rows, the mAP tolerance, and the default each
    board gets from them (``lwdet.edge.boards.board_default``, which the runtime applies to the rows itself)."""
    from dataclasses import replace

    from lwdet.artifacts import MAP_TOLERANCE, ExportMeta
    from lwdet.edge.boards import _run_part, board_default

    meta = ExportMeta.load(export)
    keys = ("run", "cpu_part", "asimdhp", "fp16_used", "box_max_px", "score_max", "anchors_over_1px", "map50_95",
            "map_torch")  # fmt: skip
    numerics = {
        "how": "tools/pi_emulated.sh + tools/pi_numerics.py report (qemu-user, QEMU_CPU per board; emulated: numbers, "
        "not latencies)",
        "precision": "int8" if meta.int8 else "fp16" if meta.fp16 else "fp32",
        "map_tolerance": MAP_TOLERANCE,
        "runs": [{k: r[k] for k in keys} for r in rows],
    }
    parts = sorted({p for r in rows if (p := _run_part(r))})
    numerics["defaults"] = {p: board_default(numerics, p, True)._asdict() for p in parts}
    replace(meta, board_numerics=numerics).save(export)  # ExportMeta: the one writer of lwdet.json


if __name__ == "__main__":
    sys.exit(main())
