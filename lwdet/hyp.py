"""The engine's training arguments (``lr0=0.016 scale=0.5``), checked once for every way they reach a run.

``lwdet train ... lr0=0.016 scale=0.5`` takes them as the engine's CLI does (``parse_engine_args``: ultralytics'
own ``smart_value``); a study or search config's ``train: {lr0: 0.016}`` mapping goes through the same check
(``engine_overrides(mapping, where="study.yaml: row r1: train")``). Valid keys are the engine's ``DEFAULT_CFG``
keys (``ultralytics/cfg/default.yaml``: what its trainer accepts); values are type-checked by the engine's own
``check_cfg``. Keys that lwdet sets itself are refused with a pointer to what sets them (``FLAG_KEYS``,
``LWDET_KEYS``), so each setting has one way in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lwdet.backbones import suggest
from lwdet.errors import ConfigError

__all__ = ["FLAG_KEYS", "LWDET_KEYS", "HypError", "engine_keys", "engine_overrides", "parse_engine_args"]

# Keys that `lwdet train` owns through a flag: key=value on its command line points there (one way in per setting;
# the flags carry lwdet's own checks and defaults: imgsz a multiple of 32, device ids, budget-scaled epoch settings).
FLAG_KEYS: dict[str, str] = {
    "epochs": "--epochs",
    "imgsz": "--imgsz",
    "batch": "--batch",
    "device": "--device",
    "workers": "--workers",
    "seed": "--seed",
    "close_mosaic": "--close-mosaic",
    "warmup_epochs": "--warmup-epochs",
    "optimizer": "--optimizer",
    "project": "--project",
    "name": "--name",
    "resume": "--resume",
    "plots": "--no-plots",
    "distill_model": "--teacher",
    "dis": "--distill-weight",
    # the engine's `pretrained` is a .pt it would unpickle past lwdet's checkpoint allow-list; lwdet's are the backbone's
    "pretrained": "--pretrained / --backbone-weights",
}
# Keys lwdet sets for every run (the run folder's model and data copies, training mode): never the caller's.
LWDET_KEYS: dict[str, str] = {
    "model": "--model / --backbone",
    "data": "--data",
    "task": "lwdet (detect)",
    "mode": "lwdet (train)",
    "cfg": "key=value arguments",
    "save_dir": "--project / --name",
}


class HypError(ConfigError):
    """A training argument is wrong: the message names where it came from and the key (one line)."""


def engine_keys() -> frozenset[str]:
    """Every key the engine's trainer accepts (its ``DEFAULT_CFG``)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return frozenset(DEFAULT_CFG_DICT)


def parse_engine_args(tokens: Iterable[str], where: str = "command line") -> dict[str, Any]:
    """``["lr0=0.016", "scale=0.5"]`` -> ``{"lr0": 0.016, "scale": 0.5}``, values parsed as the engine's CLI does."""
    from ultralytics.cfg import smart_value

    out: dict[str, Any] = {}
    for token in tokens:
        key, eq, text = str(token).partition("=")
        key, text = key.strip(), text.strip()
        if not eq or not key:
            raise HypError(f"{where}: {token!r} is not a key=value training argument (e.g. lr0=0.016)")
        if not text:
            raise HypError(f"{where}: {key}= has no value")
        if key in out:
            raise HypError(f"{where}: {key} is given twice")
        out[key] = smart_value(text)
    return out


def engine_overrides(
    mapping: Mapping[str, Any], where: str = "command line", owned: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Check ``mapping`` as engine training arguments and return it as a new dict; raise HypError (one line).

    Unknown key: names the closest valid one. A key in ``owned`` (default: ``FLAG_KEYS``, the flags of
    ``lwdet train``) or ``LWDET_KEYS``: names what sets it instead. Pass ``owned={}`` (or a study's own map) where
    those keys are legitimately set as training arguments. A value of the wrong type or out of range: the engine's
    ``check_cfg`` message, with ``where`` and the key.
    """
    from ultralytics.cfg import DEFAULT_CFG_DICT, check_cfg

    owned = FLAG_KEYS if owned is None else owned
    valid = engine_keys()
    out = dict(mapping)
    for key in out:
        if not isinstance(key, str):
            raise HypError(f"{where}: training argument keys are names, got {key!r}")
        taken = {**LWDET_KEYS, **owned}.get(key)
        if taken is not None:
            raise HypError(f"{where}: {key} is set by {taken}, not as a training argument")
        if key not in valid:
            hint = suggest(key, sorted(valid - set(LWDET_KEYS) - set(owned)))
            raise HypError(f"{where}: {key!r} is not a training argument of the engine{hint}")
    for key, value in out.items():
        try:
            check_cfg({key: value}, hard=True)
        except (TypeError, ValueError) as e:
            default = DEFAULT_CFG_DICT.get(key)
            raise HypError(f"{where}: {key}={value!r}: {_one_line(e)} (the engine's default: {default!r})") from None
    return out


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
