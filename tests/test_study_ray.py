"""A study on Ray (lwdet.study.distributed): rows as tasks on a local Ray, a failing row, teachers first, a second node,
a node killed mid-row.

Ray runs here with its dashboard off and a small object store; each test starts its own Ray and shuts it down.
"""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import psutil
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


class RayNodes:
    """A local cluster started the way a user starts one (``ray start``), each node's processes marked through their
    environment (``LWDET_TEST_RAY``) so that the test kills exactly those at the end, and never another Ray."""

    RAY = str(Path(sys.executable).with_name("ray"))

    def __init__(self):
        self.mark = uuid.uuid4().hex
        self.temp = tempfile.mkdtemp(prefix="lwr", dir="/tmp")  # short: Ray's sockets live under it
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            "RAY_AUTH_MODE": "disabled",  # a cluster of this test only, on 127.0.0.1; no token from ~/.ray
            "RAY_USAGE_STATS_ENABLED": "0",
            "LWDET_TEST_RAY": self.mark,
        }
        self.address = ""

    def processes(self) -> list:
        found = []
        for p in psutil.process_iter():
            try:
                if p.pid != os.getpid() and p.environ().get("LWDET_TEST_RAY") == self.mark:
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def start(self, resources: dict, head: bool = False) -> psutil.Process:
        """Start a node with one CPU and ``resources``; returns its raylet."""
        before = {p.pid for p in self.processes()}
        if head:
            port = _free_port()
            where = ["--head", "--port", str(port), "--include-dashboard", "false"]
            self.address = f"127.0.0.1:{port}"
        else:
            where = ["--address", self.address]
        cmd = [self.RAY, "start", *where, "--node-ip-address", "127.0.0.1", "--num-cpus", "1"]
        cmd += ["--resources", json.dumps(resources), "--object-store-memory", str(80 * 2**20)]
        cmd += ["--temp-dir", self.temp, "--disable-usage-stats"]
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=120)
        assert r.returncode == 0, r.stderr[-3000:]
        (raylet,) = [p for p in self.processes() if p.pid not in before and p.name() == "raylet"]
        return raylet

    def stop(self) -> None:
        for p in self.processes():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(self.processes(), timeout=10)
        shutil.rmtree(self.temp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_id(raylet: psutil.Process) -> str:
    (arg,) = [a for a in raylet.cmdline() if a.startswith("--node_id=")]
    return arg.removeprefix("--node_id=")


@pytest.fixture
def ray_nodes():
    nodes = RayNodes()
    try:
        yield nodes
    finally:
        nodes.stop()
        assert not nodes.processes(), "Ray processes of the test are still running"


@pytest.mark.slow
@pytest.mark.train
def test_a_killed_node_loses_nothing_its_row_fails_in_one_line_and_the_same_command_finishes_it(tmp_path, ray_nodes):
    ray_nodes.start({"first": 1}, head=True)
    doomed = ray_nodes.start({"second": 1})
    detectors = [
        {"backbone": "shufflenetv2_050", "neck": "lite", "head": "lite", "id": "pinned", "resources": {"second": 1}},
        {"backbone": "mobilenetv3_small", "neck": "lite", "head": "lite", "id": "other", "resources": {"first": 1}},
    ]
    config = _config(tmp_path, detectors, {"address": ray_nodes.address}, budget={**TINY, "epochs": 3})
    cmd = [sys.executable, "-m", "lwdet.study", str(config), "--ray", ray_nodes.address, "--no-report"]
    env = {**ray_nodes.env, "LWDET_RAY_RESOURCE_WAIT_S": "5"}
    run_dir = tmp_path / "out" / "pinned"
    log = tmp_path / "first.log"
    with log.open("w") as err:
        driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=env, text=True)
        try:
            deadline = time.monotonic() + 600
            while not (run_dir / "weights" / "last.pt").is_file():  # mid-row: its first epoch saved
                assert driver.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(0.2)
            doomed.kill()  # the node's raylet, SIGKILL: Ray's node death
            assert driver.wait(timeout=600) == 0, log.read_text()[-4000:]
        finally:
            if driver.poll() is None:
                driver.kill()
    first = log.read_text()
    rows = _rows(tmp_path)
    assert rows["other"]["status"] == "done", rows["other"]  # the other row finished, timed
    assert float(rows["other"]["latency_ms_t1"]) > 0
    pinned = rows["pinned"]
    assert pinned["status"] == "failed" and "\n" not in pinned["error"], pinned
    assert pinned["error"].startswith("no live node has the Ray resources second: 1 (waited 5 s)"), pinned["error"]
    assert "pinned: no live node has the Ray resources second: 1; waiting up to 5 s" in first
    torch = pytest.importorskip("torch")
    saved = torch.load(run_dir / "weights" / "last.pt", map_location="cpu", weights_only=False)
    assert saved["epoch"] >= 0  # the half-trained run is intact: its checkpoint loads

    # a new node with the resource joins; the same command finishes the row (resuming it) and retrains nothing else
    fresh = _node_id(ray_nodes.start({"second": 1}))
    other_epochs = (tmp_path / "out" / "other" / "results.csv").read_text()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "other: complete, skipped" in r.stderr and "pinned: submitted" in r.stderr
    again = _rows(tmp_path)
    trained = ("started", "finished", "node", "map5095", "train_s")  # its training, untouched (latency: timed again)
    assert {k: again["other"][k] for k in trained} == {k: rows["other"][k] for k in trained}
    assert (tmp_path / "out" / "other" / "results.csv").read_text() == other_epochs
    pinned = again["pinned"]
    assert pinned["status"] == "done" and pinned["error"] == "", pinned
    assert pinned["node"].endswith("/" + fresh[:12]) and float(pinned["latency_ms_t1"]) > 0
    with (run_dir / "results.csv").open(newline="") as f:  # each epoch once: resumed, not started over
        assert [int(float(e["epoch"])) for e in csv.DictReader(f)] == [1, 2, 3]
    assert "resuming" in r.stderr and not list((tmp_path / "out").glob("pinned.incomplete-*"))


@pytest.mark.slow
@pytest.mark.train
def test_a_row_whose_node_dies_is_retried_on_a_node_that_joins_and_resumes_its_last_checkpoint(tmp_path, ray_nodes):
    ray_nodes.start({}, head=True)
    doomed = ray_nodes.start({"second": 1})
    row = {"backbone": "shufflenetv2_050", "neck": "lite", "head": "lite", "id": "pinned", "resources": {"second": 1}}
    config = _config(tmp_path, [row], {"address": ray_nodes.address}, budget={**TINY, "epochs": 3})
    cmd = [sys.executable, "-m", "lwdet.study", str(config), "--ray", ray_nodes.address, "--no-report"]
    run_dir = tmp_path / "out" / "pinned"
    log = tmp_path / "driver.log"
    with log.open("w") as err:
        driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=ray_nodes.env, text=True)
        try:
            deadline = time.monotonic() + 600
            while not (run_dir / "weights" / "last.pt").is_file():
                assert driver.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(0.2)
            doomed.kill()
            fresh = _node_id(ray_nodes.start({"second": 1}))  # joins while the driver waits: Ray retries the row there
            assert driver.wait(timeout=600) == 0, log.read_text()[-4000:]
        finally:
            if driver.poll() is None:
                driver.kill()
    (done,) = _rows(tmp_path).values()
    assert done["status"] == "done" and done["error"] == "", done
    assert done["node"].endswith("/" + fresh[:12])
    with (run_dir / "results.csv").open(newline="") as f:
        assert [int(float(e["epoch"])) for e in csv.DictReader(f)] == [1, 2, 3]
    assert "pinned: resuming" in log.read_text()


def test_rows_no_live_node_can_run_name_what_is_missing_and_a_dead_node_is_one_line(monkeypatch):
    from lwdet.study.distributed import died, needs, resource_wait_s, unplaceable

    nodes = [
        {"NodeID": "head", "Alive": True, "Resources": {"CPU": 1.0, "first": 1.0}},
        {"NodeID": "dead", "Alive": False, "Resources": {"CPU": 1.0, "second": 1.0}},
        {"NodeID": "gpu", "Alive": True, "Resources": {"CPU": 4.0, "GPU": 1.0}},
    ]
    wants = {
        "pinned": needs({"resources": {"second": 1}}, 1, 0),  # its node died
        "free": needs({}, 1, 0),
        "first": needs({"resources": {"first": 1}}, 1, 0),
        "together": needs({"resources": {"first": 1}}, 1, 1),  # GPU and `first` exist, never on one node
    }
    assert wants["free"] == {"CPU": 1.0} and needs({}, 0, 0) == {}
    assert unplaceable(nodes, wants) == {"pinned": {"second": 1.0}, "together": {"CPU": 1.0, "GPU": 1.0, "first": 1.0}}
    assert unplaceable(nodes, {"nothing": {}}) == {}  # a row that asks for nothing: any live node

    e = ray.exceptions.NodeDiedError("Task failed because the node it was running on is dead. node ID: " + "ab" * 28)
    assert died(ray, e) == (
        "its node abababababab died (NodeDiedError, tried 2 times); the same command resumes it from its last.pt"
    )
    assert died(ray, ValueError("no")) is None
    monkeypatch.setenv("LWDET_RAY_RESOURCE_WAIT_S", "7.5")
    assert resource_wait_s() == 7.5
    monkeypatch.setenv("LWDET_RAY_RESOURCE_WAIT_S", "soon")
    with pytest.raises(StudyConfigError, match="LWDET_RAY_RESOURCE_WAIT_S must be a number of seconds, got 'soon'"):
        resource_wait_s()


@pytest.mark.slow
@pytest.mark.train
def test_a_tuned_study_on_ray_tunes_each_row_on_the_same_ray_then_trains_the_chosen_configuration(tmp_path):
    """`tune:` on the study's Ray (the rows' tasks and the trials share it): each row tuned, its run trained with the
    chosen arguments, the tuning recorded in its results row."""
    config = _config(
        tmp_path,
        [{"backbone": "yolov5n"}],
        {"num_cpus": 2, "object_store_mb": 80},
        tune={"space": {"lr0": [0.004, 0.03]}, "trials": 2, "asha": {"grace_period": 1}},
    )
    r = subprocess.run([sys.executable, "-m", "lwdet.study", str(config), "--no-report"], capture_output=True,
                       text=True, cwd=ROOT, timeout=900)  # fmt: skip
    assert r.returncode == 0, r.stderr[-4000:]
    chosen = json.loads((tmp_path / "out" / "tune" / "yolov5n" / "chosen.json").read_text())
    assert chosen["trials"] == 2 and chosen["chosen"]["lr0"] in (0.004, 0.03)
    row = _rows(tmp_path)["yolov5n"]
    assert row["status"] == "done" and row["tuned"] == f"lr0={chosen['chosen']['lr0']}" and row["tune_trials"] == "2"
    args = yaml.safe_load((tmp_path / "out" / "yolov5n" / "args.yaml").read_text())
    assert args["lr0"] == chosen["chosen"]["lr0"]
