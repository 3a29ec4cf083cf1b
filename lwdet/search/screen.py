"""Before any training: every architecture of a search space timed against its latency budget, side by side.

Each candidate graph (backbone x neck x head x rep, at each input size) is built from its YAML with random weights
(ncnn's latency does not depend on the weights' values), exported to ncnn, and timed in one torch-free process with
the reference graph of the budget (``0.5x yolov5n``: lwdet's YOLOv5n at the same input size; ``1.0x yolo-fastestv2``:
that peer graph of ``bench.peers`` at the same input size) or, for a board budget (``pi5-t4 <= 15 ms``), with the peer
graphs at their own input sizes, from which ``lwdet.edge.bench.projection`` projects the board's latency. Candidates
over the budget never train. ``screen.csv`` in the search folder records every candidate's figures and verdict; a rerun
with the same candidates and budget reuses it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lwdet.experiment.table import read_table, write_csv
from lwdet.experiment.timing import random_graph, time_graphs
from lwdet.report.rows import read_bench
from lwdet.search.config import architectures

LOGGER = logging.getLogger(__name__)

SCREEN = "screen.csv"  # in the search folder: one row per candidate architecture
SCREEN_BENCH = "screen-latency.csv"  # the timing pass behind it (a bench CSV, rows named by candidate)
COLUMNS = ("arch", "backbone", "neck", "head", "rep", "imgsz", "yaml", "latency_ms_t1", "reference_ms_t1",
           "ratio", "projected_ms", "budget", "feasible")  # fmt: skip
STAT = "infer_min_ms"  # the fastest loop: noise only ever adds time


def candidates(cfg: dict) -> list[dict]:
    """Every architecture of the space, at every input size: name, parts, YAML."""
    from lwdet.models import model_yaml

    sizes = [int(x) for x in cfg["space"]["imgsz"]["choices"]]
    out = []
    for (b, n, h, r), size in ((a, size) for a in architectures(cfg["space"]) for size in sizes):
        path = model_yaml(str(b), str(n), str(h), bool(r))
        name = path.stem + (f"-{size}" if len(sizes) > 1 else "")
        out.append(
            {"arch": name, "backbone": b, "neck": n, "head": h, "rep": bool(r), "imgsz": size, "yaml": str(path)}
        )
    return out


def _reference_yaml(name: str) -> Path | str:
    from lwdet.models import model_yaml

    try:
        return model_yaml(name)  # an lwdet backbone name: yolov5n, ghostnet, ...
    except (ValueError, FileNotFoundError):
        return name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"  # the engine's: yolo11n, yolo26n


def screen(cfg: dict) -> list[dict]:
    """Every candidate with its latency figures and ``feasible``; cached in ``<out>/screen.csv``."""
    import yaml

    out = Path(cfg["out"])
    cands = candidates(cfg)
    budget = cfg["max_latency"]
    cached = out / SCREEN
    if cached.is_file():
        rows = read_table(cached)
        if [r["arch"] for r in rows] == [c["arch"] for c in cands] and {r["budget"] for r in rows} == {budget["text"]}:
            LOGGER.info("latency screen: reusing %s", cached)
            return [{**r, "feasible": r["feasible"] == "True"} for r in rows]
    out.mkdir(parents=True, exist_ok=True)
    nc = len((yaml.safe_load(Path(cfg["data"]).read_text(encoding="utf-8")) or {})["names"])
    graphs_dir = out / "screen-graphs"
    rows, b = [], cfg["bench"]
    for size in sorted({c["imgsz"] for c in cands}):
        here = [c for c in cands if c["imgsz"] == size]
        graphs = {c["arch"]: random_graph(c["yaml"], nc, size, graphs_dir / str(size), c["arch"]) for c in here}
        peers: list[Path] = []
        if budget["kind"] == "ratio" and budget.get("peer"):  # a peer graph, at this input size in the same pass
            ref, peers = Path(budget["peer"]).stem, [Path(budget["peer"])]
        elif budget["kind"] == "ratio":
            ref = f"reference-{budget['reference']}"
            graphs[ref] = random_graph(_reference_yaml(budget["reference"]), nc, size, graphs_dir / str(size), ref)
        else:
            from lwdet.edge.bench.output import find_params

            if not b["peers"] or not Path(b["peers"]).is_dir():
                raise FileNotFoundError(
                    f"{cfg['config']}: max_latency {budget['text']!r} is projected from the peer graphs, and "
                    f"bench.peers ({b['peers'] or 'none'}) is not a folder"
                )
            peers = find_params(b["peers"])
        bench_csv = out / f"{SCREEN_BENCH.removesuffix('.csv')}-{size}.csv"
        time_graphs(graphs, peers, size, b["threads"], b["loops"], b["warmup"], b["passes"], bench_csv,
                    native_peers=budget["kind"] == "board")  # fmt: skip
        timed = read_bench(bench_csv)
        ms = {(str(r["model"]), int(r["threads"])): float(r[STAT]) for r in timed if r.get(STAT) is not None}
        if budget["kind"] == "board":
            from lwdet.edge.bench.projection import fit

            scale = fit(timed, stat=STAT)[budget["target"]]
        for c in here:
            row = {**c, "latency_ms_t1": ms.get((c["arch"], 1)), "budget": budget["text"]}
            if budget["kind"] == "ratio":
                row["reference_ms_t1"] = ms[(ref, 1)]
                row["ratio"] = row["latency_ms_t1"] / row["reference_ms_t1"]
                row["feasible"] = row["ratio"] <= budget["value"]
            else:
                row["projected_ms"] = ms[(c["arch"], scale.threads_here)] * scale.ratio
                row["feasible"] = row["projected_ms"] <= budget["ms"]
            rows.append(row)
            LOGGER.info(
                "%s: %s (%s)", c["arch"], "within budget" if row["feasible"] else "OVER budget: not trained",
                f"{row['ratio']:.2f}x {budget['reference']}" if budget["kind"] == "ratio"
                else f"{budget['target']} {row['projected_ms']:.1f} ms projected",
            )  # fmt: skip
    write_csv(cached, rows, COLUMNS)
    return rows
