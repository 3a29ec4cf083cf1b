"""Hardware-aware search: which detector of a space is most accurate within a latency budget, on Ray Tune.

    lwdet search configs/search-fast.yaml            # again after an interruption: it resumes

1. ``screen``: every architecture of the space is timed (random weights) side by side with the budget's reference
   before anything trains; candidates over the budget never train (``screen.csv``).
2. ``trials``: the feasible ones train under ASHA (Ray Tune; epoch as time, the ``metric``), with the space's
   training arguments sampled per trial.
3. ``reseed``, no winner's curse: the best ``reseed.top`` trials' configurations train again on ``reseed.seeds``
   fresh seeds each, every run of them is scored on the test split, and ``winner.yaml`` (the model YAML) /
   ``winner.json`` name the configuration with the best mean there.
4. The result is a study: ``<out>/results.csv`` (one row per trial and per re-seeded run, the study's columns plus
   ``epochs``, ``arch``, ``lr0`` and ``trial``), ``<out>/latency.csv`` (the screen's timing, rows named by run) and
   the report with its Pareto plot.

Layers: ``config`` (the YAML), ``screen`` (latency before training), ``trials`` (Ray Tune), ``reseed`` (fresh seeds,
the test split), this module (the run and its outputs); under them ``lwdet.experiment`` (the config reader, the
results table, the side-by-side timing, Ray), which ``lwdet.study`` stands on too. The search imports nothing of the study.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from lwdet.experiment.table import (
    COLUMNS,
    DONE,
    FAILED,
    RESULTS,
    SEARCH_COLUMNS,
    SIDE_BY_SIDE,
    relative_to,
    train_text,
    write_csv,
    write_results,
)
from lwdet.report.rows import read_bench
from lwdet.search.config import SearchConfigError, load_search
from lwdet.search.reseed import ranked, reseed
from lwdet.search.screen import STAT, candidates, screen

LOGGER = logging.getLogger(__name__)

WINNER = "winner.json"


def _f1(p, r) -> float | None:
    return 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None


def result_rows(cfg: dict, grid, screened: list[dict]) -> list[dict]:
    """One study row per trial: its last reported metrics, its architecture's screened latency, its sampled training
    arguments (``train``: as ``lwdet train`` takes them)."""
    from lwdet.search.trials import overrides, trial_id

    by_arch = {c["arch"]: c for c in screened}
    max_t = int(cfg["budget"]["epochs"])
    rows = []
    for res in grid:
        m, c = res.metrics or {}, res.config
        if not c:  # a trial that never started
            continue
        arch = by_arch[c["arch"]]
        trial = trial_id(res)
        epochs = int(m.get("epoch") or 0)
        p, r = m.get("metrics/precision(B)"), m.get("metrics/recall(B)")
        rows.append(
            {
                "model": f"{trial}-{arch['arch']}",
                "backbone": arch["backbone"],
                "neck": arch["neck"],
                "head": arch["head"],
                "map50": m.get("metrics/mAP50(B)"),
                "map5095": m.get("metrics/mAP50-95(B)"),
                "precision": p,
                "recall": r,
                "f1": _f1(p, r),
                "latency_ms_t1": arch["latency_ms_t1"],
                "imgsz": arch["imgsz"],
                "seed": cfg["budget"]["seed"],
                "train": train_text({k: v for k, v in overrides(c).items() if k != "imgsz"}),
                "run_dir": str(Path(cfg["out"]) / "trials" / trial),
                "latency_graph": "rebuilt",
                "parity_ok": None,
                "status": FAILED if res.error else DONE,
                "error": str(res.error).strip().splitlines()[0] if res.error else "",
                "arch": arch["arch"],
                "epochs": epochs,
                "stopped_early": bool(epochs < max_t and not res.error),
                "lr0": c.get("lr0"),
                "trial": trial,
            }
        )
    return rows


def _latency_csv(cfg: dict, rows: list[dict]) -> Path:
    """The screen's timing as the study's side-by-side file: each trial named, with its architecture's rows."""
    from lwdet.edge.bench.output import FIELDS

    out = Path(cfg["out"])
    timed = [b for f in sorted(out.glob("screen-latency-*.csv")) for b in read_bench(f)]
    by_model: dict[str, list[dict]] = {}
    for b in timed:
        by_model.setdefault(str(b["model"]), []).append(b)
    named = [{**b, "model": r["model"]} for r in rows for b in by_model.get(r["arch"], [])]
    archs = {r["arch"] for r in rows} | {c["arch"] for c in candidates(cfg)}
    others = [b for b in timed if str(b["model"]) not in archs]  # the reference graph, the peers
    return write_csv(out / SIDE_BY_SIDE, named + others, FIELDS)


def _pin_datasets(cfg: dict) -> None:
    """The dataset built here, once, where every trial finds it (``lwdet.experiment.tuning.pin_datasets``)."""
    from lwdet.experiment.tuning import pin_datasets

    pin_datasets(cfg["data"])


def _winner(cfg: dict, screened: list[dict], rows: list[dict], verdict: dict | None) -> None:
    """``winner.yaml`` (the winning configuration's model YAML) and ``winner.json`` (its figures, its training
    arguments, and how it was chosen: the best mean over its runs on the test split, or without re-seeding the best
    trial on val)."""
    out = Path(cfg["out"])
    trials = [r for r in rows if r.get("trial") and r["model"] == f"{r['trial']}-{r['arch']}"]  # the trials' own
    key = cfg["metric"]  # map5095 (the default) or map50: what the trials are ranked and the winner judged by
    on_val = ranked(trials, key)
    if not on_val:
        return
    by_trial = {r["trial"]: r for r in trials}
    win = by_trial[verdict["candidates"][0]["trial"]] if verdict else on_val[0]
    arch = next(c for c in screened if c["arch"] == win["arch"])
    shutil.copyfile(arch["yaml"], out / "winner.yaml")
    if verdict:
        best = verdict["candidates"][0]
        how = {"reseeded": True, "split": verdict["split"], "test_split_missing": verdict["test_split_missing"],
               "seeds": best["seeds"], "scores": best["scores"],
               f"mean_{key}": best["mean"], "val_rank": 1 + on_val.index(win),
               "candidates": [{**c, "model": by_trial[c["trial"]]["model"], "train": by_trial[c["trial"]]["train"]}
                              for c in verdict["candidates"]]}  # fmt: skip
    else:
        how = {"reseeded": False, "split": "val", "seeds": [win["seed"]], f"mean_{key}": win[key], "val_rank": 1}
    (out / WINNER).write_text(
        json.dumps({**{k: win[k] for k in ("model", "trial", "arch", "train", "map5095", "map50", "epochs", "lr0")},
                    "run_dir": relative_to(win["run_dir"], out),
                    "latency_ms_t1": win["latency_ms_t1"], "budget": cfg["max_latency"]["text"],
                    "latency_stat": STAT, "finished_all_epochs": win["status"] == DONE and not win["stopped_early"],
                    "metric": key, **how}, indent=1) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    seeds = ", ".join(map(str, how["seeds"]))
    LOGGER.info("winner: %s (%s %s %.4f, %s over seed(s) %s; val rank %d) -> %s; train it: lwdet train "
                "--model %s %s", win["model"], how["split"], key, float(how[f"mean_{key}"]),
                "mean" if verdict else "one run", seeds, how["val_rank"], out / "winner.yaml", out / "winner.yaml",
                win["train"])  # fmt: skip


def run_search(config: str | Path, report: bool = True, address: str | None = None) -> Path:
    """Screen, train the feasible candidates under ASHA, write the study and the winner; returns results.csv.
    ``address`` overrides the config's ``ray.address``."""
    from lwdet.experiment.cluster import connect, import_ray, probe

    cfg = load_search(config)
    if address:
        cfg["ray"] = {**cfg["ray"], "address": address}
    ray = import_ray()
    probe(cfg["ray"]["address"], SearchConfigError)  # a head that does not answer: one line now, not after the screen
    out = Path(cfg["out"])
    screened = screen(cfg)
    feasible = [c for c in screened if c["feasible"]]
    if not feasible:
        best = min(screened, key=lambda c: float(c["latency_ms_t1"]))
        raise SearchConfigError(
            f"{config}: no candidate within max_latency {cfg['max_latency']['text']!r}; the fastest, {best['arch']}, "
            f"is {float(best.get('ratio') or best.get('projected_ms')):.2f}"
            f"{'x' if cfg['max_latency']['kind'] == 'ratio' else ' ms'}"
        )
    LOGGER.info("%d of %d candidates within %s: %s", len(feasible), len(screened), cfg["max_latency"]["text"],
                ", ".join(c["arch"] for c in feasible))  # fmt: skip
    from lwdet.search.trials import run_trials

    _pin_datasets(cfg)
    columns = [*COLUMNS, *SEARCH_COLUMNS]
    mine = connect(ray, cfg["ray"]["address"], cfg["ray"], SearchConfigError)  # a local Ray, or the cluster
    try:
        grid, interrupted = run_trials(cfg, feasible)
        if interrupted or grid.num_terminated + grid.num_errors < len(grid):  # Ctrl-C: saved, returned early
            LOGGER.warning("%d of %d trials unfinished; the experiment is saved at %s", len(grid) - grid.num_terminated
                           - grid.num_errors, len(grid), out / "tune")  # fmt: skip
            raise KeyboardInterrupt
        rows = result_rows(cfg, grid, screened)
        write_results(out / RESULTS, rows, columns)  # the trials' rows, before the re-seeded runs train
        rows, verdict = reseed(ray, cfg, grid, rows, lambda rs: write_results(out / RESULTS, rs, columns))
    finally:
        if mine:
            ray.shutdown()
    results = write_results(out / RESULTS, rows, columns)
    _latency_csv(cfg, rows)
    _winner(cfg, screened, rows, verdict)
    if report:
        from lwdet.report import write_report

        write_report(results, cfg["report"] or out / "report")
    return results


__all__ = ["SEARCH_COLUMNS", "SearchConfigError", "load_search", "run_search"]
