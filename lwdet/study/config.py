"""A study config (YAML): strict keys with "did you mean", defaults filled in, paths resolved.

Paths follow the experiment config's rules (``lwdet.experiment.config``): inputs (``data``, ``bench.peers``, a
detector's ``model`` file) beside the config file first, outputs (``out``, ``report``) under the working folder.
"""

from __future__ import annotations

from pathlib import Path

from lwdet.errors import ConfigError
from lwdet.experiment.config import header, read_mapping
from lwdet.experiment.config import strict as _strict
from lwdet.experiment.tuning import ASHA_DEFAULTS, METRICS, SEARCHERS, TRAIN_KEYS, dimension
from lwdet.hyp import HypError, engine_overrides

CONFIG_KEYS = {
    "name", "data", "out", "budget", "detectors", "baseline_seeds", "bench", "export", "report", "sliced", "ray", "tune"
}  # fmt: skip
# a detector row: {backbone, neck, head} (lwdet's parts) or {model} (a model YAML: lwdet's, or the engine's own
# name such as yolo26n.yaml); optional id (its run name), teacher (another row's id), distill_weight and seeds (more
# runs of the row with these seeds, named <id>-seed<N>, as baseline_seeds does for the first row); rep: true for the
# re-parameterizable neck and head (lwdet train --rep); resources: Ray custom resources its task needs (a study run
# on Ray: e.g. {gpu_box: 1} places the row on the node started with that resource)
DETECTOR_KEYS = {
    "backbone", "neck", "head", "rep", "model", "id", "teacher", "distill_weight", "seeds", "resources", "train"
}  # fmt: skip
# train: the engine's training arguments for this row on top of the budget (lwdet.hyp: {lr0: 0.016, scale: 0.5});
# the row's seed comes from budget.seed / seeds, its teacher from teacher / distill_weight
ROW_OWNED = {"seed": "the budget's seed and the row's seeds", "distill_model": "teacher", "dis": "distill_weight"}
# parts: lwdet.parts split timing; peers: a folder of peer .param graphs timed at the study's imgsz ("" for none)
# onnx: also export ONNX and time it in onnxruntime at 1 thread (the column onnx_ms_t1); passes: round-robin passes of
# the side-by-side timing after training (lwdet.study.timing), whose fastest loop is the study's latency
BENCH_DEFAULTS = {
    "threads": [1, 2],
    "passes": 3,
    "loops": 50,
    "warmup": 5,
    "parts": True,
    "peers": "../shared/peers/ncnn",
    "onnx": True,
}
EXPORT_DEFAULTS = {"map_check": True, "half": False}
# sliced: accuracy on full-size images, sliced vs letterbox (lwdet.sliced_eval), each row after training; images /
# labels relative to the dataset folder (labels: None = the engine's images/ -> labels/ rule); tile None = imgsz
# ray: the study's rows as Ray tasks (lwdet.study.distributed). address: "local" (a Ray started for this study on
# this machine), "auto" (the cluster `ray start` joined this machine to) or a head's host:port; each row's task asks
# for cpus_per_row CPUs and gpus_per_row GPUs; num_cpus caps a local Ray (None: every core); object_store_mb: a
# local Ray's object store in MB, 80 at least (Ray's floor; rows pass only small dicts); bench_resource: the custom
# resource of the node that times the rows after training (the driver's machine when no node has it)
RAY_DEFAULTS = {
    "address": "local",
    "cpus_per_row": 1,
    "gpus_per_row": 0,
    "num_cpus": None,
    "object_store_mb": 100,
    "bench_resource": "bench",
}
# tune: every row's training arguments tuned with the same budget on the val split before its runs train
# (lwdet.study.tune): space (engine training arguments -> a list of choices, {uniform: [lo, hi]} or
# {log_uniform: [lo, hi]}), trials per row, epochs per trial (None: the budget's), ASHA's rungs, the val metric the
# configuration is chosen by, the searcher (random: the same draws for every row; grid), the draws' seed (None: the
# budget's)
TUNE_DEFAULTS = {"space": None, "trials": 6, "epochs": None, "asha": dict(ASHA_DEFAULTS), "metric": "map5095",
                 "searcher": "random", "seed": None}  # fmt: skip
# a study compares its rows at one input size (its latency columns are timed there): imgsz is not tuned per row
TUNE_SPACE_KEYS = tuple(k for k in TRAIN_KEYS if k != "imgsz")
SLICED_DEFAULTS = {"images": "images/val-full", "labels": None, "tile": None, "overlap": 64, "full_image": False}


class StudyConfigError(ConfigError):
    """A study config is wrong; the message names the file and the key or detector row."""


def strict(section: str, got: dict, allowed) -> None:
    """Unknown keys refused with a "did you mean" (``lwdet.experiment.config.strict``), as a StudyConfigError."""
    _strict(section, got, allowed, StudyConfigError)


def _detector(path: Path, i: int, d) -> dict:
    where = f"{path}: detectors[{i}]"
    if not isinstance(d, dict) or not ({"backbone", "model"} & set(d)):
        raise StudyConfigError(f"{where} must be a mapping with 'backbone' (and 'neck', 'head') or 'model'")
    strict(where, d, DETECTOR_KEYS)
    if "model" in d and {"backbone", "neck", "head", "rep"} & set(d):
        raise StudyConfigError(f"{where}: give either 'model' or 'backbone'/'neck'/'head'/'rep', not both")
    if not isinstance(d.get("rep", False), bool):
        raise StudyConfigError(f"{where}: rep must be true or false, got {d['rep']!r}")
    if "distill_weight" in d:
        if not d.get("teacher"):
            raise StudyConfigError(f"{where}: 'distill_weight' without a 'teacher'")
        w = d["distill_weight"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w <= 0:
            raise StudyConfigError(f"{where}: distill_weight must be a positive number, got {w!r}")
    resources = d.get("resources") or {}
    if not isinstance(resources, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        for k, v in resources.items()
    ):
        raise StudyConfigError(f"{where}: resources must map Ray resource names to positive amounts, got {resources!r}")
    seeds = d.get("seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
        raise StudyConfigError(f"{where}: seeds must be a list of integers, got {seeds!r}")
    train = d.get("train") or {}
    if not isinstance(train, dict):
        raise StudyConfigError(f"{where}: train must map engine training arguments to values, got {train!r}")
    try:
        train = engine_overrides(train, where=f"{where}: train", owned=ROW_OWNED)
    except HypError as e:
        raise StudyConfigError(str(e)) from None
    row = {
        "seeds": seeds,
        "train": train,
        "resources": {str(k): float(v) for k, v in resources.items()},
        "id": str(d["id"]) if d.get("id") else None,
        "teacher": str(d["teacher"]) if d.get("teacher") else None,
        "distill_weight": float(d["distill_weight"]) if "distill_weight" in d else None,
    }
    if "model" in d:
        model = str(d["model"])
        if not model.endswith((".yaml", ".yml")):
            raise StudyConfigError(
                f"{where}: model '{model}' must be a model YAML (a file, or the engine's name such as yolo26n.yaml)"
            )
        return {**row, "model": model}
    return {
        **row,
        "backbone": str(d["backbone"]),
        "neck": str(d.get("neck", "sppf")),
        "head": str(d.get("head", "yolo")),
        "rep": d.get("rep", False),
    }


def load_config(path: str | Path) -> dict:
    """The study config with defaults filled in and paths resolved (see the module docstring)."""
    path = Path(path)
    cfg = read_mapping(path, "study", CONFIG_KEYS, StudyConfigError)
    if not cfg.get("detectors") or not isinstance(cfg["detectors"], list):
        raise StudyConfigError(f"{path}: 'detectors' must list at least one {{backbone, neck, head}} or {{model}}")
    for key in ("budget", "bench", "export"):
        if not isinstance(cfg.get(key) or {}, dict):
            raise StudyConfigError(f"{path}: '{key}' must be a mapping")
    strict(f"{path}: bench", cfg.get("bench") or {}, BENCH_DEFAULTS)
    strict(f"{path}: export", cfg.get("export") or {}, EXPORT_DEFAULTS)
    try:
        seeds = [int(s) for s in cfg.get("baseline_seeds") or []]
    except (TypeError, ValueError):
        raise StudyConfigError(f"{path}: baseline_seeds must be a list of integers") from None
    passes = {**BENCH_DEFAULTS, **(cfg.get("bench") or {})}["passes"]
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise StudyConfigError(f"{path}: bench.passes must be a whole number >= 1, got {passes!r}")
    head = header(path, cfg, BENCH_DEFAULTS)
    budget = head["budget"]
    try:  # every budget key is an engine training argument (epochs, imgsz, lr0, ...): checked as one
        engine_overrides(budget, where=f"{path}: budget", owned={k: v for k, v in ROW_OWNED.items() if k != "seed"})
    except HypError as e:
        raise StudyConfigError(str(e)) from None
    detectors = [_detector(path, i, d) for i, d in enumerate(cfg["detectors"])]
    return {
        **head,
        "detectors": detectors,
        "tune": _tune(path, cfg["tune"], budget, detectors) if cfg.get("tune") is not None else None,
        "baseline_seeds": seeds,
        "export": {**EXPORT_DEFAULTS, **(cfg.get("export") or {})},
        "sliced": _sliced(path, cfg["sliced"], budget) if cfg.get("sliced") is not None else None,
        "ray": _ray(path, cfg["ray"]) if cfg.get("ray") is not None else None,
    }


def _ray(path: Path, section) -> dict:
    """The ``ray`` section with defaults, checked (Ray itself is imported only when the study runs on it)."""
    where = f"{path}: ray"
    if not isinstance(section, dict):
        raise StudyConfigError(f"{where} must be a mapping of {', '.join(RAY_DEFAULTS)}")
    strict(where, section, RAY_DEFAULTS)
    r = {**RAY_DEFAULTS, **section}
    if not isinstance(r["address"], str) or not r["address"]:
        raise StudyConfigError(f"{where}.address must be local, auto or a head's host:port, got {r['address']!r}")
    for key, least in (("cpus_per_row", 0), ("gpus_per_row", 0), ("num_cpus", 1), ("object_store_mb", 80)):
        v = r[key]
        if (v is not None or key != "num_cpus") and (
            isinstance(v, bool) or not isinstance(v, (int, float)) or v < least
        ):
            raise StudyConfigError(f"{where}.{key} must be a number >= {least}, got {v!r}")
    return r


def _sliced(path: Path, section, budget: dict) -> dict:
    """The ``sliced`` section with defaults, checked (its folders are looked for when a row is evaluated)."""
    from lwdet.tilegrid import check_tile

    where = f"{path}: sliced"
    if not isinstance(section, dict):
        raise StudyConfigError(f"{where} must be a mapping of {', '.join(SLICED_DEFAULTS)}")
    strict(where, section, SLICED_DEFAULTS)
    s = {**SLICED_DEFAULTS, **section}
    if s["tile"] is None:
        s["tile"] = budget["imgsz"]
    for key in ("images", "labels"):
        if s[key] is not None and (not isinstance(s[key], str) or not s[key]):
            raise StudyConfigError(f"{where}.{key} must be a folder (relative to the dataset folder), got {s[key]!r}")
    for key in ("tile", "overlap"):
        if not isinstance(s[key], int) or isinstance(s[key], bool):
            raise StudyConfigError(f"{where}.{key} must be an integer number of pixels, got {s[key]!r}")
    if not isinstance(s["full_image"], bool):
        raise StudyConfigError(f"{where}.full_image must be true or false, got {s['full_image']!r}")
    try:
        check_tile(s["tile"], s["overlap"])
    except ValueError as e:
        raise StudyConfigError(f"{where}: {e}") from None
    return s


def _whole(where: str, v, least: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise StudyConfigError(f"{where} must be a whole number >= {least}, got {v!r}")
    return v


def _tune(path: Path, section, budget: dict, detectors: list[dict]) -> dict:
    """The ``tune`` section with defaults, checked: the space's dimensions, the same trials for every row, the
    rungs within the trials' epochs; no row sets a tuned argument itself or has a teacher (its trials would not)."""
    where = f"{path}: tune"
    if not isinstance(section, dict) or not isinstance(section.get("space"), dict) or not section["space"]:
        raise StudyConfigError(f"{where} must be a mapping with a 'space' of engine training arguments to tune")
    strict(where, section, TUNE_DEFAULTS)
    strict(f"{where}: space", section["space"], TUNE_SPACE_KEYS)
    if not isinstance(section.get("asha") or {}, dict):
        raise StudyConfigError(f"{where}: asha must be a mapping of {', '.join(ASHA_DEFAULTS)}")
    strict(f"{where}: asha", section.get("asha") or {}, ASHA_DEFAULTS)
    t = {**TUNE_DEFAULTS, **section, "asha": {**ASHA_DEFAULTS, **(section.get("asha") or {})}}
    from lwdet.experiment.tuning import LISTED

    space = {k: dimension(f"{where}.space", k, v, StudyConfigError, listed=LISTED) for k, v in t["space"].items()}
    _whole(f"{where}.trials", t["trials"], 1)
    epochs = _whole(f"{where}.epochs", t["epochs"] if t["epochs"] is not None else int(budget["epochs"]), 1)
    if "grace_period" not in (section.get("asha") or {}):  # the default rung, within a short tuning's epochs
        t["asha"]["grace_period"] = min(int(ASHA_DEFAULTS["grace_period"]), epochs)
    grace, factor = t["asha"]["grace_period"], t["asha"]["reduction_factor"]
    _whole(f"{where}.asha.grace_period", grace, 1)
    if grace > epochs or isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 2:
        raise StudyConfigError(f"{where}: asha needs 1 <= grace_period <= the trials' epochs ({epochs}) and "
                               f"reduction_factor >= 2, got {t['asha']}")  # fmt: skip
    if t["metric"] not in METRICS:
        raise StudyConfigError(f"{where}.metric must be one of {', '.join(METRICS)}, got {t['metric']!r}")
    if t["searcher"] not in SEARCHERS:
        raise StudyConfigError(f"{where}.searcher must be one of {', '.join(SEARCHERS)}, got {t['searcher']!r}")
    seed = _whole(f"{where}.seed", t["seed"] if t["seed"] is not None else int(budget["seed"]), 0)
    for i, d in enumerate(detectors):
        if both := sorted(set(d["train"]) & set(space)):
            raise StudyConfigError(f"{path}: detectors[{i}]: train sets {', '.join(both)}, which tune.space tunes for "
                                   "every row; remove one of them")  # fmt: skip
        if d["teacher"]:
            raise StudyConfigError(f"{path}: detectors[{i}]: a row with a teacher is not tuned (its trials would train "
                                   "without it); tune a study of the undistilled rows")  # fmt: skip
    try:  # a fixed choice's value is the engine's to check, as any training argument
        engine_overrides({k: v["choices"][0] for k, v in space.items() if "choices" in v}, where=f"{where}.space")
    except HypError as e:
        raise StudyConfigError(str(e)) from None
    return {"space": space, "trials": t["trials"], "epochs": epochs, "asha": t["asha"], "metric": t["metric"],
            "searcher": t["searcher"], "seed": seed}  # fmt: skip
