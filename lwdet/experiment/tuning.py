"""Trials under Ray Tune's ASHA, as the engine's own ``model.tune(use_ray=True)`` does: the machinery a search (a space
of architectures and training arguments) and a study's ``tune:`` section (each row's training arguments, the same
budget for every row) both run.

A space maps engine training arguments to a dimension: a list of choices, ``{uniform: [low, high]}`` or
``{log_uniform: [low, high]}`` (``dimension``). Each trial trains one sampled configuration with
``lwdet.training.train`` into ``<folder>/trials/<trial id>``; the engine's Ray Tune callback
(``ultralytics/utils/callbacks/raytune.py``) reports every epoch's metrics with ``epoch``, and ASHA
(``time_attr="epoch"``, the metric: val mAP50-95 or mAP50, ``max_t`` = the trials' epochs) stops the weak trials at its
rungs. The searcher is Ray Tune's ``BasicVariantGenerator`` (random sampling with a fixed seed, or the full grid):
nothing is installed at run time, and two experiments over the same space with the same seed draw the same
configurations. The experiment lives in ``<folder>/tune``; one killed or interrupted resumes with ``Tuner.restore``,
and a trial that had begun resumes its ``last.pt``. Each trial records the CPU time its trainer process used
(``TRIAL_COST``; the data loader's worker processes are not counted) so a tuning's cost can be stated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import signal
import time
import warnings
from pathlib import Path

from lwdet.errors import ConfigError

LOGGER = logging.getLogger(__name__)

# engine training arguments a space may vary (besides a search's architecture): the input size, the learning rate,
# the nominal batch (nbs: the optimizer steps every max(round(nbs / batch), 1) batches) and augmentation strengths
TRAIN_KEYS = ("imgsz", "lr0", "nbs", "scale", "mosaic", "mixup", "translate", "degrees", "hsv_h", "hsv_s", "hsv_v",
              "fliplr")  # fmt: skip
LISTED = ("imgsz", "nbs")  # whole numbers: choices only, never sampled
DISTRIBUTIONS = ("uniform", "log_uniform")  # {uniform: [low, high]} / {log_uniform: [low, high]}; a list: choices
SEARCHERS = ("random", "grid")  # Ray Tune's BasicVariantGenerator: sampled, or every combination (nothing to install)
ASHA_DEFAULTS = {"grace_period": 10, "reduction_factor": 3}
# the metric ASHA ranks: the engine's val metric (its Tune callback's key), by the results column it becomes
METRICS = {"map5095": "metrics/mAP50-95(B)", "map50": "metrics/mAP50(B)"}
EXPERIMENT = "search"  # <folder>/tune/<EXPERIMENT>: Ray Tune's experiment folder
TRIALS = "trials"  # <folder>/trials/<trial id>: a trial's run folder
TRIAL_COST = "trial_cost.json"  # in a trial's run folder: {cpu_s, wall_s} of its trainer process, over its resumes
EDGE_SHARE = 0.1  # a chosen number in the outer tenth of a sampled range (log scale for log_uniform) is at its edge


def dimension(where: str, key: str, value, error: type[ConfigError] = ConfigError, listed=LISTED) -> dict:
    """One dimension of a space checked: ``{"choices": [...]}`` (a list; one value: fixed) or ``{kind: [low, high]}``
    (``kind`` in DISTRIBUTIONS); a key of ``listed`` takes choices only."""
    if isinstance(value, list):
        if not value:
            raise error(f"{where}.{key}: give at least one choice")
        return {"choices": value}
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS:
        (kind, bounds), = value.items()  # fmt: skip
        ok = (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
            and bounds[0] < bounds[1]
            and (kind != "log_uniform" or bounds[0] > 0)
        )
        if not ok:
            raise error(f"{where}.{key}: {kind} needs [low, high] with low < high (and > 0 for log)")
        if key in listed:
            raise error(f"{where}.{key}: give the choices as a list (it is not a number to sample)")
        return {kind: [float(b) for b in bounds]}
    return {"choices": [value]}  # one value: fixed


def sampler(spec: dict, grid: bool):
    """Ray Tune's distribution for one checked dimension (``grid``: every choice, for the grid searcher)."""
    from ray import tune

    if "choices" in spec:
        return tune.grid_search(spec["choices"]) if grid else tune.choice(spec["choices"])
    lo, hi = spec.get("uniform") or spec["log_uniform"]
    return tune.uniform(lo, hi) if "uniform" in spec else tune.loguniform(lo, hi)


def at_edge(spec: dict, value) -> bool:
    """Whether a chosen value lies at its dimension's edge, where the best may lie outside what was searched: the
    outer EDGE_SHARE of a sampled range (on a log scale for log_uniform), or the least / greatest of two or more
    numeric choices."""
    if "choices" in spec:
        nums = [c for c in spec["choices"] if isinstance(c, (int, float)) and not isinstance(c, bool)]
        return len(set(nums)) > 1 and value in (min(nums), max(nums))
    lo, hi = spec.get("uniform") or spec["log_uniform"]
    if "log_uniform" in spec:
        lo, hi, value = math.log(lo), math.log(hi), math.log(float(value))
    share = (float(value) - lo) / (hi - lo)
    return share <= EDGE_SHARE or share >= 1 - EDGE_SHARE


def overrides(config: dict) -> dict:
    """A trial's sampled engine training arguments (its input size included): its Tune config less the fixed parts."""
    return {k: v for k, v in config.items() if not k.startswith("_") and k != "arch"}


def trial_id(result) -> str:
    """A trial's id (its folder under ``<folder>/trials``) from its Tune result."""
    return (result.metrics or {}).get("trial_id") or Path(result.path).name


def trial_cost(run_dir: Path) -> dict:
    """``{cpu_s, wall_s}`` a trial's trainer process spent, over its resumes (zeros before it began)."""
    f = Path(run_dir) / TRIAL_COST
    return json.loads(f.read_text()) if f.is_file() else {"cpu_s": 0.0, "wall_s": 0.0}


@contextlib.contextmanager
def _costed(run_dir: Path):
    """Add this block's CPU time (this process, every thread) and wall time to the run's TRIAL_COST."""
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        yield
    finally:
        if run_dir.is_dir():
            before = trial_cost(run_dir)
            spent = {"cpu_s": before["cpu_s"] + time.process_time() - c0,
                     "wall_s": before["wall_s"] + time.perf_counter() - w0}  # fmt: skip
            (run_dir / TRIAL_COST).write_text(json.dumps(spent) + "\n")


def trainable(config: dict) -> None:
    """One trial (in a Ray worker): train ``_yaml`` on ``_data`` with ``_budget`` and the sampled arguments into
    ``<_out>/trials/<trial id>``, or resume that trial's unfinished run."""
    from ray import tune

    from lwdet.artifacts import last_weights
    from lwdet.training import train

    warnings.filterwarnings("ignore", message=".*get_trial_id.*", category=UserWarning)
    run_dir = Path(config["_out"]) / TRIALS / tune.get_context().get_trial_id()
    resume = last_weights(run_dir).is_file()  # a restored experiment: Tune runs only the trials that had not finished
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)  # begun, not one epoch saved: start again
    with _costed(run_dir):
        if resume:
            LOGGER.info("%s: resuming %s", run_dir.name, last_weights(run_dir))
            train(config["_yaml"], config["_data"], run_dir, resume=True,
                  **{k: config["_budget"][k] for k in ("device",) if k in config["_budget"]})  # fmt: skip
        else:
            train(config["_yaml"], config["_data"], run_dir, **{**config["_budget"], **overrides(config)})


def pin_datasets(data) -> None:
    """Build the dataset here, once, and make every trial find it: Tune runs each trial in its own working folder,
    where a shipped data YAML's dataset (``./datasets`` by default, ``lwdet.cfg.datasets_root``) would be missing and
    rebuilt by each trial (seen: two trials deadlocked forking the builder's pool inside Ray's runner thread). The
    workers of a local Ray inherit this environment variable; on a cluster, set it on every node (docs/search.md)."""
    import os

    from lwdet.cfg import DATASETS_ENV, datasets_root
    from lwdet.data import ensure_dataset

    os.environ.setdefault(DATASETS_ENV, str(datasets_root()))
    ensure_dataset(data)


def run_tune(
    folder: Path,
    space: dict,
    *,
    metric: str,
    max_t: int,
    asha: dict,
    trials: int,
    searcher: str,
    seed: int,
    resources: dict,
):
    """Fit (or restore and finish) the Tune experiment of ``space`` (Ray Tune's param_space: the samplers and the
    fixed ``_yaml``, ``_data``, ``_budget``; ``_out`` is set here) in ``<folder>/tune``; returns (its ResultGrid,
    whether Ctrl-C stopped it). ``metric``: a key of METRICS; ``resources``: a trial's {cpu, gpu}."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    storage = Path(folder).resolve() / "tune"
    path = storage / EXPERIMENT
    fn = tune.with_resources(trainable, {k: float(v) for k, v in resources.items()})
    if tune.Tuner.can_restore(str(path)):
        LOGGER.info("resuming the search at %s", path)
        tuner = tune.Tuner.restore(str(path), trainable=fn, resume_unfinished=True, resume_errored=True)
    else:
        scheduler = ASHAScheduler(
            time_attr="epoch",
            metric=METRICS[metric],
            mode="max",
            max_t=int(max_t),
            grace_period=int(asha["grace_period"]),
            reduction_factor=float(asha["reduction_factor"]),
        )
        tuner = tune.Tuner(
            fn,
            param_space={**space, "_out": str(Path(folder).resolve())},
            tune_config=tune.TuneConfig(
                scheduler=scheduler,
                num_samples=1 if searcher == "grid" else int(trials),
                search_alg=tune.search.BasicVariantGenerator(random_state=int(seed)),
            ),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(storage), verbose=1),
        )
    before = signal.getsignal(signal.SIGINT)
    grid = tuner.fit()
    # Tune's Ctrl-C handler puts the previous handler back when it fires and stays installed otherwise: a handler
    # other than Tune's after fit() means the run was interrupted (the experiment state is saved; restore resumes)
    handler = signal.getsignal(signal.SIGINT)
    if before is not None:  # put the one before fit() back: Ctrl-C in what follows stops the experiment
        with contextlib.suppress(ValueError):  # not the main thread: nothing was installed there
            signal.signal(signal.SIGINT, before)
    return grid, getattr(handler, "__name__", "") != "signal_interrupt_tune_run"


def unfinished(grid) -> int:
    """The trials of a ResultGrid neither finished nor failed (a run stopped early by Ctrl-C)."""
    return len(grid) - grid.num_terminated - grid.num_errors
