"""Reading an experiment config (YAML): strict keys with "did you mean", the budget's defaults, paths resolved.

Where relative paths point: inputs (``data``, ``bench.peers``, a model file) are looked up beside the config file
first, then in the working folder, then (``data``) among lwdet's shipped dataset YAMLs by file name; outputs
(``out``, ``report``) are relative to the working folder, as the engine's ``runs/``. Every path comes out absolute,
so a Ray worker started anywhere finds it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from lwdet.errors import ConfigError

# a training budget: what every run of an experiment trains with (the engine's arguments)
BUDGET_DEFAULTS = {"epochs": 30, "imgsz": 320, "batch": 16, "seed": 0, "device": "cpu", "workers": 2, "plots": False}


def strict(section: str, got: dict, allowed, error: type[ConfigError] = ConfigError) -> None:
    """Unknown keys refused, with a "did you mean"; ``error``: the ConfigError subclass raised."""
    for k in got:
        if k not in allowed:
            hint = difflib.get_close_matches(str(k), list(allowed), n=1)
            raise error(
                f"{section}: unknown key '{k}'{f'; did you mean {hint[0]!r}?' if hint else ''} "
                f"Known: {', '.join(sorted(allowed))}"
            )


def input_path(value: str | Path, config_dir: Path, shipped: Path | None = None) -> str:
    """An input file or folder: absolute; beside the config; in the working folder; shipped with lwdet (by name)."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    for cand in (config_dir / p, Path.cwd() / p, (shipped / p.name) if shipped else None):
        if cand is not None and cand.exists():
            return str(cand.resolve())
    return str((Path.cwd() / p).resolve())  # not there (yet): e.g. a benchmark set built on first use


def output_path(value: str | Path) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (Path.cwd() / p).resolve())


def read_mapping(path: Path, kind: str, keys, error: type[ConfigError] = ConfigError) -> dict:
    """A config file's top-level mapping, its keys checked against ``keys``: FileNotFoundError when missing, ``error``
    (file and line) when not YAML, not a mapping, or with an unknown key. ``kind``: "study", "search", ..."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {kind} config not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise error(f"{path}:{at} not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: a {kind} config is a mapping of {', '.join(sorted(keys))}")
    strict(str(path), raw, keys, error)
    return raw


def header(path: Path, raw: dict, bench_defaults: dict) -> dict:
    """The part every experiment config shares: config, name, data, out, report, budget and bench (defaults filled
    in, ``bench.peers`` resolved as an input), paths absolute. Each section's keys are checked by the caller."""
    from lwdet.data import DEFAULT_DATA

    here = path.resolve().parent
    bench = {**bench_defaults, **(raw.get("bench") or {})}
    if bench.get("peers"):
        bench["peers"] = input_path(bench["peers"], here)
    return {
        "config": str(path),
        "name": raw.get("name", path.stem),
        "data": input_path(raw.get("data") or DEFAULT_DATA, here, shipped=Path(DEFAULT_DATA).parent),
        "out": output_path(raw.get("out") or f"runs/{path.stem}"),
        "report": output_path(raw["report"]) if raw.get("report") else None,
        "budget": {**BUDGET_DEFAULTS, **(raw.get("budget") or {})},
        "bench": bench,
    }
