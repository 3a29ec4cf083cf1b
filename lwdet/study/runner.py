"""Run (or finish) a study: every planned run not done yet, resumably, shared safely between study processes."""

from __future__ import annotations

import logging
from pathlib import Path

from lwdet.artifacts import best_weights
from lwdet.experiment.table import DONE, PEERS_CSV, RESULTS, claim, merge_result, read_results, write_results
from lwdet.study.config import StudyConfigError, load_config
from lwdet.study.kept import ADOPTED, adopt
from lwdet.study.plan import plan, select
from lwdet.study.steps import TRAINED, bench_peers, bench_row, do_run, sliced_row

LOGGER = logging.getLogger(__name__)


def _write_report(results: Path, cfg: dict) -> None:
    from lwdet.report import write_report

    write_report(results, cfg["report"] or Path(cfg["out"]) / "report")


def rebench(config: str | Path, report: bool = True) -> Path:
    """Time every finished detector again in one pass (e.g. on a quiet machine, after a study that shared it)."""
    cfg = load_config(config)
    results = Path(cfg["out"]) / RESULTS
    runs = {r["name"]: r for r in plan(cfg)}
    adopt(cfg, list(runs))
    rows = list(read_results(results).values())
    if not rows:
        raise StudyConfigError(f"{results}: no finished detectors to bench")
    for i, row in enumerate(rows):
        if row.get("status") == DONE and row.get("parity_ok") in ("True", True):
            if not best_weights(row["run_dir"]).is_file() and row["model"] not in runs:
                LOGGER.warning("%s: no weights here and not a run of this config; not timed again", row["model"])
                continue
            LOGGER.info("%s: benching again", row["model"])
            rows[i] = bench_row(row, cfg, runs.get(row["model"]))
            write_results(results, rows)
    bench_peers(cfg)
    from lwdet.study.timing import time_study

    time_study(cfg, list(runs), force=True)
    if report:
        _write_report(results, cfg)
    return results


def run_study(config: str | Path, only: list[str] | None = None, report: bool = True, train_only: bool = False) -> Path:
    """Run (or finish) the study of ``config``; returns the results CSV.

    ``train_only`` trains every run and stops there (on a GPU box); copy the run folders back and run the study
    again where the detectors will be timed: trained runs are not retrained.
    """
    cfg = load_config(config)
    out = Path(cfg["out"])
    results = out / RESULTS
    everything = plan(cfg)
    order = [r["name"] for r in everything]
    adopt(cfg, order)  # rows finished in an earlier checkout, from the report's committed data: not trained again
    if cfg["tune"]:  # every row not done yet tuned first, the same budget each (lwdet.study.tune)
        from lwdet.study.config import RAY_DEFAULTS
        from lwdet.study.tune import tune_study

        done = {n for n, r in read_results(results).items() if r.get("status") == DONE}
        todo = [r for r in select(everything, only) if r["name"] not in done]
        everything = tune_study(cfg, everything, todo, cfg["ray"] or dict(RAY_DEFAULTS))
    pending, wait = select(everything, only), False
    if cfg["sliced"] and not train_only:  # before hours of training: the full-size images must be there
        from lwdet.study.sliced import dataset_folder, folders

        folders(dataset_folder(cfg["data"]), cfg["sliced"], cfg["config"])
    while pending:  # a second pass waits for the runs another study process held during the first
        held = []
        for run in pending:
            teacher_dir = out / str(run["teacher"])
            if run["teacher"] and not wait and not any((teacher_dir / f).is_file() for f in (TRAINED, ADOPTED)):
                LOGGER.info(
                    "%s: its teacher %s is not trained yet (another process has it); coming back to it at the end",
                    run["name"],
                    run["teacher"],
                )
                held.append(run)
                continue
            with claim(out / f".{run['name']}.lock", wait=wait) as mine:
                if not mine:
                    LOGGER.info("%s: another study process has it; coming back to it at the end", run["name"])
                    held.append(run)
                    continue
                done = read_results(results).get(run["name"], {})
                if done.get("status") == DONE:
                    if (
                        cfg["sliced"]
                        and not train_only
                        and done.get("sliced_map50") in (None, "")
                        and best_weights(done["run_dir"]).is_file()
                    ):
                        merge_result(results, sliced_row(done, cfg), order)  # a sliced section added later
                        LOGGER.info("%s: complete; full-size accuracy added", run["name"])
                    else:
                        LOGGER.info("%s: complete, skipped", run["name"])
                    continue
                row = do_run(run, cfg, train_only=train_only)
                if row is not None:
                    merge_result(results, row, order)
        pending, wait = held, True
    if not train_only and results.is_file() and not (Path(cfg["out"]) / PEERS_CSV).is_file():
        bench_peers(cfg)
    if not train_only and results.is_file():
        with claim(out / ".report.lock", wait=True):
            _after_training(cfg, order, whole=not only)
            if report:
                _write_report(results, cfg)
    return results


def _after_training(cfg: dict, order: list[str], whole: bool) -> None:
    """The side-by-side timing pass, once every planned run is done (and only then: a run still training elsewhere
    would share the machine with it). ``whole``: this invocation covered the whole plan (no --only)."""
    from lwdet.study.timing import time_study

    done = {n for n, r in read_results(Path(cfg["out"]) / RESULTS).items() if r.get("status") == DONE}
    if missing := [n for n in order if n not in done]:
        LOGGER.info("side-by-side timing: after the last run (%d of %d not done: %s)", len(missing), len(order),
                    ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else ""))  # fmt: skip
    elif not whole:
        LOGGER.info("side-by-side timing: every run is done; run the study without --only (or --rebench) to time them")
    else:
        time_study(cfg, order)
