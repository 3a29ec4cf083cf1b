"""The feasible candidates trained under Ray Tune's ASHA, as the engine's own ``model.tune(use_ray=True)`` does.

Each trial trains one sampled configuration (an architecture that passed the latency screen, and the space's training
arguments) with ``lwdet.training.train`` into ``<out>/trials/<trial id>``; the engine's Ray Tune callback
(``ultralytics/utils/callbacks/raytune.py``) reports every epoch's metrics with ``epoch``, and ASHA
(``time_attr="epoch"``, the config's ``metric``: val mAP50-95 or mAP50, ``max_t`` = the budget's epochs) stops the weak
trials at its rungs. The searcher is Ray Tune's ``BasicVariantGenerator`` (random sampling or the full grid): nothing is
installed at run time. The experiment lives in ``<out>/tune`` (absolute, so Tune's per-trial working folders change
nothing); a search killed or interrupted resumes with ``Tuner.restore``, and a trial that had begun resumes its
``last.pt``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import warnings
from pathlib import Path

from lwdet.search.config import METRICS

LOGGER = logging.getLogger(__name__)

EXPERIMENT = "search"  # <out>/tune/<EXPERIMENT>: Ray Tune's experiment folder


def overrides(config: dict) -> dict:
    """A trial's sampled engine training arguments (its input size included): its Tune config less the fixed parts."""
    return {k: v for k, v in config.items() if not k.startswith("_") and k != "arch"}


def trial_id(result) -> str:
    """A trial's id (its folder under ``<out>/trials``) from its Tune result."""
    return (result.metrics or {}).get("trial_id") or Path(result.path).name


def trainable(config: dict) -> None:
    """One trial (in a Ray worker): train, or resume this trial's unfinished run."""
    from ray import tune

    from lwdet.artifacts import last_weights
    from lwdet.training import train

    warnings.filterwarnings("ignore", message=".*get_trial_id.*", category=UserWarning)
    run_dir = Path(config["_out"]) / "trials" / tune.get_context().get_trial_id()
    resume = last_weights(run_dir).is_file()  # a restored search: Tune runs only the trials that had not finished
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)  # begun, not one epoch saved: start again
    if resume:
        LOGGER.info("%s: resuming %s", run_dir.name, last_weights(run_dir))
        train(config["_yaml"], config["_data"], run_dir, resume=True, **{k: config["_budget"][k] for k in ("device",)})
        return
    train(config["_yaml"], config["_data"], run_dir, **{**config["_budget"], **overrides(config)})


def param_space(cfg: dict, feasible: list[dict]) -> dict:
    """Ray Tune's space: the feasible architectures and the space's training arguments."""
    from ray import tune

    grid = cfg["searcher"] == "grid"

    def dist(spec: dict):
        if "choices" in spec:
            return tune.grid_search(spec["choices"]) if grid else tune.choice(spec["choices"])
        lo, hi = spec.get("uniform") or spec["log_uniform"]
        return tune.uniform(lo, hi) if "uniform" in spec else tune.loguniform(lo, hi)

    archs = [c["arch"] for c in feasible]
    space = {k: dist(v) for k, v in cfg["space"].items() if k not in ("backbone", "neck", "head", "rep", "imgsz")}
    space["arch"] = tune.grid_search(archs) if grid else tune.choice(archs)
    by_arch = {c["arch"]: c for c in feasible}
    # the arch's YAML and input size follow from its name; paths are absolute
    space["_yaml"] = tune.sample_from(lambda spec: by_arch[spec.config["arch"]]["yaml"])
    space["imgsz"] = tune.sample_from(lambda spec: int(by_arch[spec.config["arch"]]["imgsz"]))
    budget = {k: v for k, v in cfg["budget"].items() if k != "imgsz"}
    space.update(_out=str(cfg["out"]), _data=str(cfg["data"]), _budget=budget)
    return space


def run_trials(cfg: dict, feasible: list[dict]):
    """Fit (or restore and finish) the Tune experiment; returns (its ResultGrid, whether Ctrl-C stopped it)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    storage = Path(cfg["out"]) / "tune"
    path = storage / EXPERIMENT
    r = cfg["ray"]
    resources = {"cpu": float(r["cpus_per_trial"]), "gpu": float(r["gpus_per_trial"])}
    fn = tune.with_resources(trainable, resources)
    if tune.Tuner.can_restore(str(path)):
        LOGGER.info("resuming the search at %s", path)
        tuner = tune.Tuner.restore(str(path), trainable=fn, resume_unfinished=True, resume_errored=True)
    else:
        scheduler = ASHAScheduler(
            time_attr="epoch",
            metric=METRICS[cfg["metric"]],
            mode="max",
            max_t=int(cfg["budget"]["epochs"]),
            grace_period=int(cfg["asha"]["grace_period"]),
            reduction_factor=float(cfg["asha"]["reduction_factor"]),
        )
        tuner = tune.Tuner(
            fn,
            param_space=param_space(cfg, feasible),
            tune_config=tune.TuneConfig(
                scheduler=scheduler,
                num_samples=1 if cfg["searcher"] == "grid" else int(cfg["trials"]),
                search_alg=tune.search.BasicVariantGenerator(random_state=int(cfg["budget"]["seed"])),
            ),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(storage), verbose=1),
        )
    before = signal.getsignal(signal.SIGINT)
    grid = tuner.fit()
    # Tune's Ctrl-C handler puts the previous handler back when it fires and stays installed otherwise: a handler
    # other than Tune's after fit() means the run was interrupted (the experiment state is saved; restore resumes)
    handler = signal.getsignal(signal.SIGINT)
    if before is not None:  # put the one before fit() back: Ctrl-C while the re-seeded runs train stops the search
        with contextlib.suppress(ValueError):  # not the main thread: nothing was installed there
            signal.signal(signal.SIGINT, before)
    return grid, getattr(handler, "__name__", "") != "signal_interrupt_tune_run"
