"""A search config (YAML): the space, the latency budget, the training budget; strict keys, defaults, paths resolved.

    name: search-fast
    data: datasets/fmnist-bench-s.yaml
    out: runs/search-fast
    budget: {epochs: 50, imgsz: 160, batch: 16, device: cpu, workers: 2, seed: 0}   # a trial's most epochs
    space:
      backbone: [repghostnet_050, lcnet_050, mobilenetv4_conv_small_050]   # lwdet's registry
      neck: [lite, p45]
      head: [slim]                      # or per neck: {lite: slim, nano: nano, p45: [slim, nano]}
      lr0: {log_uniform: [0.003, 0.03]}
      scale: [0.3, 0.5]                 # an engine augmentation strength
    max_latency: 0.5x yolov5n           # or 1.0x yolo-fastestv2 (a peer graph of bench.peers, timed at the same
                                        # input); or pi5-t4 <= 15 ms (projected from the peers timed in the same pass)
    metric: map5095                     # what ASHA ranks and the winner is chosen by: map5095 (default) or map50
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
from lwdet.experiment.tuning import ASHA_DEFAULTS, LISTED, METRICS, SEARCHERS, TRAIN_KEYS, dimension

SEARCH_KEYS = {"name", "data", "out", "report", "budget", "space", "max_latency", "trials", "searcher", "asha", "ray",
               "bench", "reseed", "metric"}  # fmt: skip
ARCH_KEYS = ("backbone", "neck", "head", "rep")  # one exported graph per combination (and per imgsz)
SPACE_KEYS = (*ARCH_KEYS, *TRAIN_KEYS)
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
    return dimension(where, key, value, SearchConfigError, listed=(*ARCH_KEYS, *LISTED))


def _heads(where: str, value, necks: list) -> dict:
    """``space.head`` per neck (``{lite: slim, nano: nano, p45: [slim, nano]}``): not every neck ships with every head,
    so a space of several necks names each one's heads; every neck of the space needs an entry."""
    strict(f"{where}.head", value, necks)
    by_neck = {}
    for n in necks:
        heads = value.get(n)
        heads = heads if isinstance(heads, list) else [heads] if heads is not None else []
        if not heads or not all(isinstance(h, str) for h in heads):
            raise SearchConfigError(f"{where}.head: give neck '{n}' its head (a name or a list of names)")
        by_neck[n] = heads
    return {"choices": list(dict.fromkeys(h for hs in by_neck.values() for h in hs)), "by_neck": by_neck}


def architectures(space: dict) -> list[tuple]:
    """(backbone, neck, head, rep) for every architecture of a checked space: the product of the choices, heads per
    neck when ``space.head`` gives them so."""
    by_neck = space["head"].get("by_neck")
    return [
        (b, n, h, r)
        for b in space["backbone"]["choices"]
        for n in space["neck"]["choices"]
        for h in (by_neck[n] if by_neck else space["head"]["choices"])
        for r in space["rep"]["choices"]
    ]


def reference_names(bench: dict) -> tuple[list[str], list[str], dict[str, str]]:
    """What a ratio budget may name: lwdet's models (YOLOv5n, the backbone families and widths), the engine's nano
    detectors, and the peer graphs of ``bench.peers`` (name -> its .param)."""
    from lwdet.backbones import BACKBONES, FAMILIES
    from lwdet.engine_models import engine_names
    from lwdet.models import BASELINE

    peers = {}
    if bench.get("peers") and Path(bench["peers"]).is_dir():
        from lwdet.edge.bench.output import find_params

        try:
            peers = {p.stem: str(p) for p in find_params(bench["peers"])}
        except ValueError:  # a folder without .param files: no peers
            pass
    models = [BASELINE, *FAMILIES, *BACKBONES]
    engine = [n.removesuffix(".yaml") for n in engine_names() if n.removesuffix(".yaml") not in models]
    return models, engine, peers  # a name in two lists means the first: mnasnet is lwdet's, not the peer classifier


def check_reference(where: str, budget: dict, bench: dict) -> dict:
    """A ratio budget's reference checked: an lwdet model or the engine's (built with random weights in the screen),
    or a peer graph of ``bench.peers`` (the budget gets its ``peer`` .param, timed at the candidates' input)."""
    if budget["kind"] != "ratio":
        return budget
    name = budget["reference"]
    models, engine, peers = reference_names(bench)
    if name in models or name in engine:
        return budget
    if name in peers:
        return {**budget, "peer": peers[name]}
    if name.endswith((".yaml", ".yml")):  # a model YAML: a file, shipped, or the engine's
        from lwdet.model_spec import ModelConfigError
        from lwdet.models import resolve_yaml

        try:
            resolve_yaml(name)
            return budget
        except ModelConfigError:
            pass
    from lwdet.backbones import suggest

    folder = bench.get("peers") or ""
    missing = "" if folder and Path(folder).is_dir() else ": not a folder"
    peers_said = ", ".join(peers) or f"none (bench.peers {folder or 'empty'}{missing})"
    raise SearchConfigError(
        f"{where}: max_latency {budget['text']!r}: reference '{name}' is neither an lwdet model nor a peer graph"
        f"{suggest(name, [*models, *engine, *peers])} lwdet models: {', '.join(models)}; the engine's: "
        f"{', '.join(engine)}; peers: {peers_said}"
    )


def parse_budget(where: str, text) -> dict:
    """``0.5x yolov5n`` -> {kind: ratio, value, reference}; ``pi5-t4 <= 15 ms`` -> {kind: board, target, ms}
    (the syntax only: ``check_reference`` checks a ratio's reference)."""
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
    space = {k: _choices(f"{path}: space", k, v) for k, v in raw["space"].items() if k != "head"}
    space.setdefault("neck", {"choices": ["lite"]})
    if isinstance(raw["space"].get("head"), dict):
        space["head"] = _heads(f"{path}: space", raw["space"]["head"], space["neck"]["choices"])
    elif "head" in raw["space"]:
        space["head"] = _choices(f"{path}: space", "head", raw["space"]["head"])
    space.setdefault("head", {"choices": ["slim"]})
    space.setdefault("rep", {"choices": [False]})
    head = header(path, raw, BENCH_DEFAULTS)
    budget = head["budget"]
    space.setdefault("imgsz", {"choices": [int(budget["imgsz"])]})
    from lwdet.models import model_yaml

    for b, n, h, r in architectures(space):
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
    metric = raw.get("metric", "map5095")
    if metric not in METRICS:
        raise SearchConfigError(f"{path}: metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return {
        **head,
        "space": space,
        "max_latency": check_reference(str(path), parse_budget(str(path), raw["max_latency"]), head["bench"]),
        "metric": metric,
        "trials": trials,
        "searcher": searcher,
        "asha": asha,
        "ray": {**RAY_DEFAULTS, **(raw.get("ray") or {})},
        "reseed": reseed,
    }
