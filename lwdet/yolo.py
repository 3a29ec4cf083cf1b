"""``lwdet.YOLO``: the engine's YOLO interface, building and training lwdet model YAMLs."""

from __future__ import annotations

from ultralytics import YOLO as _EngineYOLO

from lwdet.models import LwdetModel
from lwdet.training import LwdetTrainer


class YOLO(_EngineYOLO):
    """``YOLO("models/yaml/yolov5n-ghostnet_100.yaml").train(data=..., epochs=...)``, as with the engine."""

    @property
    def task_map(self):
        tasks = super().task_map
        tasks["detect"] = {**tasks["detect"], "model": LwdetModel, "trainer": LwdetTrainer}
        return tasks
