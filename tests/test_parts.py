import json
import subprocess
import sys
from pathlib import Path

import torch

from lwdet.models import MODEL_DIR, LwdetModel
from lwdet.parts import part_latency, split

ROOT = Path(__file__).resolve().parents[1]


def _intermediates(model, x):
    """Every layer's output in the engine's own forward pass, caught by forward hooks."""
    y = [None] * len(model.model)
    hooks = [
        m.register_forward_hook(lambda mod, args, out, i=i: y.__setitem__(i, out)) for i, m in enumerate(model.model)
    ]
    try:
        model.predict(x)
    finally:
        for h in hooks:
            h.remove()
    return y


def test_split_parts_return_what_the_next_part_reads():
    model = LwdetModel(MODEL_DIR / "yolov5n-shufflenetv2_050-litepan-litehead.yaml", nc=3, verbose=False).eval()
    x = torch.rand(1, 3, 64, 64)
    parts = split(model)
    with torch.no_grad():
        y = _intermediates(model, x)
        backbone = parts["backbone"](x)
        neck = parts["backbone+neck"](x)
    # the lite PAN reads the three Index rows (P3, P4, P5); the head reads the PAN's three outputs
    assert [t.shape[1] for t in backbone] == [48, 96, 192]
    assert all(torch.equal(a, b) for a, b in zip(backbone, (y[1], y[2], y[3])))
    assert [tuple(t.shape[2:]) for t in neck] == [(8, 8), (4, 4), (2, 2)]
    assert all(torch.equal(a, y[i]) for a, i in zip(neck, model.model[-1].f))


def test_split_of_the_baseline_reads_p3_p4_and_the_sppf():
    model = LwdetModel(MODEL_DIR / "yolov5n.yaml", nc=3, verbose=False).eval()
    assert split(model)["backbone"].outputs == [4, 6, 9]
    assert split(model)["backbone+neck"].outputs == [17, 20, 23]


def test_part_latency_times_three_exported_graphs():
    model = LwdetModel(MODEL_DIR / "yolov5n-shufflenetv2_050-litehead.yaml", nc=3, verbose=False)
    r = part_latency(model, imgsz=64, threads=1, loops=3, warmup=1)
    assert r["backbone_ms"] > 0 and r["total_ms"] > r["backbone_ms"]
    assert abs(r["backbone_ms"] + r["neck_ms"] + r["head_ms"] - r["total_ms"]) < 1e-9
    assert r["imgsz"] == [64, 64] and r["threads"] == 1


def test_cli_prints_a_row_per_model_and_writes_json(tmp_path):
    out = tmp_path / "parts.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lwdet.parts",
            str(MODEL_DIR / "yolov5n-litepan-litehead.yaml"),
            "--imgsz",
            "64",
            "--loops",
            "2",
            "--warmup",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "yolov5n-litepan-litehead" in r.stdout and "backbone ms" in r.stdout
    rows = json.loads(out.read_text())
    assert [row["model"] for row in rows] == ["yolov5n-litepan-litehead"]
    r = subprocess.run([sys.executable, "-m", "lwdet.parts", "nope.yaml"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "nope.yaml: model YAML not found" in r.stderr and "yolo26n.yaml" in r.stderr
