"""A search config (YAML): the space, the latency budget, the training budget; strict keys, defaults, paths resolved.

    name: search-fast
    data: datasets/fmnist-bench-s.yaml
    out: runs/search-fast
    budget: {epochs: 50, imgsz: 160, batch: 16, device: cpu, workers: 2, seed: 0}   # a trial's most epochs
    space:
      backbone: [repghostnet_050, lcnet_050, mobilenetv4_conv_small_050]   # lwdet's registry
      neck: [lite, p45]
      head: [slim]
      lr0: {log_uniform: [0.003, 0.03]}
      scale: [0.3, 0.5]                 # an engine augmentation strength
    max_latency: 0.5x yolov5n           # or: pi5-t4 <= 15 ms (projected from the peers timed in the same pass)
    trials: 8
    asha: {grace_period: 10, reduction_factor: 3}
    reseed: {top: 3, seeds: 2}          # the best 3 trained again on 2 fresh seeds, the winner by test mean

Paths follow the experiment config's rules (``lwdet.experiment.config``): inputs beside the config, outputs under the
working folder, all made absolute.
"""

from __future__ import annotations

import re
from pathlib import Path

from lwdet.errors import ConfigError
from lwdet.experiment.config import header, read_mapping
from lwdet.experiment.config import strict as _strict

SEARCH_KEYS = {"name", "data", "out", "report", "budget", "space", "max_latency", "trials", "searcher", "asha", "ray",
               "bench", "reseed"}  # fmt: skip
ARCH_KEYS = ("backbone", "neck", "head", "rep")  # one exported graph per combination (and per imgsz)
# engine training arguments a space may vary besides the architecture: the input size, the learning rate and the
# augmentation strengths
TRAIN_KEYS = ("imgsz", "lr0", "scale", "mosaic", "mixup", "translate", "degrees", "hsv_h", "hsv_s", "hsv_v", "fliplr")
SPACE_KEYS = (*ARCH_KEYS, *TRAIN_KEYS)
DISTRIBUTIONS = ("uniform", "log_uniform")  # {uniform: [low, high]} / {log_uniform: [low, high]}; a list: choices
SEARCHERS = ("random", "grid")  # Ray Tune's BasicVariantGenerator: sampled, or every combination (nothing to install)
ASHA_DEFAULTS = {"grace_period": 10, "reduction_factor": 3}
RAY_DEFAULTS = {"address": "local", "cpus_per_trial": 1, "gpus_per_trial": 0, "num_cpus": None, "object_store_mb": 100}
# the search's best `top` configurations trained again on `seeds` fresh seeds each, scored on the test split
RESEED_DEFAULTS = {"top": 3, "seeds": 2}
BENCH_DEFAULTS = {"threads": [1, 2], "loops": 30, "warmup": 5, "passes": 3, "peers": "../shared/peers/ncnn"}
RATIO = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*x\s+(\S+)\s*$")  # 0.5x yolov5n
BOARD = re.compile(r"^\s*(pi[45]-t[14])\s*<=\s*([0-9]*\.?[0-9]+)\s*ms\s*$")  # pi5-t4 <= 15 ms


class SearchConfigError(ConfigError):
    """A search config is wrong; the message names the file and the key."""


def strict(section: str, got: dict, allowed) -> None:
    """Unknown keys refused with a "did you mean" (``lwdet.experiment.config.strict``), as a SearchConfigError."""
    _strict(section, got, allowed, SearchConfigError)


def _choices(where: str, key: str, value) -> dict:
    if isinstance(value, list):
        if not value:
            raise SearchConfigError(f"{where}.{key}: give at least one choice")
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
            raise SearchConfigError(f"{where}.{key}: {kind} needs [low, high] with low < high (and > 0 for log)")
        if key in ARCH_KEYS or key == "imgsz":
            raise SearchConfigError(f"{where}.{key}: give the choices as a list (it is not a number to sample)")
        return {kind: [float(b) for b in bounds]}
    return {"choices": [value]}  # one value: fixed


def parse_budget(where: str, text) -> dict:
    """``0.5x yolov5n`` -> {kind: ratio, value, reference}; ``pi5-t4 <= 15 ms`` -> {kind: board, target, ms}."""
    if m := RATIO.match(str(text)):
        return {"kind": "ratio", "value": float(m.group(1)), "reference": m.group(2), "text": str(text)}
    if m := BOARD.match(str(text)):
        return {"kind": "board", "target": m.group(1), "ms": float(m.group(2)), "text": str(text)}
    raise SearchConfigError(
        f"{where}: max_latency {text!r} is neither a ratio to a reference ('0.5x yolov5n') nor a projected board "
        "figure ('pi5-t4 <= 15 ms'; boards pi4-t1, pi4-t4, pi5-t4)"
    )


def load_search(path: str | Path) -> dict:
    """The search config with defaults filled in and checked."""
    path = Path(path)
    raw = read_mapping(path, "search", SEARCH_KEYS, SearchConfigError)
    for key in ("space", "max_latency"):
        if key not in raw:
            raise SearchConfigError(f"{path}: '{key}' is required")
    for key in ("space", "budget", "asha", "ray", "bench", "reseed"):
        if not isinstance(raw.get(key) or {}, dict):
            raise SearchConfigError(f"{path}: '{key}' must be a mapping")
    strict(f"{path}: space", raw["space"], SPACE_KEYS)
    strict(f"{path}: asha", raw.get("asha") or {}, ASHA_DEFAULTS)
    strict(f"{path}: ray", raw.get("ray") or {}, RAY_DEFAULTS)
    strict(f"{path}: bench", raw.get("bench") or {}, BENCH_DEFAULTS)
    strict(f"{path}: reseed", raw.get("reseed") or {}, RESEED_DEFAULTS)
    if "backbone" not in raw["space"]:
        raise SearchConfigError(f"{path}: space.backbone is required (a list of lwdet backbones)")
    space = {k: _choices(f"{path}: space", k, v) for k, v in raw["space"].items()}
    space.setdefault("neck", {"choices": ["lite"]})
    space.setdefault("head", {"choices": ["slim"]})
    space.setdefault("rep", {"choices": [False]})
    head = header(path, raw, BENCH_DEFAULTS)
    budget = head["budget"]
    space.setdefault("imgsz", {"choices": [int(budget["imgsz"])]})
    from lwdet.models import model_yaml

    for b in space["backbone"]["choices"]:
        for n in space["neck"]["choices"]:
            for h in space["head"]["choices"]:
                for r in space["rep"]["choices"]:
                    try:
                        model_yaml(str(b), str(n), str(h), bool(r))
                    except (ValueError, FileNotFoundError) as e:
                        raise SearchConfigError(f"{path}: space: {e}") from None
    trials = raw.get("trials", 8)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise SearchConfigError(f"{path}: trials must be a whole number >= 1, got {trials!r}")
    searcher = raw.get("searcher", "random")
    if searcher not in SEARCHERS:
        raise SearchConfigError(f"{path}: searcher must be one of {', '.join(SEARCHERS)}, got {searcher!r}")
    asha = {**ASHA_DEFAULTS, **(raw.get("asha") or {})}
    if not 1 <= int(asha["grace_period"]) <= int(budget["epochs"]) or float(asha["reduction_factor"]) < 2:
        raise SearchConfigError(f"{path}: asha needs 1 <= grace_period <= budget.epochs and reduction_factor >= 2")
    reseed = {**RESEED_DEFAULTS, **(raw.get("reseed") or {})}
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in reseed.values()):
        raise SearchConfigError(f"{path}: reseed.top and reseed.seeds must be whole numbers >= 0, got {reseed}")
    return {
        **head,
        "space": space,
        "max_latency": parse_budget(str(path), raw["max_latency"]),
        "trials": trials,
        "searcher": searcher,
        "asha": asha,
        "ray": {**RAY_DEFAULTS, **(raw.get("ray") or {})},
        "reseed": reseed,
    }
