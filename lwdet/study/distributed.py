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

A node that dies mid-row (its raylet killed, the machine gone) loses nothing: Ray runs the row's task again
(``RETRIES``, for a dead node or worker process only; a row that raises is not retried), on any live node that has
the row's resources, and the task resumes the run from its ``last.pt`` (saved atomically by lwdet.training; a run
with no checkpoint yet is moved aside and starts over). A row that no live node can run any more (its ``resources:``
were on the dead node) waits ``LWDET_RAY_RESOURCE_WAIT_S`` seconds (``RESOURCE_WAIT_S``) for a node that has them,
then is recorded ``failed`` with one line naming what is missing; the same command, once such a node has joined,
finishes it. A task holds its run's lock (``<out>/.<name>.lock``, the one the plain runner takes), so a retry never
trains beside a dying copy of itself.

Nothing is timed beside training: once every row has finished, the new rows' own timings (onnxruntime, per-part
split) are taken here one after another, and then every row and peer is timed side by side (``lwdet.study.timing``:
the report's latency) on the node with the custom resource ``ray.bench_resource`` when the cluster has one (that
pass is torch-free), else here.
Every path in the config is absolute (``lwdet.study.config``), so a task finds the data and run folders wherever its
worker started; on a cluster the study folder must be shared storage (docs/studies.md).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import time
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

RETRIES = 1  # Ray's max_retries for a row's task: system failures only (its node or worker process died)
RESOURCE_WAIT_S = 300.0  # how long a row that no live node can run waits for one (env LWDET_RAY_RESOURCE_WAIT_S)
POLL_S = 5.0  # how often the driver looks at the cluster's live nodes while rows run


def _row_task(run: dict, cfg: dict, train_only: bool, threads: int, *teacher_done) -> dict | None:
    """One run in a Ray worker (``teacher_done``: the teacher's task result, only there to order the two)."""
    import ray
    import torch

    # the engine's Ray Tune callback asks every epoch whether it runs in a Tune trial; a plain task is not one
    warnings.filterwarnings("ignore", message=".*get_trial_id.*", category=UserWarning)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, threads))
    lock = Path(cfg["out"]) / f".{run['name']}.lock"  # the plain runner's: one process trains a run at a time
    with claim(lock, wait=False) as free:
        if free:
            row = do_run(run, cfg, train_only=train_only, timed=False)
    if not free:  # a copy of this task on a dead node still ending, or a plain study process: wait for it
        LOGGER.warning("%s: another process holds %s; waiting for it", run["name"], lock)
        with claim(lock, wait=True):
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
    patience = resource_wait_s()
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
            if cfg["tune"]:  # before Ray starts: a local Ray's workers (Tune's trials) inherit the datasets folder
                from lwdet.experiment.tuning import pin_datasets

                pin_datasets(cfg["data"])
            mine = connect(ray, address, section, StudyConfigError)
            if cfg["tune"]:  # every row to train tuned first, on this Ray (lwdet.study.tune)
                from lwdet.study.tune import tune_study

                tuned = {r["name"]: r for r in tune_study(cfg, everything, todo, section, connected=True)}
                todo = [tuned[r["name"]] for r in todo]
                runs = {**runs, **{n: tuned[n] for n in runs}}
            _submit_and_collect(ray, todo, cfg, section, results, order, train_only, patience)
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


def resource_wait_s() -> float:
    """How long a row that no live node can run waits for one: ``LWDET_RAY_RESOURCE_WAIT_S`` or ``RESOURCE_WAIT_S``."""
    value = os.environ.get("LWDET_RAY_RESOURCE_WAIT_S", "")
    try:
        return float(value) if value.strip() else RESOURCE_WAIT_S
    except ValueError:
        raise StudyConfigError(f"LWDET_RAY_RESOURCE_WAIT_S must be a number of seconds, got {value!r}") from None


def needs(run: dict, cpus: float, gpus: float) -> dict[str, float]:
    """The Ray resources a row's task asks for (those above zero)."""
    wanted = {"CPU": cpus, "GPU": gpus, **(run.get("resources") or {})}
    return {k: float(v) for k, v in wanted.items() if float(v) > 0}


def unplaceable(nodes: list[dict], wants: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The rows of ``wants`` (name -> resources) that no live node of ``nodes`` (``ray.nodes()``) can run, each
    with what is missing: the resources no live node has enough of (all of them when none has them together)."""
    live = [n.get("Resources") or {} for n in nodes if n.get("Alive")]
    out = {}
    for name, want in wants.items():
        if any(all(r.get(k, 0) >= v for k, v in want.items()) for r in live):
            continue
        out[name] = {k: v for k, v in want.items() if max((r.get(k, 0) for r in live), default=0) < v} or want
    return out


def _listed(resources: dict[str, float]) -> str:
    return ", ".join(f"{k}: {v:g}" for k, v in resources.items())


def _hint(resources: dict[str, float]) -> str:
    """The ``ray start`` options of a node that has ``resources``."""
    opts = [f"--num-{k.lower()}s {resources[k]:g}" for k in ("CPU", "GPU") if k in resources]
    custom = {k: int(v) if v == int(v) else v for k, v in resources.items() if k not in ("CPU", "GPU")}
    if custom:
        opts.append(f"--resources '{json.dumps(custom)}'")
    return " ".join(["ray start --address HEAD", *opts])


def died(ray, e: BaseException) -> str | None:
    """A one-line reason when ``e`` says the row's node or worker process died (Ray retried it already), else None."""
    if isinstance(e, ray.exceptions.NodeDiedError):
        node = re.search(r"node ID: ([0-9a-f]{12})", str(e))
        what = f"its node {node.group(1)} died" if node else "its node died"
    elif isinstance(e, ray.exceptions.WorkerCrashedError):
        what = "its worker process died"
    else:
        return None
    tries = "once" if RETRIES == 0 else f"{RETRIES + 1} times"
    return f"{what} ({type(e).__name__}, tried {tries}); the same command resumes it from its last.pt"


def _submit_and_collect(ray, todo, cfg, section, results, order, train_only, patience) -> None:
    cpus, gpus = float(section["cpus_per_row"]), float(section["gpus_per_row"])
    # a task whose node or worker process dies runs again (from its last.pt); one that raises is not retried
    task = ray.remote(max_retries=RETRIES, retry_exceptions=False)(_row_task)
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
    wants = {r["name"]: needs(r, cpus, gpus) for r in todo}
    stranded: dict[str, float] = {}  # row -> since when no live node can run it
    looked, live = time.monotonic(), _live(ray.nodes())

    def fail(name: str, reason: str) -> None:
        failed.add(name)
        LOGGER.error("%s: failed: %s", name, reason)
        merge_result(results, failed_row(by_name[name], cfg, reason), order)

    while waiting:
        ready, _ = ray.wait(list(waiting), num_returns=1, timeout=POLL_S)
        if ready:
            name = waiting.pop(ready[0])
            run = by_name[name]
            try:
                row = ray.get(ready[0])
            except Exception as e:  # the task raised (or its node died twice): the row fails, the others go on
                teacher = run.get("teacher")
                fail(name, f"its teacher {teacher} failed" if teacher in failed else died(ray, e) or one_line(e))
            else:
                if row is not None:
                    merge_result(results, row, order)
        if time.monotonic() - looked < POLL_S:
            continue
        looked, nodes = time.monotonic(), ray.nodes()
        for node in sorted(live - _live(nodes)):
            LOGGER.warning(
                "Ray node %s died; the rows it ran start again (from their last.pt) on a live node that has their "
                "resources",
                node[:12],
            )
        live = _live(nodes)
        _give_up_stranded(ray, nodes, waiting, wants, stranded, patience, fail)
    if failed:
        LOGGER.warning("%d of %d runs failed (results.csv, column error): %s", len(failed), len(todo), sorted(failed))


def _live(nodes: list[dict]) -> set[str]:
    return {n["NodeID"] for n in nodes if n.get("Alive")}


def _give_up_stranded(ray, nodes, waiting, wants, stranded, patience, fail) -> None:
    """Cancel, and record failed, the waiting rows that no live node has been able to run for ``patience`` seconds
    (their resources were on a node that died, or never joined): Ray alone would wait for one forever."""
    names = {name: ref for ref, name in waiting.items()}
    now = time.monotonic()
    missing = unplaceable(nodes, {n: wants[n] for n in names})
    for name in [n for n in stranded if n not in missing]:  # a node that can run it joined, or it finished
        if name in names:
            LOGGER.info("%s: a node that can run it has joined", name)
        del stranded[name]
    for name, lack in missing.items():
        since = stranded.setdefault(name, now)
        if since == now:
            LOGGER.warning(
                "%s: no live node has the Ray resources %s; waiting up to %g s for one (%s)",
                name,
                _listed(lack),
                patience,
                _hint(wants[name]),
            )
        if now - since < patience:
            continue
        ref = names[name]
        try:
            ray.cancel(ref)
        except Exception as e:  # already finished or gone: its result (if any) is not waited for
            LOGGER.debug("%s: cancel: %s", name, one_line(e))
        del waiting[ref], stranded[name]
        fail(
            name,
            f"no live node has the Ray resources {_listed(lack)} (waited {patience:g} s); "
            f"start one ({_hint(wants[name])}) and run the same command again",
        )


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
