"""lwdet search: the space and budget checked, candidates over the latency budget never train, trials under ASHA
(Ray Tune, local Ray: dashboard off, small object store), the output a study with its report, resumable."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lwdet.search import SearchConfigError, load_search

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("ray", reason="Ray is the optional extra lwdet[ray]")

QUICK_BENCH = {"threads": [1], "loops": 10, "warmup": 2, "passes": 2, "peers": ""}
RAY = {"num_cpus": 2, "object_store_mb": 80}


def _config(tmp_path, **over) -> Path:
    cfg = {
        "out": str(tmp_path / "out"),
        "budget": {"epochs": 2, "imgsz": 64, "batch": 32, "workers": 0, "fraction": 0.25},
        "space": {"backbone": ["shufflenetv2_050", "mobilenetv3"], "neck": ["lite"], "head": ["lite"]},
        "max_latency": "0.25x yolov5n",
        "trials": 2,
        "asha": {"grace_period": 1, "reduction_factor": 2},
        "ray": RAY,
        "bench": QUICK_BENCH,
        **over,
    }
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _search(config, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "lwdet.search", str(config)], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "over, message",
    [
        ({"spaces": {}}, r"search.yaml: unknown key 'spaces'; did you mean 'space'"),
        ({"max_latency": "fast please"}, r"max_latency 'fast please' is neither a ratio"),
        ({"space": {"backbone": ["shufflenetv2_050"], "lr": [0.01]}}, r"space: unknown key 'lr'; did you mean"),
        ({"space": {"backbone": ["nosuchnet"]}}, r"search.yaml: space: .*nosuchnet"),
        ({"space": {"backbone": ["shufflenetv2_050"], "lr0": {"log_uniform": [0, 1]}}}, r"lr0: log_uniform needs"),
        ({"searcher": "optuna"}, r"searcher must be one of random, grid"),
    ],
)
def test_search_config_errors_name_the_file_and_key(tmp_path, over, message):
    with pytest.raises(SearchConfigError, match=message):
        load_search(_config(tmp_path, **over))


def test_budgets_parse_as_a_ratio_or_a_projected_board_figure(tmp_path):
    assert load_search(_config(tmp_path))["max_latency"] == {
        "kind": "ratio", "value": 0.25, "reference": "yolov5n", "text": "0.25x yolov5n"
    }  # fmt: skip
    board = load_search(_config(tmp_path, max_latency="pi5-t4 <= 15 ms"))["max_latency"]
    assert board["kind"] == "board" and board["target"] == "pi5-t4" and board["ms"] == 15.0


def test_a_search_screens_trains_only_the_feasible_and_writes_a_study_with_a_winner(tmp_path):
    config = _config(tmp_path)
    r = _search(config)
    assert r.returncode == 0, r.stderr[-4000:]
    out = tmp_path / "out"
    screen = {row["backbone"]: row for row in _csv(out / "screen.csv")}
    assert screen["shufflenetv2_050"]["feasible"] == "True" and float(screen["shufflenetv2_050"]["ratio"]) <= 0.25
    assert screen["mobilenetv3"]["feasible"] == "False" and float(screen["mobilenetv3"]["ratio"]) > 0.25
    assert "OVER budget: not trained" in r.stderr

    rows = _csv(out / "results.csv")
    assert len(rows) == 2 and {row["backbone"] for row in rows} == {"shufflenetv2_050"}  # the other never trained
    trained = [p.read_text() for p in (out / "trials").glob("*/yolov5n-*.yaml")]  # each trial's model YAML copy
    assert len(trained) == 2 and all("shufflenet" in t for t in trained)
    for row in rows:
        assert row["status"] == "done" and int(row["epochs"]) >= 1 and row["map5095"] != ""
        assert float(row["latency_ms_t1"]) == float(screen["shufflenetv2_050"]["latency_ms_t1"])
        assert not Path(row["run_dir"]).is_absolute()  # stored relative to the search's out
        assert (out / row["run_dir"] / "results.csv").is_file()  # the engine's epoch log, for the report's curves
    side = _csv(out / "latency.csv")  # the screen's pass, rows named by trial: the report's latency
    assert {s["model"] for s in side} >= {row["model"] for row in rows} | {"reference-yolov5n"}
    report = (out / "report" / "report.md").read_text()
    assert "one side-by-side pass" in report and (out / "report" / "pareto_latency_map.png").is_file()
    winner = json.loads((out / "winner.json").read_text())
    assert winner["model"] in {row["model"] for row in rows} and winner["budget"] == "0.25x yolov5n"
    assert (out / "winner.yaml").read_text() == Path(screen["shufflenetv2_050"]["yaml"]).read_text()

    # again: the experiment is restored, finished trials are not trained again
    logs = {p: p.read_text() for p in (out / "trials").glob("*/results.csv")}
    r = _search(config)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "latency screen: reusing" in r.stderr and "resuming the search" in r.stderr
    assert {p: p.read_text() for p in logs} == logs and len(_csv(out / "results.csv")) == 2


def test_no_candidate_within_the_budget_is_one_line_and_exit_2(tmp_path):
    config = _config(tmp_path, max_latency="0.001x yolov5n", space={"backbone": ["shufflenetv2_050"]})
    r = _search(config)
    assert r.returncode == 2, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no candidate within max_latency '0.001x yolov5n'" in last
    assert not (tmp_path / "out" / "trials").exists()


fmnist = pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)


@fmnist
@pytest.mark.slow
@pytest.mark.train
def test_asha_stops_a_weak_trial_early_and_a_killed_search_resumes(tmp_path):
    # RepGhostNet-0.5 learns something by epoch 2 on the benchmark set at lr0 0.01 (docs/study-frontier); at lr0 0
    # nothing: at the rung (epoch 2) ASHA stops a trial that has learnt nothing once the learning one is recorded
    config = _config(
        tmp_path,
        data=str(ROOT / "lwdet" / "cfg" / "datasets" / "fmnist-bench-s.yaml"),
        budget={"epochs": 3, "imgsz": 160, "batch": 16, "workers": 0},
        space={"backbone": ["repghostnet_050"], "neck": ["lite"], "head": ["slim"], "lr0": [0.01, 0.0, 1.0e-12]},
        max_latency="1x yolov5n",
        searcher="grid",
        asha={"grace_period": 2, "reduction_factor": 2},
    )
    log = (tmp_path / "first.log").open("w")  # a file, not a pipe: Ray's output must never block the search
    proc = subprocess.Popen([sys.executable, "-m", "lwdet.search", str(config)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.time() + 900
    while time.time() < deadline and not any(
        len(p.read_text().splitlines()) >= 2 for p in (tmp_path / "out" / "trials").glob("*/results.csv")
    ):
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(2)
    proc.send_signal(signal.SIGINT)  # Ctrl-C after the first epoch of a trial
    proc.wait(timeout=300)
    log.close()
    said = (tmp_path / "first.log").read_text()
    assert proc.returncode == 130, said[-3000:]
    assert "interrupted; run the same command again to resume the search" in said and "Traceback" not in said
    assert not (tmp_path / "out" / "results.csv").exists()  # stopped before the end

    r = _search(config, timeout=1800)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "resuming the search" in r.stderr
    rows = _csv(tmp_path / "out" / "results.csv")
    assert sorted(float(row["lr0"]) for row in rows) == [0.0, 1.0e-12, 0.01]
    assert any(row["stopped_early"] == "True" and int(row["epochs"]) == 2 for row in rows), rows
    best = max(rows, key=lambda row: float(row["map5095"]))
    assert float(best["lr0"]) == 0.01 and best["stopped_early"] == "False" and int(best["epochs"]) == 3


def test_the_dataset_is_built_once_by_the_driver_and_pinned_for_the_trials(tmp_path, monkeypatch):
    """Tune runs each trial in its own working folder: ``./datasets`` there would be a new, missing dataset."""
    from lwdet.cfg import DATASETS_ENV, datasets_root
    from lwdet.search import _pin_datasets

    monkeypatch.delenv(DATASETS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    from lwdet.data import DEFAULT_DATA

    _pin_datasets({"data": str(DEFAULT_DATA)})  # the shipped default dataset (lwdet/cfg/datasets/fmnist-det.yaml)
    assert (tmp_path / "datasets" / "fmnist-det" / "images" / "train").is_dir()
    (tmp_path / "trial").mkdir()
    monkeypatch.chdir(tmp_path / "trial")  # as a trial does
    assert datasets_root() == tmp_path / "datasets"


@pytest.mark.parametrize("command", ["lwdet.search", "lwdet.study"])
def test_a_head_that_does_not_answer_is_one_line_and_exit_2_within_seconds(tmp_path, command):
    """Ray alone retries an address that does not answer for minutes; lwdet knocks first (issue 35, point 6)."""
    config = _config(tmp_path)
    if command == "lwdet.study":
        config.write_text(yaml.safe_dump({"out": str(tmp_path / "out"), "detectors": [{"backbone": "yolov5n"}]}))
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", command, str(config), "--ray", "127.0.0.1:1"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    took = time.monotonic() - t0
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("error: ") and "ray address '127.0.0.1:1': nothing answers" in lines[0]
    )
    assert took < 30, f"{took:.0f} s"  # interpreter and torch imports included
    assert not (tmp_path / "out").exists()
