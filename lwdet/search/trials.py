"""The feasible candidates trained under Ray Tune's ASHA (``lwdet.experiment.tuning``, the machinery a study's
``tune:`` section runs too): the search's space is its feasible architectures and its training arguments.

Each trial trains one sampled configuration (an architecture that passed the latency screen, and the space's training
arguments) into ``<out>/trials/<trial id>``; ASHA (the config's ``metric``: val mAP50-95 or mAP50, ``max_t`` = the
budget's epochs) stops the weak trials at its rungs. The experiment lives in ``<out>/tune``; a search killed or
interrupted resumes with ``Tuner.restore``, and a trial that had begun resumes its ``last.pt``.
"""

from __future__ import annotations

from lwdet.experiment.tuning import EXPERIMENT, overrides, run_tune, sampler, trial_id

__all__ = ["EXPERIMENT", "overrides", "param_space", "run_trials", "trial_id"]


def param_space(cfg: dict, feasible: list[dict]) -> dict:
    """Ray Tune's space: the feasible architectures and the space's training arguments."""
    from ray import tune

    grid = cfg["searcher"] == "grid"
    archs = [c["arch"] for c in feasible]
    space = {
        k: sampler(v, grid) for k, v in cfg["space"].items() if k not in ("backbone", "neck", "head", "rep", "imgsz")
    }
    space["arch"] = tune.grid_search(archs) if grid else tune.choice(archs)
    by_arch = {c["arch"]: c for c in feasible}
    # the arch's YAML and input size follow from its name; paths are absolute
    space["_yaml"] = tune.sample_from(lambda spec: by_arch[spec.config["arch"]]["yaml"])
    space["imgsz"] = tune.sample_from(lambda spec: int(by_arch[spec.config["arch"]]["imgsz"]))
    budget = {k: v for k, v in cfg["budget"].items() if k != "imgsz"}
    space.update(_data=str(cfg["data"]), _budget=budget)
    return space


def run_trials(cfg: dict, feasible: list[dict]):
    """Fit (or restore and finish) the search's Tune experiment; returns (its ResultGrid, whether Ctrl-C stopped it)."""
    r = cfg["ray"]
    return run_tune(
        cfg["out"],
        param_space(cfg, feasible),
        metric=cfg["metric"],
        max_t=int(cfg["budget"]["epochs"]),
        asha=cfg["asha"],
        trials=int(cfg["trials"]),
        searcher=cfg["searcher"],
        seed=int(cfg["budget"]["seed"]),
        resources={"cpu": r["cpus_per_trial"], "gpu": r["gpus_per_trial"]},
    )
