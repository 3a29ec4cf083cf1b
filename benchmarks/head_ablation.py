"""The head ablation's table (docs/head-ablation/README.md) from the committed study data.

    python benchmarks/head_ablation.py [--parts docs/head-ablation/parts-320.json]

Reads docs/head-ablation/data/results.csv (the engine's optimizer='auto', AdamW) and
docs/head-ablation-sgd/data/results.csv (SGD, lr0 0.01), counts each head's parameters from its YAML (10 classes),
and, with --parts (rows written by `lwdet parts ... --json`), adds the head's ncnn time by split export.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
YAMLS = ROOT / "lwdet" / "cfg" / "studies" / "head-ablation"
HEADS = ("engine", "v8", "slim32", "lite1", "lite2", "shared2k5")


def rows(path: Path, suffix: str = "") -> dict[str, dict]:
    if not path.is_file():
        return {}
    return {r["model"].removesuffix(suffix): r for r in csv.DictReader(path.open(encoding="utf-8"))}


def head_params(name: str) -> int:
    from lwdet.models import LwdetModel

    head = LwdetModel(YAMLS / f"{name}.yaml", nc=10, verbose=False).model[-1]
    return sum(p.numel() for p in head.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=Path, help="lwdet parts --json output for the head-ablation YAMLs")
    args = ap.parse_args()
    auto = rows(ROOT / "docs" / "head-ablation" / "data" / "results.csv")
    sgd = rows(ROOT / "docs" / "head-ablation-sgd" / "data" / "results.csv", "-sgd")
    parts = {}
    if args.parts:
        parts = {Path(r["model"]).stem: r for r in json.loads(args.parts.read_text()) if int(r["threads"]) == 1}
    params = {h: head_params(h) for h in HEADS}
    print(
        "| head | head params | head ms (ncnn, 1 thread) | auto (AdamW) mAP50 | auto mAP50-95 | SGD mAP50 | SGD mAP50-95 "
        "| SGD mAP50-95 vs engine |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    base = float(sgd["engine"]["map5095"]) if "engine" in sgd else None

    def f(r: dict | None, k: str) -> str:
        return f"{float(r[k]):.4f}" if r and r.get(k) not in (None, "") else "-"

    for h in HEADS:
        a, s, p = auto.get(h), sgd.get(h), parts.get(h)
        share = f"{float(s['map5095']) / base:.0%}" if s and base else "-"
        ms = f"{float(p['head_ms']):.2f} of {float(p['total_ms']):.2f}" if p else "-"
        print(
            f"| {h} | {params[h] / 1e3:.0f}k | {ms} | {f(a, 'map50')} | {f(a, 'map5095')} | {f(s, 'map50')} "
            f"| {f(s, 'map5095')} | {share} |"
        )


if __name__ == "__main__":
    main()
