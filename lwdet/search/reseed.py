"""No winner's curse: the search's best configurations trained again on fresh seeds and scored on the test split.

ASHA ranks the trials on val mAP50-95, one seed each; the best of many noisy draws, read on the split that picked it,
is biased upward (issue 35: search-fast's two best lost ~0.02 mAP50-95 on a fresh seed). So a search ends here:

1. its ``reseed.top`` best trials (val mAP50-95, or the config's ``metric``, among those that ran every epoch:
   ``ranked``) are its candidates;
2. each candidate's configuration (architecture, input size, the sampled training arguments; the full budget of
   epochs, no ASHA) trains again with ``reseed.seeds`` fresh seeds, the budget's seed + 1, + 2, ... (``fresh_seeds``),
   one Ray task per run with the trial's resources, into ``<out>/reseed/<trial>-seed<N>``;
3. every run of a candidate, the trial's own included, is scored by the engine's validator on the data's **test**
   split (its best.pt, as ``lwdet.study`` scores a row's test split), and the winner is the candidate with the best
   mean over its runs (``judge``).

Every re-seeded run is a row of the search's results table, named ``<trial's row>-seed<N>`` (the report groups it
with its trial as a repeat seed), with the trial's ``trial`` and the study's ``seed`` and ``test_*`` columns; its val
columns are its last epoch's, as a trial's row reads. A data YAML without a test split: one line says so, and the
candidates are compared on val (each run's last epoch's val mAP50-95), flagged in winner.json (``split: val``).

Resumable: a run's score is kept in ``<run>/test_score.json``, so a rerun trains and scores nothing already done; a
re-seeded run that saved an epoch resumes its ``last.pt``; one begun without a checkpoint starts again.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from lwdet.experiment.scoring import evaluate
from lwdet.experiment.table import DONE, FAILED

LOGGER = logging.getLogger(__name__)

FOLDER = "reseed"  # <out>/reseed: the re-seeded runs and the engine's data YAML they are scored with
SCORE = "test_score.json"  # in a scored run's folder: the split, the scores, when and where
SCORE_KEYS = ("precision", "recall", "map50", "map5095", "f1")
LAST_EPOCH = {  # a run's last epoch in the engine's epoch log -> the row's val columns (what a trial's row reads)
    "map50": "metrics/mAP50(B)",
    "map5095": "metrics/mAP50-95(B)",
    "precision": "metrics/precision(B)",
    "recall": "metrics/recall(B)",
}


def _num(v) -> float | None:
    """A table cell as a number (None when empty or not a number): rows in memory and rows read back as text."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _flag(v) -> bool:
    return v is True or str(v).strip().lower() == "true"


def fresh_seeds(cfg: dict) -> list[int]:
    """The seeds a candidate trains again with: the budget's seed (its trial's) + 1, + 2, ..."""
    s = int(cfg["budget"]["seed"])
    return [s + i for i in range(1, int(cfg["reseed"]["seeds"]) + 1)]


def ranked(rows: list[dict], key: str = "map5095") -> list[dict]:
    """The trials' rows best val ``key`` (the search's ``metric``: map5095 or map50) first: those that ran every
    epoch, else (none did) every row with a val figure. The search's winner on val is the first; its candidates for
    re-seeding, the first ``reseed.top``."""
    scored = [r for r in rows if _num(r.get(key)) is not None]
    finished = [r for r in scored if r.get("status") == DONE and not _flag(r.get("stopped_early"))]
    return sorted(finished or scored, key=lambda r: -float(r[key]))


def judge(rows: list[dict], trials: list[str], split: str, key: str = "map5095") -> list[dict]:
    """Each candidate trial's runs in ``rows`` (its own and its re-seeded ones: the rows whose ``trial`` it is) and
    their mean of ``key`` on ``split`` (test: ``test_map5095``; val: ``map5095``), best mean first: the winner is the
    first.

    Runs that failed or have no score are left out of the mean (and named in the log); a candidate without any
    scored run is left out."""
    column = f"test_{key}" if split == "test" else key
    out = []
    for t in trials:
        runs = [r for r in rows if str(r.get("trial")) == str(t)]
        good = sorted((r for r in runs if r.get("status") == DONE and _num(r.get(column)) is not None),
                      key=lambda r: int(float(r["seed"])))  # fmt: skip
        if len(good) < len(runs):
            LOGGER.warning("%s: %d of its %d runs have no %s score (failed?); its mean is over %d", t,
                           len(runs) - len(good), len(runs), column, len(good))  # fmt: skip
        if good:
            scores = [float(r[column]) for r in good]
            out.append({"trial": str(t), "seeds": [int(float(r["seed"])) for r in good], "scores": scores,
                        "mean": sum(scores) / len(scores)})  # fmt: skip
    return sorted(out, key=lambda c: -c["mean"])


def split_of(engine_data: Path) -> str:
    """The split the candidates are scored on: test when the engine's data YAML names one, else val (said in one
    line)."""
    import yaml

    data = yaml.safe_load(Path(engine_data).read_text(encoding="utf-8")) or {}
    if data.get("test"):
        return "test"
    LOGGER.warning("the data has no test split: the re-seeded candidates are compared on val (flagged in winner.json)")
    return "val"


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")


def run_one(job: dict) -> dict:
    """One run (in a Ray worker): a re-seeded one trains (or resumes) first; then best.pt is scored on the split.
    Returns what ``<run>/test_score.json`` keeps; a run scored already on that split is not touched."""
    import warnings

    from lwdet.artifacts import best_weights, last_weights

    warnings.filterwarnings("ignore", message=".*get_trial_id.*", category=UserWarning)  # the engine's Tune callback
    run_dir, split = Path(job["run_dir"]), job["split"]
    marker = run_dir / SCORE
    kept = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None
    if kept and kept.get("split") == split:
        return kept
    t0 = time.time()
    if job.get("train") is not None and kept is None:  # a re-seeded run: its marker says it trained
        from lwdet.training import train

        if last_weights(run_dir).is_file():
            LOGGER.info("%s: resuming %s", run_dir.name, last_weights(run_dir))
            try:
                train(job["yaml"], job["data"], run_dir, resume=True, device=job["train"].get("device", "cpu"))
            except ValueError as e:  # it had finished its epochs; not yet scored
                if "nothing to resume" not in str(e):
                    raise
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)  # begun, not one epoch saved: start again (as a trial does)
            LOGGER.info("%s: training seed %s", run_dir.name, job["train"]["seed"])
            train(job["yaml"], job["data"], run_dir, **job["train"])
    best = best_weights(run_dir)
    if not best.is_file():
        raise RuntimeError(f"{run_dir}: no weights/best.pt to score")
    scores = (
        evaluate(best, Path(job["engine_data"]), split, job["budget"], imgsz=job["imgsz"]) if split == "test" else {}
    )
    kept = {"split": split, "seed": job["seed"], **scores, "started": (kept or {}).get("started") or _utc(t0),
            "finished": _utc(time.time()), "node": platform.node()}  # fmt: skip
    tmp = marker.with_name(f".{SCORE}.tmp")
    tmp.write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
    tmp.replace(marker)
    return kept


def last_epoch(run_dir: Path) -> dict:
    """A run's val columns from its last epoch in the engine's epoch log (as a trial's row reads its last report),
    and how many epochs it ran."""
    from lwdet.artifacts import RESULTS_CSV
    from lwdet.report.rows import read_results

    path = Path(run_dir) / RESULTS_CSV
    if not path.is_file():
        return {}
    cols = read_results(path)
    row = {k: (cols.get(c) or [None])[-1] for k, c in LAST_EPOCH.items()}
    p, r = row["precision"], row["recall"]
    row["f1"] = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None
    epochs = [e for e in cols.get("epoch") or [] if e == e]
    row["epochs"] = int(max(epochs)) if epochs else 0  # not the row count: a resumed run may repeat an epoch's row
    return row


def reseed_row(trial_row: dict, run_dir: Path, seed: int) -> dict:
    """A re-seeded run's row: its trial's identity (architecture, training arguments, screened latency), this seed,
    its own folder; no status until it has run."""
    return {**{k: v for k, v in trial_row.items() if not k.startswith("test_")}, **dict.fromkeys(SCORE_KEYS),
            "model": f"{trial_row['model']}-seed{seed}", "seed": seed, "run_dir": str(run_dir), "status": None,
            "error": "", "stopped_early": False, "started": None, "finished": None, "node": None}  # fmt: skip


def _finish(row: dict, job: dict, kept: dict) -> dict:
    """A run's row once it has run and been scored: a re-seeded run's val columns and time span read from its folder
    and marker; the score (test_* columns when on test)."""
    if job.get("train") is not None:
        span = {k: kept.get(k) for k in ("started", "finished", "node")}
        row = {**row, **last_epoch(Path(job["run_dir"])), **span, "status": DONE, "error": ""}
    if kept.get("split") == "test":
        row = {**row, **{f"test_{k}": kept.get(k) for k in SCORE_KEYS}}
    return row


def _kept(job: dict) -> dict | None:
    """A run's marker when it was scored on the job's split already."""
    marker = Path(job["run_dir"]) / SCORE
    kept = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None
    return kept if kept and kept.get("split") == job["split"] else None


def _one_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e  # a Ray task's error carries the exception it raised
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def reseed(ray, cfg: dict, grid, rows: list[dict], save) -> tuple[list[dict], dict | None]:
    """Train the best ``reseed.top`` trials' configurations again on fresh seeds, score every run of them, and judge.

    ``rows``: the trials' rows (``result_rows``); ``save(rows)`` is called with the table as each run finishes.
    Returns (every row: the trials' and the re-seeded runs', the candidates' with their scores; the verdict for
    winner.json, None when ``reseed.top`` is 0 or nothing could be scored)."""
    from lwdet.data import write_engine_yaml
    from lwdet.search.trials import overrides, trial_id

    top = ranked(rows, cfg["metric"])[: int(cfg["reseed"]["top"])]
    if not top:
        return rows, None
    out = Path(cfg["out"])
    engine_data = write_engine_yaml(cfg["data"], out / FOLDER / "data.yaml")  # what every run is scored with
    split = split_of(engine_data)
    seeds = fresh_seeds(cfg)
    configs = {trial_id(res): res.config for res in grid if res.config}
    budget = cfg["budget"]
    rows = list(rows)
    jobs = []  # (row index, job)
    for t in top:
        c = configs[t["trial"]]
        base = {"split": split, "engine_data": str(engine_data), "imgsz": int(c["imgsz"]), "budget": budget}
        if split == "test":  # the trial's own run: scored only (on val it is read from its row)
            jobs.append((rows.index(t), {**base, "run_dir": t["run_dir"], "seed": int(budget["seed"])}))
        for s in seeds:
            run_dir = out / FOLDER / f"{t['trial']}-seed{s}"
            rows.append(reseed_row(t, run_dir, s))
            train = {**c["_budget"], **overrides(c), "seed": s}
            jobs.append((len(rows) - 1, {**base, "run_dir": str(run_dir), "seed": s, "yaml": c["_yaml"],
                                         "data": c["_data"], "train": train}))  # fmt: skip
    r = cfg["ray"]
    task = ray.remote(num_cpus=float(r["cpus_per_trial"]), num_gpus=float(r["gpus_per_trial"]))(run_one)
    pending = {}
    for i, job in jobs:
        if (kept := _kept(job)) is not None:
            rows[i] = _finish(rows[i], job, kept)
        else:
            pending[task.remote(job)] = (i, job)
    LOGGER.info("re-seeding the best %d configuration(s) (%s) with seed(s) %s, scored on %s: %d of %d run(s) to do",
                len(top), ", ".join(t["trial"] for t in top), ", ".join(map(str, seeds)) or "none (the trials' own)",
                split, len(pending), len(jobs))  # fmt: skip

    def ran(rows):
        return [r for r in rows if r.get("status")]

    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        i, job = pending.pop(ready[0])
        try:
            rows[i] = _finish(rows[i], job, ray.get(ready[0]))
        except Exception as e:  # a run that raised: recorded, tried again next time
            LOGGER.error("%s: %s", Path(job["run_dir"]).name, _one_line(e))
            if job.get("train") is not None:
                rows[i] = {**rows[i], "status": FAILED, "error": _one_line(e)}
            else:  # the trial trained; only its scoring failed
                rows[i] = {**rows[i], "error": f"{split} scoring: {_one_line(e)}"}
        save(ran(rows))
    rows = ran(rows)
    verdict = judge(rows, [t["trial"] for t in top], split, cfg["metric"])
    if not verdict:
        return rows, None
    return rows, {"split": split, "test_split_missing": split != "test", "candidates": verdict}
