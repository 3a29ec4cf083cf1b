"""``lwdet.YOLO``: the engine's YOLO interface, building and training lwdet and engine model YAMLs."""

from __future__ import annotations

from pathlib import Path

from ultralytics import YOLO as _EngineYOLO

from lwdet.models import build_model, resolve_yaml
from lwdet.training import LwdetTrainer


class YOLO(_EngineYOLO):
    """``YOLO("models/yaml/yolov5n-ghostnet_100.yaml").train(data=..., epochs=...)``, as with the engine.

    Also the engine's own YAMLs (``YOLO("yolo26n.yaml")``) and checkpoints of both. A ``.pt`` must be a local file
    (nothing is downloaded) and is checked against lwdet's class allow-list before the engine unpickles it, unless
    ``trust=True``.
    """

    def __init__(
        self, model: str | Path = "yolov5n.yaml", task: str | None = None, verbose: bool = False, trust: bool = False
    ):
        object.__setattr__(self, "_trust", trust)  # read by _load, which the engine's __init__ calls
        super().__init__(model, task=task, verbose=verbose)

    def _new(self, cfg: str, task: str | None = None, verbose: bool = False) -> None:
        from lwdet.engine_models import engine_cfg_dir

        resolved = resolve_yaml(cfg)  # 'yolov5n.yaml' is lwdet's shipped YAML, 'yolo26n.yaml' the engine's
        engine = engine_cfg_dir().resolve() in resolved.resolve().parents  # both resolved: site-packages may be a link
        super()._new(cfg if engine else str(resolved), task, verbose)

    def _load(self, weights: str, task: str | None = None) -> None:
        if str(weights).lower().endswith(".pt"):
            if not Path(weights).is_file():
                raise FileNotFoundError(
                    f"{weights}: weights not found; lwdet never downloads weights (train one, or "
                    "fetch the file yourself and pass its path)"
                )
            from lwdet.checkpoints import vet

            vet(weights, self._trust)
        super()._load(weights, task)

    @property
    def task_map(self):
        tasks = super().task_map
        tasks["detect"] = {**tasks["detect"], "model": build_model, "trainer": LwdetTrainer}
        return tasks
