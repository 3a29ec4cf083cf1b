"""Equal tuning for every row: a study's ``tune:`` section gives each detector row the same search on the val split
before its runs train (issue 35: a verdict from one side's tuned recipe is not one a user can trust).

    tune:
      space: {lr0: {log_uniform: [0.003, 0.03]}, nbs: [16, 64]}   # engine training arguments (not imgsz)
      trials: 6                                                   # per row, the same for every row
      asha: {grace_period: 10, reduction_factor: 3}
      metric: map5095                                             # the val metric the configuration is chosen by

Per row (its first run's name ``<row>``), before any of its runs train:

1. Ray Tune trains ``trials`` configurations of the space under ASHA (``lwdet.experiment.tuning``, the search's trial
   machinery) into ``<out>/tune/<row>/trials/<trial id>``, each with the row's model, the budget, the row's own
   ``train`` arguments and the sampled ones, the budget's seed, on the train split, ranked on val. The searcher's draws
   are seeded (``tune.seed``, the budget's by default): every row is offered the same configurations.
2. The chosen configuration is the best trial on the val ``metric`` among those that ran every epoch (none did: among
   all), written to ``<out>/tune/<row>/chosen.json`` with its cost: trials, epochs trained in all, the trainers' CPU
   time, and the dimensions whose chosen value lies at the space's edge (the best may lie outside: widen it).
3. The row's runs (its seeds) train with the chosen arguments on top of their own, and the study scores them as every
   row: val, and the test split when the data has one. ``results.csv`` records the chosen arguments (``tuned``; the
   ``train`` column has them too) and the tuning's cost (``tune_trials``, ``tune_epochs``, ``tune_cpu_s``,
   ``tune_edge``) on every run of the row.

Resumable: a row with its ``chosen.json`` is not tuned again; an interrupted tuning resumes its Tune experiment.
Several study processes sharing the config tune a row once (a lock per row). Tune runs on the Ray the study runs its
rows on (``--ray``), else on a local Ray started for the tuning (the config's ``ray`` section, if any, caps it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lwdet.experiment.table import claim, train_text
from lwdet.experiment.tuning import (
    METRICS,
    TRIALS,
    at_edge,
    overrides,
    run_tune,
    sampler,
    trial_cost,
    trial_id,
    unfinished,
)
from lwdet.study.config import StudyConfigError

LOGGER = logging.getLogger(__name__)

FOLDER = "tune"  # <out>/tune/<row>: a row's tuning (its Tune experiment, its trials' run folders, chosen.json)
CHOSEN = "chosen.json"


def row_names(runs: list[dict]) -> dict[int, str]:
    """Each detector row's name: its first run's (the one with the budget's seed)."""
    names: dict[int, str] = {}
    for r in runs:
        names.setdefault(r["row"], r["name"])
    return names


def folder(cfg: dict, name: str) -> Path:
    return Path(cfg["out"]) / FOLDER / name


def read_chosen(cfg: dict, name: str) -> dict | None:
    f = folder(cfg, name) / CHOSEN
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None


def param_space(cfg: dict, run: dict) -> dict:
    """Ray Tune's space for one row: the tuned arguments' samplers, the row's model, the data, the budget with the
    row's own arguments and the budget's seed."""
    t = cfg["tune"]
    grid = t["searcher"] == "grid"
    budget = {**cfg["budget"], **(run.get("train") or {}), "epochs": t["epochs"], "seed": int(cfg["budget"]["seed"])}
    return {
        **{k: sampler(v, grid) for k, v in t["space"].items()},
        "_yaml": str(run["yaml"]),
        "_data": str(cfg["data"]),
        "_budget": budget,
    }


def choose(cfg: dict, name: str, grid) -> dict:
    """The chosen configuration of a finished tuning (see the module docstring) with its cost and its trials."""
    t = cfg["tune"]
    key = METRICS[t["metric"]]
    trials = []
    for res in grid:
        m, c = res.metrics or {}, res.config or {}
        if not c:  # never started
            continue
        tid = trial_id(res)
        cost = trial_cost(folder(cfg, name) / TRIALS / tid)
        trials.append(
            {
                "trial": tid,
                "config": overrides(c),
                "epochs": int(m.get("epoch") or 0),
                t["metric"]: m.get(key),
                "cpu_s": round(cost["cpu_s"], 1),
                "wall_s": round(cost["wall_s"], 1),
                "error": str(res.error).strip().splitlines()[0] if res.error else "",
            }
        )
    scored = [x for x in trials if x[t["metric"]] is not None and not x["error"]]
    if not scored:
        raise StudyConfigError(f"{name}: no trial of its tuning reported a val {t['metric']}: see {folder(cfg, name)}")
    finished = [x for x in scored if x["epochs"] >= t["epochs"]]
    best = max(finished or scored, key=lambda x: float(x[t["metric"]]))
    edge = [k for k, spec in t["space"].items() if at_edge(spec, best["config"][k])]
    for k in edge:
        LOGGER.warning("%s: the chosen %s=%s lies at the edge of tune.space.%s %s: the best may lie outside it",
                       name, k, best["config"][k], k, next(iter(t["space"][k].values())))  # fmt: skip
    return {
        "row": name,
        "chosen": best["config"],
        "trial": best["trial"],
        "metric": t["metric"],
        "split": "val",
        f"val_{t['metric']}": best[t["metric"]],
        "finished_all_epochs": bool(finished),
        "edge": edge,
        "trials": len(trials),
        "epochs": sum(x["epochs"] for x in trials),
        "cpu_s": round(sum(x["cpu_s"] for x in trials), 1),
        "wall_s": round(sum(x["wall_s"] for x in trials), 1),
        "space": t["space"],
        "asha": t["asha"],
        "trial_epochs": t["epochs"],
        "seed": t["seed"],
        "all": trials,
    }


def tune_row(cfg: dict, run: dict, resources: dict) -> dict:
    """A row's chosen configuration: read, or tuned now (under the row's lock: one study process tunes it)."""
    name = run["name"]
    with claim(Path(cfg["out"]) / f".tune-{name}.lock", wait=True):
        if (done := read_chosen(cfg, name)) is not None:
            return done
        t = cfg["tune"]
        LOGGER.info("%s: tuning %s over %d trials of %d epochs (ASHA, val %s)", name, ", ".join(t["space"]),
                    t["trials"], t["epochs"], t["metric"])  # fmt: skip
        grid, interrupted = run_tune(
            folder(cfg, name),
            param_space(cfg, run),
            metric=t["metric"],
            max_t=t["epochs"],
            asha=t["asha"],
            trials=t["trials"],
            searcher=t["searcher"],
            seed=t["seed"],
            resources=resources,
        )
        if interrupted or unfinished(grid):
            LOGGER.warning("%s: %d trials unfinished; the tuning is saved at %s", name, unfinished(grid),
                           folder(cfg, name))  # fmt: skip
            raise KeyboardInterrupt
        chosen = choose(cfg, name, grid)
        f = folder(cfg, name) / CHOSEN
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps(chosen, indent=1) + "\n", encoding="utf-8")
        tmp.replace(f)
        LOGGER.info("%s: chose %s (val %s %.4f; %d trials, %d epochs, %.0f CPU s)", name, train_text(chosen["chosen"]),
                    t["metric"], float(chosen[f"val_{t['metric']}"]), chosen["trials"], chosen["epochs"],
                    chosen["cpu_s"])  # fmt: skip
        return chosen


def columns(chosen: dict) -> dict:
    """The results columns a tuned row's runs carry."""
    return {
        "tuned": train_text(chosen["chosen"]),
        "tune_trials": chosen["trials"],
        "tune_epochs": chosen["epochs"],
        "tune_cpu_s": chosen["cpu_s"],
        "tune_edge": " ".join(chosen["edge"]),
    }


def apply(runs: list[dict], chosen: dict[int, dict]) -> list[dict]:
    """The runs with their row's chosen arguments on top of their own (``train``) and its ``tune`` record."""
    out = []
    for r in runs:
        c = chosen.get(r["row"])
        out.append({**r, "train": {**(r.get("train") or {}), **c["chosen"]}, "tune": columns(c)} if c else r)
    return out


def tune_study(cfg: dict, runs: list[dict], todo: list[dict], ray_section: dict, connected: bool = False) -> list[dict]:
    """Tune every row with a run in ``todo`` not tuned yet (rows tuned earlier are read), on the Ray this process is
    connected to (``connected``), else on one started here and shut down after; returns ``runs`` with the chosen
    configurations applied (``apply``). A study without a ``tune`` section: ``runs`` unchanged."""
    if not cfg.get("tune"):
        return runs
    names = row_names(runs)
    first = {r["row"]: r for r in runs if r["name"] == names[r["row"]]}
    chosen = {i: c for i, n in names.items() if (c := read_chosen(cfg, n)) is not None}
    rows = sorted({r["row"] for r in todo} - set(chosen))
    if rows:
        from lwdet.experiment.cluster import connect, import_ray
        from lwdet.experiment.tuning import pin_datasets

        ray = import_ray()
        pin_datasets(cfg["data"])  # before Ray starts: its workers inherit the datasets folder
        mine = False if connected else connect(ray, ray_section["address"], ray_section, StudyConfigError)
        resources = {"cpu": ray_section.get("cpus_per_row", 1), "gpu": ray_section.get("gpus_per_row", 0)}
        try:
            for i in rows:
                chosen[i] = tune_row(cfg, first[i], resources)
        finally:
            if mine:
                ray.shutdown()
    return apply(runs, chosen)
