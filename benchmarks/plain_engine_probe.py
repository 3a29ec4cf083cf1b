"""What plain ``ultralytics.YOLO`` (without lwdet's wrapper) does with a checkpoint lwdet trained.

    python benchmarks/plain_engine_probe.py runs/fmnist-det/yolov5n-shufflenetv2_050/weights/best.pt \
        runs/fmnist-det/yolov5n-shufflenetv2_050/data.yaml [--block-lwdet]

Runs load, predict, val, export (onnx, ncnn) and a 1-epoch train at 64 px, one line each: OK or the error.
--block-lwdet makes ``import lwdet`` fail, as on a machine with only ultralytics installed. Writes exports beside the
weights and a run under /tmp/plain-engine-probe; run it on a copy of the weights.
"""

import os
import sys

os.environ["YOLO_OFFLINE"] = "1"


class BlockLwdet:
    """An import hook that makes ``import lwdet`` fail, as on a machine with only ultralytics."""

    def find_spec(self, name, path=None, target=None):
        if name == "lwdet" or name.startswith("lwdet."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")


def main() -> int:
    weights, data = sys.argv[1], sys.argv[2]
    if "--block-lwdet" in sys.argv[3:]:
        sys.meta_path.insert(0, BlockLwdet())
    import numpy as np
    from ultralytics import YOLO

    def step(name, fn):
        try:
            print(f"{name}: OK {fn()}")
            return True
        except BaseException as e:  # noqa: BLE001  report every failure as one line
            print(f"{name}: FAIL {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
            return False

    box = {}
    if not step("load", lambda: type(box.setdefault("m", YOLO(weights)).model).__qualname__):
        return 1
    m, img = box["m"], np.full((64, 64, 3), 114, np.uint8)
    step("predict", lambda: len(m.predict(img, imgsz=64, verbose=False)[0].boxes))
    step("val", lambda: round(m.val(data=data, imgsz=64, batch=16, plots=False, verbose=False, workers=0).box.map, 4))
    step("export onnx", lambda: m.export(format="onnx", imgsz=64))
    step("export ncnn", lambda: m.export(format="ncnn", imgsz=64))
    step(
        "train",
        lambda: (
            m.train(
                data=data,
                epochs=1,
                imgsz=64,
                batch=32,
                plots=False,
                workers=0,
                val=False,
                project="/tmp/plain-engine-probe",
                name="t",
                exist_ok=True,
            ),
            "trained",
        )[1],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
