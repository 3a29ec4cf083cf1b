"""A study on Ray: every run is a Ray task, on this machine or across a cluster.

    lwdet study CONFIG --ray            # a Ray started for this study on this machine (or the config's `ray:` address)
    lwdet study CONFIG --ray auto       # the cluster `ray start` joined this machine to
    lwdet study CONFIG --ray HOST:PORT  # a cluster's head

Each run (train or resume, profile, export with its parity proof, val / test, full-size accuracy) is one task that
asks for the config's ``ray.cpus_per_row`` / ``ray.gpus_per_row`` and the row's own ``resources``; a distilled run's
task takes its teacher's task as an argument, so Ray starts it once the teacher has finished. Tasks return their row;
this process (the driver) is the only writer of ``results.csv`` and of the report. A task that raises is recorded
``failed`` with its one-line reason (column ``error``) and the other rows go on; the same command again resumes:
finished rows are skipped, an unfinished training resumes from its ``last.pt``, failed rows are tried again.

Nothing is timed beside training: once every row has finished, the new rows' own timings (onnxruntime, per-part
split) are taken here one after another, and then every row and peer is timed side by side (``lwdet.study.timing``:
the report's latency) on the node with the custom resource ``ray.bench_resource`` when the cluster has one (that
pass is torch-free), else here.
Every path in the config is absolute (``lwdet.study.config``), so a task finds the data and run folders wherever its
worker started; on a cluster the study folder must be shared storage (docs/studies.md).
"""

from __future__ import annotations

import logging
import platform
import warnings
from pathlib import Path

from lwdet.experiment.cluster import RAY_EXTRA, RayMissing, connect, import_ray, one_line, probe
from lwdet.experiment.table import DONE, FAILED, PEERS_CSV, RESULTS, claim, merge_result, read_results
from lwdet.study.config import RAY_DEFAULTS, StudyConfigError, load_config
from lwdet.study.kept import adopt
from lwdet.study.plan import plan, select
from lwdet.study.steps import bench_peers, bench_row, do_run, identity

LOGGER = logging.getLogger(__name__)

__all__ = ["RAY_EXTRA", "RayMissing", "import_ray", "run_study_ray"]


def _row_task(run: dict, cfg: dict, train_only: bool, threads: int, *teacher_done) -> dict | None:
    """One run in a Ray worker (``teacher_done``: the teacher's task result, only there to order the two)."""
    import ray
    import torch

    # the engine's Ray Tune callback asks every epoch whether it runs in a Tune trial; a plain task is not one
    warnings.filterwarnings("ignore", message=".*get_trial_id.*", category=UserWarning)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, threads))
    row = do_run(run, cfg, train_only=train_only, timed=False)
    if row is not None:
        row["node"] = f"{platform.node()}/{ray.get_runtime_context().get_node_id()[:12]}"
    return row


def _bench_task(rows: list[dict], cfg: dict, runs: dict) -> list[dict]:
    """Time ``rows`` one after another: ncnn, onnxruntime and per-part figures (lwdet.study.steps.bench_row)."""
    return [bench_row(r, cfg, runs.get(r["model"])) for r in rows]


def failed_row(run: dict, cfg: dict, reason: str) -> dict:
    return {**identity(run, Path(cfg["out"]) / run["name"], cfg), "error": reason, "status": FAILED}


def run_study_ray(
    config: str | Path,
    address: str | None = None,
    only: list[str] | None = None,
    report: bool = True,
    train_only: bool = False,
) -> Path:
    """Run (or finish) the study of ``config`` with its runs as Ray tasks; returns the results CSV.

    ``address`` overrides the config's ``ray.address`` (``local`` when the config has no ``ray`` section)."""
    ray = import_ray()
    cfg = load_config(config)
    section = cfg["ray"] or dict(RAY_DEFAULTS)
    address = address or section["address"]
    probe(address, StudyConfigError)  # a head that does not answer: one line within seconds, before any work
    out = Path(cfg["out"])
    results = out / RESULTS
    everything = plan(cfg)
    order = [r["name"] for r in everything]
    runs = {r["name"]: r for r in everything}
    adopt(cfg, order)
    if cfg["sliced"] and not train_only:  # before hours of training: the full-size images must be there
        from lwdet.study.sliced import dataset_folder, folders

        folders(dataset_folder(cfg["data"]), cfg["sliced"], cfg["config"])
    done = {n for n, r in read_results(results).items() if r.get("status") == DONE}
    todo = [r for r in select(everything, only) if r["name"] not in done]
    for name in sorted(done & {r["name"] for r in select(everything, only)}, key=order.index):
        LOGGER.info("%s: complete, skipped", name)
    mine = False
    try:
        if not todo:
            LOGGER.info("every run is done; nothing to submit to Ray")
        else:
            mine = connect(ray, address, section, StudyConfigError)
            _submit_and_collect(ray, todo, cfg, section, results, order, train_only)
        if not train_only:
            _timing_pass(ray, cfg, section, results, order, runs)
    finally:
        if mine:
            ray.shutdown()
    if report and not train_only and results.is_file():
        from lwdet.report import write_report

        with claim(out / ".report.lock", wait=True):
            write_report(results, cfg["report"] or out / "report")
    return results


def _submit_and_collect(ray, todo, cfg, section, results, order, train_only) -> None:
    cpus, gpus = float(section["cpus_per_row"]), float(section["gpus_per_row"])
    task = ray.remote(max_retries=0)(_row_task)
    refs: dict[str, object] = {}
    for run in todo:  # plan order: a teacher's task exists before its students'
        after = [refs[run["teacher"]]] if run["teacher"] in refs else []
        opts = {"num_cpus": cpus, "num_gpus": gpus, "name": f"lwdet-row:{run['name']}"}
        if run.get("resources"):
            opts["resources"] = dict(run["resources"])
        refs[run["name"]] = task.options(**opts).remote(run, cfg, train_only, max(1, int(cpus)), *after)
        LOGGER.info("%s: submitted%s", run["name"], f" (after its teacher {run['teacher']})" if after else "")
    waiting = {ref: name for name, ref in refs.items()}
    failed: set[str] = set()
    by_name = {r["name"]: r for r in todo}
    while waiting:
        ready, _ = ray.wait(list(waiting), num_returns=1)
        name = waiting.pop(ready[0])
        run = by_name[name]
        try:
            row = ray.get(ready[0])
        except Exception as e:  # the task raised (or its worker died): the row fails, the others go on
            teacher = run.get("teacher")
            reason = f"its teacher {teacher} failed" if teacher in failed else one_line(e)
            failed.add(name)
            LOGGER.error("%s: failed: %s", name, reason)
            merge_result(results, failed_row(run, cfg, reason), order)
            continue
        if row is not None:
            merge_result(results, row, order)
    if failed:
        LOGGER.warning("%d of %d runs failed (results.csv, column error): %s", len(failed), len(todo), sorted(failed))


def _timing_pass(ray, cfg, section, results, order, runs) -> None:
    """After all training: the new rows' own timings here (onnxruntime, per-part split: lwdet's torch side), then the
    side-by-side pass of every row and peer (lwdet.study.timing) on the bench node when the cluster has one (that
    pass is torch-free: a Raspberry Pi with lwdet.edge and Ray can be that node), else here."""
    from lwdet.study.timing import side_by_side, time_study

    name = section["bench_resource"]
    on_node = ray.is_initialized() and bool(name) and ray.cluster_resources().get(name, 0) >= 1
    rows = [
        r
        for r in read_results(results).values()
        if r.get("status") == DONE and r.get("parity_ok") in ("True", True) and r.get("latency_ms_t1") in ("", None)
    ]
    if rows:
        LOGGER.info("timing %d new detectors one after another here (onnxruntime, per part)", len(rows))
        for r in _bench_task(rows, cfg, runs):
            merge_result(results, r, order)
    if on_node:
        LOGGER.info("side-by-side timing on the '%s' node", name)
        remote = ray.remote(max_retries=0)(side_by_side).options(resources={name: 1}, num_cpus=0)
        time_study(cfg, order, force=bool(rows), on=lambda c, g: ray.get(remote.remote(c, g)))
    else:
        time_study(cfg, order, force=bool(rows))
    if results.is_file() and not (Path(cfg["out"]) / PEERS_CSV).is_file():
        bench_peers(cfg)
