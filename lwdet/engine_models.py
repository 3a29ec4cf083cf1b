"""The engine's own detectors (``yolov8n.yaml``, ``yolo11n.yaml``, ``yolo26n.yaml``, ...) as lwdet models.

An *engine YAML* is one with a ``scales`` section, as the pinned ultralytics ships them in ``ultralytics/cfg/models``.
It is found by its scaled name (``yolo26n.yaml`` -> ``26/yolo26.yaml`` at scale ``n``, as the engine resolves it),
validated here (keys, module names, literal arguments, the scale) and built by the engine's own ``DetectionModel``,
whose row parser knows the channels of the engine's modules. The build runs in the engine's restricted mode: module
names must be ``nn.Module`` classes and an ``activation`` string is resolved without ``eval``. The model is a plain
engine ``DetectionModel``, so its checkpoints load in plain ultralytics too.
"""

from __future__ import annotations

import contextlib
import re
from copy import deepcopy
from pathlib import Path

from torch import nn

from lwdet.backbones import suggest
from lwdet.model_spec import ModelConfigError, validate_rows
from lwdet.model_spec import where as _where

ENGINE_KEYS = {
    "nc",
    "scales",
    "end2end",
    "reg_max",
    "activation",
    "depth_multiple",
    "width_multiple",
    "backbone",
    "head",
}
ADDED_KEYS = {"scale", "yaml_file", "channels"}  # set by the engine's loader and by the trainer
HEAD = "Detect"  # detection only: Segment, Pose, OBB, v10Detect and RT-DETR heads are not lwdet rows


def engine_cfg_dir() -> Path:
    import ultralytics

    return Path(ultralytics.__file__).parent / "cfg" / "models"


def is_engine_spec(spec) -> bool:
    """A model dict in the engine's scaled format (it has ``scales``)."""
    return isinstance(spec, dict) and "scales" in spec


def scale_of(name: str | Path) -> str:
    """The scale letter in a model name, as the engine reads it: 'yolo26n.yaml' -> 'n'; '' when there is none."""
    from ultralytics.nn.tasks import guess_model_scale

    return guess_model_scale(name)


def engine_yaml(name: str | Path) -> Path | None:
    """The engine's YAML file for a scaled name ('yolo11n.yaml' -> .../cfg/models/11/yolo11.yaml), else None."""
    name = Path(name)
    if name.parent != Path(".") or name.suffix not in (".yaml", ".yml"):
        return None
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", name.stem)  # the engine's rule: yolov8n -> yolov8
    found = sorted(engine_cfg_dir().rglob(f"{unified}.yaml"))
    return found[0] if found else None


def engine_names() -> list[str]:
    """Nano-scale names of the engine's shipped detection YAMLs (their last row is Detect), for messages and docs."""
    import yaml

    names = []
    for f in sorted(engine_cfg_dir().rglob("yolo*.yaml")):
        spec = yaml.safe_load(f.read_text(encoding="utf-8"))
        if is_engine_spec(spec) and "n" in spec["scales"] and spec["head"][-1][2] == HEAD:
            names.append(re.sub(r"^(yolov?\d+)", r"\1n", f.stem) + ".yaml")  # the scale follows the version
    return names


def _module_class(name: str):
    """The class a row's module name means to the engine's parse_model (``nn.X`` or its own namespace), or None."""
    from ultralytics.nn import tasks

    obj = getattr(nn, name[3:], None) if name.startswith("nn.") else getattr(tasks, name, None)
    return obj if isinstance(obj, type) and issubclass(obj, nn.Module) else None


def validate_spec(spec: dict, lines: dict | None = None) -> None:
    """Check an engine YAML: keys, scale, activation, rows (engine modules, literal arguments), a Detect last row."""
    from ultralytics.nn.tasks import _SafeLoad

    lines = lines or {}
    for key in spec:
        if key not in ENGINE_KEYS | ADDED_KEYS:
            raise ModelConfigError(
                f"{_where(spec, lines, key)}: unknown key '{key}' in an engine YAML"
                f"{suggest(key, ENGINE_KEYS)} Known: {', '.join(sorted(ENGINE_KEYS))}"
            )
    scales = spec["scales"]
    if not isinstance(scales, dict) or not all(isinstance(v, list) and len(v) == 3 for v in scales.values()):
        raise ModelConfigError(
            f"{_where(spec, lines, 'scales')}: 'scales' maps a letter to [depth, width, max_channels], got {scales!r}"
        )
    scale = spec.get("scale")
    if scale not in scales:
        raise ModelConfigError(
            f"{_where(spec, lines, None)}: no scale {scale!r} in this engine YAML; name the scale in the file name, "
            f"e.g. {Path(spec.get('yaml_file', 'yolo26.yaml')).stem.rstrip('nsmlx')}n.yaml (scales: "
            f"{', '.join(scales)})"
        )
    act = spec.get("activation")
    if act is not None:
        try:
            _SafeLoad.activation(str(act))
        except Exception:  # noqa: BLE001  the engine raises TypeError/AssertionError/ValueError alike
            raise ModelConfigError(
                f"{_where(spec, lines, 'activation')}: activation {act!r} is not a torch.nn class "
                "call with literal arguments such as 'nn.ReLU()'; it is never evaluated"
            ) from None
    for key in ("end2end",):
        if key in spec and not isinstance(spec[key], bool):
            raise ModelConfigError(f"{_where(spec, lines, key)}: '{key}' must be true or false, got {spec[key]!r}")
    validate_rows(
        spec,
        lines,
        known=lambda m: isinstance(m, str) and _module_class(m) is not None,
        multi_input=lambda m: True,
        heads=(HEAD,),
        what="an engine module or nn.<Module>",
    )


@contextlib.contextmanager
def _restricted():
    """The engine's restricted model construction: known nn.Module rows only, ``activation`` without eval."""
    from ultralytics.nn.tasks import _SafeLoad

    before = getattr(_SafeLoad._local, "active", False)
    _SafeLoad._local.active = True
    try:
        yield
    finally:
        _SafeLoad._local.active = before


def build(spec: dict, ch: int = 3, nc: int | None = None, verbose: bool = True):
    """The engine's DetectionModel for a validated engine spec, built in restricted mode."""
    from ultralytics.nn.tasks import DetectionModel

    try:
        with _restricted():
            return DetectionModel(deepcopy(spec), ch=ch, nc=nc, verbose=verbose)
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError) as e:
        raise ModelConfigError(f"{_where(spec, {}, None)}: the engine cannot build this model: {e}") from None


def is_engine_model(model: nn.Module) -> bool:
    """A detector built from an engine YAML (its ``yaml`` has ``scales``)."""
    return is_engine_spec(getattr(model, "yaml", None))


def deployed(model: nn.Module) -> nn.Module:
    """``model`` (changed in place) as lwdet exports it: an end-to-end head (YOLO26) keeps only its one-to-many branch.

    Export runs that branch in the raw Detect layout (see docs/engine-models.md); counting the unused one-to-one
    branch too would overstate parameters and FLOPs by the head's size.
    """
    from ultralytics.nn.modules import Detect

    for m in model.modules():
        if isinstance(m, Detect) and getattr(m, "one2one_cv2", None) is not None and not m.end2end:
            m.fuse()  # the engine's own removal of the unused branch (it fuses no convolutions)
    return model
