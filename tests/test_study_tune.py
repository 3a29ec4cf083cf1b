"""A study's `tune:` section (issue 35, point 2): every row tuned with the same budget on val (Ray Tune, the search's
trial machinery), the chosen configuration's seeds trained and read on the test split, the cost recorded."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lwdet.experiment.tuning import at_edge, dimension
from lwdet.study import StudyConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = {"epochs": 2, "imgsz": 64, "batch": 32, "workers": 0, "fraction": 0.25}
TUNE = {"space": {"lr0": [0.004, 0.03]}, "trials": 2, "asha": {"grace_period": 1, "reduction_factor": 2}}


def _config(tmp_path, tune, detectors=None, **extra) -> Path:
    path = tmp_path / "study.yaml"
    rows = detectors or [{"backbone": "yolov5n"}, {"backbone": "shufflenetv2_050", "neck": "lite", "head": "lite"}]
    path.write_text(yaml.safe_dump({"out": str(tmp_path / "out"), "budget": TINY, "detectors": rows, "tune": tune,
                                    **extra}))  # fmt: skip
    return path


@pytest.mark.parametrize(
    "tune, rows, message",
    [
        ({"trials": 2}, None, "tune must be a mapping with a 'space'"),
        ({"space": {"imgsz": [64, 96]}}, None, "tune: space: unknown key 'imgsz'"),
        ({"space": {"lr00": [0.01]}}, None, "did you mean 'lr0'"),
        ({"space": {"lr0": {"log_uniform": [0.03, 0.003]}}}, None, "tune.space.lr0: log_uniform needs"),
        ({"space": {"nbs": {"uniform": [16, 64]}}}, None, "tune.space.nbs: give the choices as a list"),
        ({**TUNE, "trials": 0}, None, "tune.trials must be a whole number >= 1"),
        ({**TUNE, "asha": {"grace_period": 3}}, None, "grace_period <= the trials' epochs \\(2\\)"),
        ({**TUNE, "metric": "f1"}, None, "tune.metric must be one of map5095, map50"),
        ({**TUNE, "space": {"lr0": ["fast"]}}, None, "tune.space"),
        (TUNE, [{"backbone": "yolov5n", "train": {"lr0": 0.02}}], "detectors\\[0\\]: train sets lr0, which tune"),
        (TUNE, [{"backbone": "yolov5n", "id": "t"}, {"backbone": "yolov5n", "teacher": "t"}],
         "detectors\\[1\\]: a row with a teacher is not tuned"),
    ],
)  # fmt: skip
def test_tune_config_errors_name_the_file_and_key(tmp_path, tune, rows, message):
    path = _config(tmp_path, tune, rows)
    with pytest.raises(StudyConfigError, match=message) as e:
        load_config(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_tune_defaults_give_every_row_the_budget_and_seed():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t = load_config(_config(Path(tmp), {"space": {"lr0": {"log_uniform": [0.003, 0.03]}, "nbs": [16, 64]}}))["tune"]
    assert t["trials"] == 6 and t["epochs"] == TINY["epochs"] and t["seed"] == 0 and t["metric"] == "map5095"
    assert t["space"] == {"lr0": {"log_uniform": [0.003, 0.03]}, "nbs": {"choices": [16, 64]}}
    # ASHA's first rung within the trials' epochs when not given (the search's default, 10, otherwise)
    assert t["asha"] == {"grace_period": 2, "reduction_factor": 3} and t["searcher"] == "random"


def test_a_chosen_value_at_the_space_edge_is_flagged():
    log = dimension("t", "lr0", {"log_uniform": [0.001, 0.1]})
    assert at_edge(log, 0.0012) and at_edge(log, 0.09)  # the outer tenth of the log range (0.0016 / 0.063)
    assert not at_edge(log, 0.01) and not at_edge(log, 0.002)
    lin = dimension("t", "scale", {"uniform": [0.0, 1.0]})
    assert at_edge(lin, 0.95) and not at_edge(lin, 0.5)
    nbs = dimension("t", "nbs", [16, 32, 64])
    assert at_edge(nbs, 16) and at_edge(nbs, 64) and not at_edge(nbs, 32)
    assert not at_edge(dimension("t", "nbs", [64]), 64)  # fixed: nothing was searched


def _data_with_a_test_split(tmp_path) -> Path:
    """lwdet's default dataset (no test split of its own) with its val images standing in for a test split."""
    from lwdet.data import DEFAULT_DATA, ensure_dataset

    data = ensure_dataset(DEFAULT_DATA)
    path = tmp_path / "data-with-test.yaml"
    path.write_text(yaml.safe_dump({"path": data["path"], "train": "images/train", "val": "images/val",
                                    "test": "images/val", "names": data["names"]}))  # fmt: skip
    return path


def _study(config):
    return subprocess.run([sys.executable, "-m", "lwdet.study", str(config), "--no-report"], capture_output=True,
                          text=True, cwd=ROOT, timeout=1200)  # fmt: skip


@pytest.mark.slow
@pytest.mark.train
def test_every_row_gets_the_same_trials_then_its_chosen_configuration_trains_its_seeds_on_the_test_split(tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional extra lwdet[ray]")
    config = _config(
        tmp_path,
        TUNE,
        [
            {"backbone": "yolov5n"},
            {"backbone": "shufflenetv2_050", "neck": "lite", "head": "lite", "seeds": [1], "train": {"lrf": 0.02}},
        ],
        data=str(_data_with_a_test_split(tmp_path)),
        bench={"threads": [1], "loops": 3, "warmup": 1, "passes": 1, "parts": False, "onnx": False, "peers": ""},
        export={"map_check": False},
    )
    r = _study(config)
    assert r.returncode == 0, r.stderr[-4000:]
    out = tmp_path / "out"
    chosen = {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("tune/*/chosen.json"))}
    lite = "yolov5n-shufflenetv2_050-litepan-litehead"
    assert set(chosen) == {"yolov5n", lite}
    draws = {}
    for name, c in chosen.items():  # the same budget: trials, epochs per trial, and the same draws for every row
        assert c["trials"] == 2 and len(c["all"]) == 2 and c["trial_epochs"] == 2 and c["split"] == "val"
        assert c["epochs"] == sum(t["epochs"] for t in c["all"]) and 2 <= c["epochs"] <= 4
        assert c["cpu_s"] > 0 and all(t["cpu_s"] > 0 for t in c["all"])
        best = max((t for t in c["all"] if t["epochs"] == 2), key=lambda t: t["map5095"])
        assert c["chosen"] == best["config"] and c["val_map5095"] == best["map5095"]
        assert c["edge"] == ["lr0"]  # two choices: either one is an end of what was searched
        draws[name] = [t["config"]["lr0"] for t in c["all"]]
    assert draws["yolov5n"] == draws[lite]
    rows = {row["model"]: row for row in csv.DictReader((out / "results.csv").open())}
    assert set(rows) == {"yolov5n", lite, f"{lite}-seed1"}
    for name, row in rows.items():
        c = chosen["yolov5n" if name == "yolov5n" else lite]
        lr0 = c["chosen"]["lr0"]
        assert row["status"] == "done" and row["tuned"] == f"lr0={lr0}" and row["tune_edge"] == "lr0"
        assert int(row["tune_trials"]) == 2 and int(row["tune_epochs"]) == c["epochs"]
        assert float(row["tune_cpu_s"]) == pytest.approx(c["cpu_s"])
        assert row["test_map5095"] != "" and row["test_map50"] != ""  # the runs read the test split
        args = yaml.safe_load((out / name / "args.yaml").read_text())
        assert args["lr0"] == lr0 and args["epochs"] == 2  # the chosen configuration, the full budget
        if name != "yolov5n":
            assert args["lrf"] == 0.02 and row["train"] == f"lr0={lr0} lrf=0.02"  # the row's own arguments kept
    assert rows[f"{lite}-seed1"]["seed"] == "1"

    r = _study(config)  # again: nothing tuned or trained again
    assert r.returncode == 0, r.stderr[-4000:]
    assert "tuning" not in r.stderr and r.stderr.count("complete, skipped") == 3
