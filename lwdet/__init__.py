"""lwdet: YOLOv5n backbone-swap detectors for edge devices.

Importing lwdet imports neither torch nor the engine (``lwdet.edge`` must run on a Pi without them);
``YOLO`` and ``LwdetModel`` load lazily.
"""

import os

__version__ = "0.1.0"

# The engine probes the network (fonts, assets, hub, analytics) unless told it is offline. Machines lwdet targets
# often have no network; set YOLO_OFFLINE=0 to let the engine go online.
os.environ.setdefault("YOLO_OFFLINE", "1")


def __getattr__(name):
    if name == "YOLO":
        from lwdet.yolo import YOLO

        return YOLO
    if name == "LwdetModel":
        from lwdet.models import LwdetModel

        return LwdetModel
    raise AttributeError(f"module 'lwdet' has no attribute {name!r}")
