"""Load and validate model YAMLs, build detectors, and resolve ``--backbone``/``--neck`` to a shipped YAML.

A model YAML has the engine's row format ``[from, repeats, module, args]`` in ``backbone`` and ``head``
sections, with explicit channels (no width/depth multipliers). Nothing in it is executed: module names come
from ``lwdet.modules.MODULES``, arguments must be literals, and activations come from an allow-list.
"""

from __future__ import annotations

import logging
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import initialize_weights

from lwdet import cfg
from lwdet.backbones import BACKBONES, FAMILIES, suggest
from lwdet.model_spec import ModelConfigError, validate_rows
from lwdet.model_spec import row_lines as _row_lines
from lwdet.model_spec import where as _where
from lwdet.modules import HEADS, MODULES, RowError

LOGGER = logging.getLogger(__name__)

__all__ = [
    "ModelConfigError",
    "LwdetModel",
    "ModelSource",
    "build_model",
    "load_spec",
    "parse_model",
    "read_model",
    "model_yaml",
    "resolve_yaml",
    "shipped_yamls",
]

MODEL_DIR = cfg.MODELS  # the shipped model YAMLs (lwdet/cfg/models; models/yaml in a clone)
BASELINE = "yolov5n"
NECKS = ("sppf", "aspp", "lite", "nano", "p45")  # --neck: the P5 block of the CSP-PAN, the lite PAN (width 64 / 48)
# or the two-level lite PAN (P4/P5 only)
# --head: the engine's Detect; SlimDetect (full convs at width 32); LiteDetect (depthwise, with DFL / without)
HEAD_KINDS = ("yolo", "slim", "lite", "nano")
NECK_SUFFIX = {"sppf": "", "aspp": "-aspp", "lite": "-litepan", "nano": "-nanopan", "p45": "-p45pan"}
HEAD_SUFFIX = {"yolo": "", "slim": "-slimhead", "lite": "-litehead", "nano": "-nanohead"}
REP_SUFFIX = "-rep"  # --rep: the neck's depthwise and the head's 3x3 convs re-parameterizable (RepConv)
ACTIVATIONS = {
    "SiLU": nn.SiLU,
    "ReLU": nn.ReLU,
    "ReLU6": nn.ReLU6,
    "Hardswish": nn.Hardswish,
    "LeakyReLU": nn.LeakyReLU,
}
KEYS = {"nc", "activation", "backbone", "head", "backbone_weights"}
ENGINE_KEYS = {"scale", "yaml_file", "channels"}  # added by the engine's loader and trainer; accepted, unused


def resolve_yaml(name: str | Path) -> Path:
    """The file a model name means: a path, else a YAML shipped in models/yaml/, else the engine's (yolo26n.yaml)."""
    from lwdet.engine_models import engine_names, engine_yaml

    path = Path(name)
    if path.is_file():
        return path
    if path.parent == Path(".") and (MODEL_DIR / path.name).is_file():
        return MODEL_DIR / path.name
    found = engine_yaml(path)
    if found is None:
        raise ModelConfigError(
            f"{path}: model YAML not found (neither a file, nor shipped in {MODEL_DIR}, nor one of "
            f"the engine's: {', '.join(engine_names())})"
        )
    return found


@dataclass(frozen=True)
class ModelSource:
    """A model YAML read once: the file, its text, the validated spec and the line of each key and row (for errors).

    ``lwdet train`` reads its model YAML once into this, builds from it (``build_model(source)``) and copies its
    ``text`` into the run folder; nothing further down reads the file again.
    """

    file: Path
    text: str
    spec: dict
    lines: dict

    def with_key(self, key: str, value) -> ModelSource:
        """The same model with one more top-level ``key: value`` line appended to its text (checked again)."""
        return parse_model(f"{self.text.rstrip()}\n{key}: {value}\n", self.file, self.spec["yaml_file"])


def read_model(path: str | Path) -> ModelSource:
    """Read and validate a model YAML (a path, a shipped name or the engine's ``yolo26n.yaml``: ``resolve_yaml``)."""
    file = resolve_yaml(path)
    return parse_model(file.read_text(encoding="utf-8"), file, path)


def parse_model(text: str, file: Path, name: str | Path | None = None) -> ModelSource:
    """Validate a model YAML's ``text`` (read from ``file``; ``name`` as the caller gave it); no file is read.

    An engine YAML (one with ``scales``) is validated by ``lwdet.engine_models``; its scale comes from ``name``, as
    the engine reads it.
    """
    from lwdet import engine_models

    name = file if name is None else name
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{file}:{mark.line + 1}" if mark else str(file)
        raise ModelConfigError(f"{at}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(spec, dict):
        raise ModelConfigError(f"{file}: a model YAML must be a mapping with 'backbone' and 'head' sections")
    lines = _row_lines(text)
    if engine_models.is_engine_spec(spec):
        spec["scale"] = engine_models.scale_of(name)
        spec["yaml_file"] = str(name)  # the name as given: the engine reads the scale from it again
        engine_models.validate_spec(spec, lines)
    else:
        spec["yaml_file"] = str(file)
        validate_spec(spec, lines)
    return ModelSource(Path(file), text, spec, lines)


def load_spec(path: str | Path) -> dict:
    """Read and validate a model YAML; raise ModelConfigError naming file and line on any problem (``read_model``)."""
    return read_model(path).spec


def validate_spec(spec: dict, lines: dict | None = None) -> None:
    """Check keys, activation and row shapes (module names, literal args); channels are checked at build."""
    lines = lines or {}
    for key in spec:
        if key not in KEYS | ENGINE_KEYS:
            raise ModelConfigError(
                f"{_where(spec, lines, key)}: unknown key '{key}'{suggest(key, KEYS)} Known: {', '.join(sorted(KEYS))}"
            )
    for key in ("nc", "backbone", "head"):
        if key not in spec:
            raise ModelConfigError(f"{_where(spec, lines, None)}: missing key '{key}'")
    act = spec.get("activation")
    if act is not None and act not in ACTIVATIONS:
        raise ModelConfigError(
            f"{_where(spec, lines, 'activation')}: activation {act!r} is not allowed{suggest(act, ACTIVATIONS)} "
            f"Allowed: {', '.join(ACTIVATIONS)}"
        )
    validate_rows(
        spec,
        lines,
        known=lambda m: m in MODULES,
        multi_input=lambda m: MODULES[m].multi_input,
        heads=HEADS,
        known_names=MODULES,
    )


def build_layers(spec: dict, ch: int = 3, lines: dict | None = None, verbose: bool = False):
    """Build the layers of a validated spec. Returns (nn.Sequential, save list) as the engine's parse_model."""
    lines = lines or {}
    ctx = {"nc": spec["nc"], "backbone_weights": spec.get("backbone_weights")}
    rows = [("backbone", j, r) for j, r in enumerate(spec["backbone"])] + [
        ("head", j, r) for j, r in enumerate(spec["head"])
    ]
    if spec.get("backbone_weights") and not any(r[2] == "Backbone" for _, _, r in rows):
        raise ModelConfigError(f"{_where(spec, lines, 'backbone_weights')}: backbone_weights given but no Backbone row")
    layers, save, chans = [], [], []
    if verbose:
        LOGGER.info(f"\n{'':>3}{'from':>20}{'n':>3}{'params':>10}  {'module':<40}{'arguments':<30}")
    for i, (section, j, (src, n, name, args)) in enumerate(rows):
        c_in = (
            [ch if s == -1 and i == 0 else chans[s] for s in src]
            if isinstance(src, list)
            else (ch if i == 0 else chans[src])
        )
        definition = MODULES[name]
        try:
            if definition.repeats or n == 1:
                built = definition.build(c_in, deepcopy(args), n, ctx)
                module = built.module
            else:  # repeat a same-width block n times
                built = definition.build(c_in, deepcopy(args), 1, ctx)
                if built.channels != c_in:
                    raise RowError(f"repeats={n} needs equal input and output channels ({c_in} -> {built.channels})")
                module = nn.Sequential(
                    built.module, *(definition.build(c_in, deepcopy(args), 1, ctx).module for _ in range(n - 1))
                )
        except (RowError, KeyError, FileNotFoundError, TypeError) as e:
            msg = e.args[0] if e.args else str(e)
            raise ModelConfigError(
                f"{_where(spec, lines, (section, j))}: {section} row {j} (layer {i}): {msg}"
            ) from None
        except RuntimeError as e:  # e.g. a conv whose declared input channels cannot take the tensor
            raise ModelConfigError(f"{_where(spec, lines, (section, j))}: {section} row {j} (layer {i}): {e}") from None
        module.i, module.f, module.type = i, src, name
        module.np = sum(p.numel() for p in module.parameters())
        if verbose:
            LOGGER.info(f"{i:>3}{src!s:>20}{n:>3}{module.np:10.0f}  {name:<40}{built.args!s:<30}")
        save.extend(s % i for s in (src if isinstance(src, list) else [src]) if s != -1)
        layers.append(module)
        chans.append(built.channels)
    return nn.Sequential(*layers), sorted(save)


def _set_activation(module: nn.Module, act_cls) -> None:
    """Replace every SiLU under ``module`` by ``act_cls()`` (the engine's Conv shares one SiLU instance)."""
    for name, child in module.named_children():
        if isinstance(child, nn.SiLU):
            setattr(module, name, act_cls())
        else:
            _set_activation(child, act_cls)


class LwdetModel(DetectionModel):
    """The engine's DetectionModel built by lwdet's row parser (so lwdet modules declare their channels)."""

    def __init__(
        self, cfg: str | Path | dict | ModelSource = MODEL_DIR / "yolov5n.yaml", ch: int = 3, nc=None, verbose=True
    ):
        nn.Module.__init__(self)  # DetectionModel.__init__ would run the engine's parse_model
        if isinstance(cfg, ModelSource):
            spec, lines = deepcopy(cfg.spec), cfg.lines
        elif isinstance(cfg, dict):
            spec, lines = deepcopy(cfg), {}
            file = Path(spec.get("yaml_file", ""))
            if file.is_file():  # the engine's loader drops positions; recover them when the file still matches
                text = file.read_text(encoding="utf-8")
                same = {k: v for k, v in (yaml.safe_load(text) or {}).items() if k in ("backbone", "head")}
                lines = _row_lines(text) if same == {k: spec.get(k) for k in same} else {}
            validate_spec(spec, lines)
        else:
            source = read_model(cfg)
            spec, lines = source.spec, source.lines
        if "scales" in spec:
            raise ModelConfigError(f"{spec.get('yaml_file')}: an engine YAML; build it with lwdet.models.build_model")
        spec["channels"] = ch
        if nc and nc != spec["nc"]:
            LOGGER.info(f"Overriding model.yaml nc={spec['nc']} with nc={nc}")
            spec["nc"] = nc
        self.yaml = spec
        self.model, self.save = build_layers(spec, ch, lines, verbose=verbose)
        self.names = {i: f"{i}" for i in range(spec["nc"])}
        self.inplace = True
        head = [m for m in self.model if not _is_backbone(m)]
        if spec.get("activation") not in (None, "SiLU"):  # as the engine's key; timm/torchvision keep their own
            for m in head:
                _set_activation(m, ACTIVATIONS[spec["activation"]])

        # Strides from a dry run, as the engine's DetectionModel does.
        detect = self.model[-1]
        s = 256
        self.model.eval()
        detect.training = True
        with torch.no_grad():
            feats = self.forward(torch.zeros(1, ch, s, s))["feats"]
        detect.stride = torch.tensor([s / x.shape[-2] for x in feats])
        self.stride = detect.stride
        self.model.train()
        detect.bias_init()
        for m in head:  # the backbone keeps its own library's initialisation
            initialize_weights(m)
        if verbose:
            self.info()

    def fuse(self, verbose: bool = True, imgsz: int = 640):
        """The engine's fuse (conv + BN; its ``RepConv`` branches), after folding the timm backbone's re-parameterizable
        branches (RepGhostNet, MobileOne: ``lwdet.reparam``). What changed is kept in ``self.reparameterized``."""
        from lwdet import reparam

        def fold(model):  # timm's branches first: the engine's fuse does not know them
            reparam.fold_timm_bodies(model)
            DetectionModel.fuse(model, verbose=verbose, imgsz=imgsz)

        if info := reparam.folded(self, fold):
            self.reparameterized = info
            LOGGER.info("re-parameterized %d blocks: %d -> %d parameters", *info.values())
        return self


def build_model(
    cfg: str | Path | dict | ModelSource, ch: int = 3, nc: int | None = None, verbose: bool = True
) -> DetectionModel:
    """The detector a model YAML (path, shipped name or engine name such as 'yolo26n.yaml'), a spec dict or a
    ``ModelSource`` (a YAML read once: ``read_model``) describes.

    lwdet YAMLs build an ``LwdetModel``; engine YAMLs (with ``scales``) the engine's own ``DetectionModel``, see
    ``lwdet.engine_models``. A path is read once.
    """
    from lwdet import engine_models

    if isinstance(cfg, (str, Path)):
        cfg = read_model(cfg)
    spec = cfg.spec if isinstance(cfg, ModelSource) else cfg
    if engine_models.is_engine_spec(spec):
        if isinstance(cfg, dict):
            engine_models.validate_spec(spec)
        return engine_models.build(spec, ch=ch, nc=nc, verbose=verbose)
    return LwdetModel(cfg, ch=ch, nc=nc, verbose=verbose)


def _is_backbone(m: nn.Module) -> bool:
    return getattr(m, "type", None) == "Backbone"


def model_yaml(backbone: str = BASELINE, neck: str = "sppf", head: str = "yolo", rep: bool = False) -> Path:
    """Resolve a backbone name (family or full width), neck, head and ``rep`` (re-parameterizable neck and head) to a
    shipped model YAML."""
    if neck not in NECKS:
        raise ValueError(f"neck '{neck}' is not known{suggest(neck, NECKS)} Known: {', '.join(NECKS)}")
    if head not in HEAD_KINDS:
        raise ValueError(f"head '{head}' is not known{suggest(head, HEAD_KINDS)} Known: {', '.join(HEAD_KINDS)}")
    name = FAMILIES.get(backbone, backbone)
    if name != BASELINE and name not in BACKBONES:
        choices = [BASELINE, *FAMILIES, *BACKBONES]
        raise ValueError(f"backbone '{backbone}' is not known{suggest(backbone, choices)} Known: {', '.join(choices)}")
    stem = BASELINE if name == BASELINE else f"{BASELINE}-{name}"
    rep_suffix = REP_SUFFIX if rep else ""

    def file(n: str, h: str) -> Path:
        return MODEL_DIR / f"{stem}{NECK_SUFFIX[n]}{HEAD_SUFFIX[h]}{rep_suffix}.yaml"

    path = file(neck, head)
    if not path.is_file():
        shipped = ", ".join(f"--neck {n} --head {h}" for n in NECKS for h in HEAD_KINDS if file(n, h).is_file())
        if rep:
            raise FileNotFoundError(f"{path}: --rep is shipped for {shipped} only; got neck '{neck}' and head '{head}'")
        raise FileNotFoundError(
            f"{path}: no shipped model YAML for backbone '{backbone}' with neck '{neck}' and head "
            f"'{head}'; shipped for it: {shipped}"
        )
    return path


def shipped_yamls() -> list[Path]:
    """Every model YAML shipped in the package (lwdet/cfg/models/)."""
    return sorted(MODEL_DIR.glob("*.yaml"))
