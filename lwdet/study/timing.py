"""A study's latency: one side-by-side pass after training, on one machine, with nothing of the study running there.

Every finished row's ncnn export (a row trained in an earlier checkout: its YAML rebuilt with random weights, as
``--rebench`` does; ncnn's latency does not depend on the weights' values) and the peer graphs at the study's input
size are timed in one fresh, torch-free process (``lwdet.edge.bench.bench_all``), round-robin over ``bench.passes``
passes: a slow minute on a shared machine hits every graph alike. The merged rows (lowest loop over the passes,
median of the per-pass medians) go into ``<out>/latency.csv`` (a bench CSV: device columns on every row, model =
the run's name); the report reads the study's latency from that file (``lwdet.experiment.table.SIDE_BY_SIDE``), never from
figures timed beside training.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lwdet.artifacts import NCNN_PARAM, best_weights, ncnn_folder
from lwdet.experiment.table import DONE, RESULTS, SIDE_BY_SIDE, SIDE_BY_SIDE_STAT, merge_result, read_results
from lwdet.experiment.timing import time_graphs
from lwdet.report.rows import machine_of, read_bench

LOGGER = logging.getLogger(__name__)


def graphs_of(cfg: dict, rows: list[dict]) -> dict[str, tuple[Path, str]]:
    """run name -> (the ncnn export to time, "trained" or "rebuilt"): the run's trained export, else its YAML rebuilt
    with random weights (the study's ``latency_graph`` column)."""
    from lwdet.study.plan import plan
    from lwdet.study.steps import rebuilt

    runs = {r["name"]: r for r in plan(cfg)}
    graphs = {}
    for row in rows:
        name, best = row["model"], best_weights(row["run_dir"])
        if best.is_file() and (ncnn_folder(best) / NCNN_PARAM).is_file():
            graphs[name] = (ncnn_folder(best), "trained")
        elif name in runs:
            graphs[name] = (rebuilt(runs[name], cfg)[0], "rebuilt")
        else:
            LOGGER.warning("%s: no export here and not a run of this config; not timed", name)
    return graphs


def _text(v) -> str:
    """A value as results.csv holds it (None: empty)."""
    return "" if v is None else str(v)


def finished(results: Path) -> list[dict]:
    """The rows of a study's results CSV that can be timed: done, with a parity-checked export."""
    return [r for r in read_results(results).values() if r.get("status") == DONE and r.get("parity_ok") == "True"]


def time_study(cfg: dict, order: list[str], force: bool = False, on=None) -> Path | None:
    """The side-by-side pass over every finished row, unless ``latency.csv`` already has each of them (``force``:
    again anyway); the pass's figures go into results.csv too (latency columns, memory, machine, latency_graph).

    ``on(cfg, graphs)``: runs ``side_by_side`` where the timing belongs (a study on Ray: the bench node); default
    here. This process writes results.csv either way."""
    results = Path(cfg["out"]) / RESULTS
    rows = finished(results)
    side = Path(cfg["out"]) / SIDE_BY_SIDE
    if not rows:
        return None
    graphs = None
    if not force and side.is_file() and {r["model"] for r in rows} <= {str(b["model"]) for b in read_bench(side)}:
        LOGGER.info("the side-by-side timing has every finished detector (%s)", side)
    else:
        graphs = graphs_of(cfg, rows)
        (on or side_by_side)(cfg, {k: v[0] for k, v in graphs.items()})
    timed: dict[str, dict[int, dict]] = {}
    for b in read_bench(side):
        timed.setdefault(str(b["model"]), {})[int(b["threads"])] = b
    for row in rows:  # results.csv says what the report shows
        hit = timed.get(row["model"])
        if not hit or (graphs is not None and row["model"] not in graphs):
            continue
        first = hit.get(1) or hit[min(hit)]
        new = {**row, "machine": machine_of(first) or row.get("machine"), "ncnn_peak_mb": first.get("mem_peak_mb")}
        new.update({f"latency_ms_t{t}": hit[t][SIDE_BY_SIDE_STAT] for t in (1, 2) if t in hit})
        if graphs is not None:
            new["latency_graph"] = graphs[row["model"]][1]
        if any(_text(new[k]) != _text(row.get(k)) for k in new):
            merge_result(results, new, order)
    return side


def side_by_side(cfg: dict, graphs: dict[str, Path]) -> Path:
    """Time ``graphs`` (run name -> ncnn export) and the peers in one process; returns ``<out>/latency.csv``."""
    from lwdet.edge.bench.output import find_params

    b = cfg["bench"]
    if not graphs:
        raise FileNotFoundError(f"{cfg['config']}: no finished detector to time")
    peers = find_params(b["peers"]) if b["peers"] and Path(b["peers"]).is_dir() else []
    return time_graphs(
        graphs, peers, int(cfg["budget"]["imgsz"]), b["threads"], b["loops"], b["warmup"], b["passes"],
        Path(cfg["out"]) / SIDE_BY_SIDE,
    )  # fmt: skip
