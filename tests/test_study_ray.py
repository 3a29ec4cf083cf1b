"""A study on Ray (lwdet.study.distributed): rows as tasks on a local Ray, a failing row, teachers first, a second node.

Ray runs here with its dashboard off and a small object store; each test starts its own Ray and shuts it down.
"""

import csv
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from lwdet.study import StudyConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
ray = pytest.importorskip("ray", reason="Ray is the optional extra lwdet[ray]")

TINY = {"epochs": 1, "imgsz": 64, "batch": 32, "workers": 0, "fraction": 0.25}
QUICK_BENCH = {"threads": [1], "loops": 2, "warmup": 1, "parts": False, "onnx": False, "peers": ""}


def _config(tmp_path, detectors, ray_section, **extra) -> Path:
    config = tmp_path / "study.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "out": str(tmp_path / "out"),
                "report": str(tmp_path / "docs"),
                "budget": TINY,
                "detectors": detectors,
                "bench": QUICK_BENCH,
                "export": {"map_check": False},
                "ray": ray_section,
                **extra,
            }
        )
    )
    return config


def _rows(tmp_path) -> dict[str, dict]:
    with (tmp_path / "out" / "results.csv").open(newline="") as f:
        return {r["model"]: r for r in csv.DictReader(f)}


def _span(row: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(row["started"]), datetime.fromisoformat(row["finished"])


def test_ray_section_is_checked_with_the_file_and_key(tmp_path):
    config = _config(tmp_path, [{"backbone": "yolov5n"}], {"cpus_per_rows": 1})
    with pytest.raises(StudyConfigError, match=r"study.yaml: ray: unknown key 'cpus_per_rows'; did you mean"):
        load_config(config)
    config = _config(tmp_path, [{"backbone": "yolov5n"}], {"object_store_mb": 10})
    with pytest.raises(StudyConfigError, match=r"ray.object_store_mb must be a number >= 80"):
        load_config(config)
    config = _config(tmp_path, [{"backbone": "yolov5n", "resources": {"gpu_box": -1}}], {})
    with pytest.raises(StudyConfigError, match=r"detectors\[0\]: resources must map Ray resource names"):
        load_config(config)
    cfg = load_config(_config(tmp_path, [{"backbone": "yolov5n", "resources": {"gpu_box": 1}}], {"num_cpus": 2}))
    assert cfg["ray"]["address"] == "local" and cfg["ray"]["num_cpus"] == 2 and cfg["ray"]["cpus_per_row"] == 1
    assert cfg["detectors"][0]["resources"] == {"gpu_box": 1.0}


def test_ray_flag_without_ray_installed_is_one_line_and_exit_2(tmp_path):
    config = _config(tmp_path, [{"backbone": "yolov5n"}], None)
    hide = (
        "import sys; sys.modules['ray'] = None; from lwdet.cli.study import main; raise SystemExit(main(sys.argv[1:]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", hide, str(config), "--ray"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [
        'error: a study on Ray needs Ray, which is not installed: pip install "lwdet[ray]"'
    ]
    assert not (tmp_path / "out" / "results.csv").exists()


def test_rows_run_as_concurrent_ray_tasks_a_failure_stays_in_its_row_and_a_rerun_trains_nothing(tmp_path):
    detectors = [
        {"backbone": "shufflenetv2_050", "neck": "lite", "head": "lite", "id": "a"},
        {"backbone": "mobilenetv3_small", "neck": "lite", "head": "lite", "id": "b"},
        {"backbone": "shufflenetv2_050", "neck": "lite", "head": "lite", "id": "a-student", "teacher": "a"},
        {"model": "no-such-detector.yaml", "id": "broken"},
    ]
    config = _config(tmp_path, detectors, {"num_cpus": 2, "cpus_per_row": 1, "object_store_mb": 80})
    cmd = [sys.executable, "-m", "lwdet.study", str(config), "--ray"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    rows = _rows(tmp_path)
    assert list(rows) == ["a", "b", "a-student", "broken"]  # plan order, whatever order the tasks finished in

    for name in ("a", "b", "a-student"):
        row = rows[name]
        assert row["status"] == "done" and row["error"] == "", row
        assert float(row["latency_ms_t1"]) > 0 and float(row["map5095"]) >= 0  # timed after training
        assert "/" in row["node"]  # host/ray node id
    (a0, a1), (b0, b1), (s0, _) = _span(rows["a"]), _span(rows["b"]), _span(rows["a-student"])
    assert a0 < b1 and b0 < a1, "the two independent rows did not run at the same time"
    assert s0 >= a1, "the student started before its teacher finished"

    side = list(csv.DictReader((tmp_path / "out" / "latency.csv").open()))  # one side-by-side pass, after training
    assert {r["model"] for r in side if r["kind"] == "lwdet"} == {"a", "b", "a-student"}
    assert {r["rounds"] for r in side} == {"3"}  # bench.passes' default
    fastest = {r["model"]: float(r["infer_min_ms"]) for r in side if r["threads"] == "1"}
    assert all(abs(float(rows[n]["latency_ms_t1"]) - fastest[n]) < 1e-3 for n in fastest)  # what results.csv says
    broken = rows["broken"]
    assert broken["status"] == "failed" and "no-such-detector" in broken["error"] and "\n" not in broken["error"]
    report = (tmp_path / "docs" / "report.md").read_text()
    assert "Failed (not in the tables" in report and "broken: " in report
    assert "one side-by-side pass after training" in report

    # again: the finished rows are skipped (nothing trains, their epoch logs are untouched); the failed one is retried
    assert all(rows[n]["run_dir"] == n for n in rows)  # stored relative to the study's out
    epochs = {n: (tmp_path / "out" / rows[n]["run_dir"] / "results.csv").read_text() for n in ("a", "b", "a-student")}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stderr.count("complete, skipped") == 3 and "broken: submitted" in r.stderr
    again = _rows(tmp_path)
    assert {n: again[n] for n in epochs} == {n: rows[n] for n in epochs}
    assert {n: (tmp_path / "out" / rows[n]["run_dir"] / "results.csv").read_text() for n in epochs} == epochs
    assert again["broken"]["status"] == "failed"


def test_a_row_with_a_custom_resource_runs_on_the_node_that_has_it_and_the_bench_node_times(tmp_path, caplog):
    from ray.cluster_utils import Cluster

    from lwdet.study.distributed import run_study_ray

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    second = cluster.add_node(num_cpus=1, resources={"second": 1, "bench": 1})
    head, node = cluster.head_node.node_id, second.node_id
    try:
        config = _config(
            tmp_path,
            [{"backbone": "shufflenetv2_050", "neck": "lite", "head": "lite", "resources": {"second": 1}}],
            {"address": cluster.address},
        )
        with caplog.at_level("INFO", logger="lwdet.study.distributed"):
            run_study_ray(config, report=False)
    finally:
        ray.shutdown()
        cluster.shutdown()
    (row,) = _rows(tmp_path).values()
    assert row["status"] == "done", row
    assert row["node"].endswith("/" + node[:12]) and node[:12] != head[:12]
    assert "side-by-side timing on the 'bench' node" in caplog.text  # the pass went to the node that has `bench`
    assert float(row["latency_ms_t1"]) > 0 and (tmp_path / "out" / "latency.csv").is_file()
