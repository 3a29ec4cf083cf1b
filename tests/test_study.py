import csv
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from lwdet.study import COLUMNS, StudyConfigError, claim, load_config, merge_result, plan, run_study, select

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "peers" / "ncnn"


# ------------------------------------------------------------------ benchmark dataset (lwdet.data.benchmark)
fmnist = pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)


@fmnist
def test_benchmark_splits_have_disjoint_item_sources():
    from lwdet.data.benchmark import split_bank

    train, val, test = (split_bank(s) for s in ("train", "val", "test"))
    assert train.source_index.max() < 50000 <= val.source_index.min() and val.source_index.max() < 60000
    assert test.split_names == ("t10k[0:10000)",) and len(test.images) > 9000
    assert {len(np.unique(b.labels)) for b in (train, val, test)} == {10}


@fmnist
def test_benchmark_render_is_deterministic_and_splits_differ():
    from lwdet.data.benchmark import render

    a, b = render(0, "val", 3), render(0, "val", 3)
    assert a.image.tobytes() == b.image.tobytes() and np.array_equal(a.boxes, b.boxes)
    assert render(0, "test", 3).image.tobytes() != a.image.tobytes()
    assert render(1, "val", 3).image.tobytes() != a.image.tobytes()
    classes = np.concatenate([render(0, "train", i).classes for i in range(12)])
    assert len(np.unique(classes)) == 10  # every class, the similar tops included


@fmnist
def test_build_benchmark_set_and_stats(tmp_path):
    from lwdet.data.benchmark import build_benchmark_set, dataset_stats

    out = build_benchmark_set(tmp_path / "b", seed=0, n_train=3, n_val=2, n_test=2)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert set(data) == {"path", "train", "val", "test", "names"} and len(data["names"]) == 10
    stats = json.loads((out / "stats.json").read_text())
    assert [stats["splits"][s]["images"] for s in ("train", "val", "test")] == [3, 2, 2]
    assert stats == {**dataset_stats(out / "data.yaml"), "data": stats["data"]}
    assert sum(stats["splits"]["train"]["box_size_hist"].values()) == stats["splits"]["train"]["boxes"] > 0
    assert "| images | 3 | 2 | 2 |" in (out / "stats.md").read_text()
    with pytest.raises(FileExistsError):
        build_benchmark_set(out, n_train=1, n_val=1, n_test=1)
    parallel = build_benchmark_set(tmp_path / "p", seed=0, n_train=3, n_val=2, n_test=2, workers=2)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.suffix in (".jpg", ".txt"))
    assert len(files) == 14
    assert all((parallel / f).read_bytes() == (out / f).read_bytes() for f in files)  # same files, any worker count


@fmnist
def test_data_yaml_with_lwdet_bench_builds_the_set_on_first_use(tmp_path):
    from lwdet.data import ensure_dataset, write_engine_yaml

    shipped = yaml.safe_load((ROOT / "datasets" / "fmnist-bench-s.yaml").read_text())
    spec = {**shipped, "path": "b", "lwdet_bench": {"seed": 0, "n_train": 2, "n_val": 1, "n_test": 1}}
    data_yaml = tmp_path / "b.yaml"
    data_yaml.write_text(yaml.safe_dump(spec))
    data = ensure_dataset(data_yaml)
    assert data["path"] == str(tmp_path / "b") and len(list((tmp_path / "b" / "images" / "test").iterdir())) == 1
    engine = yaml.safe_load(write_engine_yaml(data_yaml, tmp_path / "engine.yaml").read_text())
    assert "lwdet_bench" not in engine and engine["test"] == "images/test"
    spec["lwdet_bench"]["n_tran"] = 5
    data_yaml.write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match=r"b.yaml: unknown key\(s\) in 'lwdet_bench': n_tran"):
        ensure_dataset(data_yaml)


# ----------------------------------------------------------------------------------- study
def test_config_keys_are_strict(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("detectors: [{backbone: yolov5n}]\nbudjet: {epochs: 1}\n")
    with pytest.raises(StudyConfigError, match="did you mean 'budget'"):
        load_config(bad)


@pytest.mark.parametrize(
    "config, seeds", [("study-cpu", ["yolov5n-seed1"]), ("study-bench", ["yolov5n-seed1", "yolov5n-seed2"])]
)
def test_shipped_configs_plan_baseline_seeds_and_lite_variants(config, seeds):
    runs = plan(load_config(ROOT / "configs" / f"{config}.yaml"))
    names = [r["name"] for r in runs]
    assert names[: 1 + len(seeds)] == ["yolov5n", *seeds] and len(set(names)) == len(names)
    assert "yolov5n-shufflenetv2_050-litepan-litehead" in names and "yolov5n-ghostnet_100-aspp" in names
    assert all(r["yaml"].is_file() and r["head"] in ("yolo", "lite", "nano") for r in runs)


def test_config_with_an_unshipped_or_unknown_head_is_refused(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("detectors: [{backbone: yolov5n, head: lit}]\n")
    with pytest.raises(StudyConfigError, match="detectors\\[0\\]: head 'lit' is not known; did you mean 'lite'"):
        plan(load_config(bad))
    bad.write_text("detectors: [{backbone: yolov5n, neck: aspp, head: lite}]\n")
    with pytest.raises(StudyConfigError, match="no shipped model YAML .* shipped for it: .*--neck lite --head lite"):
        plan(load_config(bad))


def _config(tmp_path, detectors, **extra):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"detectors": detectors, **extra}))
    return path


def test_teachers_train_first_and_students_are_named_after_them(tmp_path):
    path = _config(
        tmp_path,
        [
            {"backbone": "shufflenetv2_050", "neck": "lite", "head": "lite", "teacher": "big", "distill_weight": 0.5},
            {"backbone": "mobilenetv3_small", "teacher": "yolov5n"},
            {"backbone": "yolov5n"},
            {"model": "yolo26n.yaml", "id": "big", "teacher": "yolov5n"},  # the engine's own YAML: passed through
            {"model": "yolo11n.yaml"},
        ],
    )
    runs = plan(load_config(path))
    names = [r["name"] for r in runs]
    assert names == [
        "yolov5n",
        "big",
        "yolov5n-shufflenetv2_050-litepan-litehead-distill-big",
        "yolov5n-mobilenetv3_small_100-distill-yolov5n",
        "yolo11n",
    ]
    by = {r["name"]: r for r in runs}
    assert by["big"]["yaml"] == "yolo26n.yaml" and by["yolo11n"]["yaml"] == "yolo11n.yaml"
    assert (by["big"]["backbone"], by["big"]["neck"], by["big"]["head"]) == ("yolo26n", "", "")
    student = by["yolov5n-shufflenetv2_050-litepan-litehead-distill-big"]
    assert (student["teacher"], student["distill_weight"]) == ("big", 0.5)
    assert by["yolov5n-mobilenetv3_small_100-distill-yolov5n"]["distill_weight"] is None
    # --only a student brings its teachers along, in plan order
    assert [r["name"] for r in select(runs, ["yolov5n-shufflenetv2_050-litepan-litehead-distill-big"])] == [
        "yolov5n",
        "big",
        "yolov5n-shufflenetv2_050-litepan-litehead-distill-big",
    ]
    with pytest.raises(StudyConfigError, match="--only: no run named 'yolo11'; did you mean 'yolo11n'"):
        select(runs, ["yolo11"])


def test_rows_with_seeds_and_rep_plan_their_runs(tmp_path):
    runs = plan(
        load_config(
            _config(
                tmp_path,
                [
                    {"backbone": "yolov5n"},
                    {"backbone": "repghostnet", "neck": "lite", "head": "slim", "seeds": [1, 0, 2, 1]},
                    {"backbone": "repghostnet", "neck": "lite", "head": "slim", "rep": True, "seeds": [3]},
                ],
                baseline_seeds=[1],
            )
        )
    )
    base = "yolov5n-repghostnet_050-litepan-slimhead"
    assert [(r["name"], r["seed"]) for r in runs] == [
        ("yolov5n", 0),
        ("yolov5n-seed1", 1),
        (base, 0),  # the config's seed once, repeats dropped
        (f"{base}-seed1", 1),
        (f"{base}-seed2", 2),
        (f"{base}-rep", 0),
        (f"{base}-rep-seed3", 3),
    ]
    assert Path(runs[-1]["yaml"]).name == f"{base}-rep.yaml" and runs[-1]["neck"] == "lite"


def test_a_model_row_may_name_an_lwdet_yaml(tmp_path):
    (tmp_path / "mine.yaml").write_text((ROOT / "models" / "yaml" / "yolov5n.yaml").read_text())
    runs = plan(load_config(_config(tmp_path, [{"model": "yolov5n-ghostnet_100.yaml"}, {"model": "mine.yaml"}])))
    shipped = (ROOT / "models" / "yaml" / "yolov5n-ghostnet_100.yaml").resolve()  # the clone's symlink to lwdet/cfg
    assert [Path(r["yaml"]).resolve() for r in runs] == [shipped, tmp_path / "mine.yaml"]


@pytest.mark.parametrize(
    "detectors, message",
    [
        (
            [{"backbone": "yolov5n"}, {"backbone": "ghostnet", "teacher": "yolov5m"}],
            r"c.yaml: detectors\[1\] \(yolov5n-ghostnet_100-distill-yolov5m\): teacher 'yolov5m' is not the id of another "
            r"row; "
            r"did you mean 'yolov5n'\?",
        ),
        (
            [{"backbone": "yolov5n", "id": "a", "teacher": "b"}, {"backbone": "ghostnet", "id": "b", "teacher": "a"}],
            r"c.yaml: detectors\[0\] \(a\): teachers form a cycle: a -> b -> a",
        ),
        ([{"backbone": "yolov5n", "id": "a", "teacher": "a"}], r"detectors\[0\] \(a\): teachers form a cycle: a -> a"),
        (
            [{"backbone": "yolov5n", "distill_weight": 1.0}],
            r"c.yaml: detectors\[0\]: 'distill_weight' without a 'teacher'",
        ),
        (
            [{"backbone": "yolov5n", "id": "a"}, {"backbone": "ghostnet", "teacher": "a", "distill_weight": "x"}],
            r"detectors\[1\]: distill_weight must be a positive number, got 'x'",
        ),
        ([{"model": "yolo26n.yaml", "neck": "lite"}], r"detectors\[0\]: give either 'model' or 'backbone'"),
        ([{"model": "yolo26n"}], r"detectors\[0\]: model 'yolo26n' must be a model YAML"),
        ([{"backbone": "yolov5n", "techer": "x"}], r"detectors\[0\]: unknown key 'techer'; did you mean 'teacher'"),
        ([{"backbone": "yolov5n"}, {"backbone": "yolov5n"}], r"c.yaml: detectors repeat a run name \['yolov5n'\]"),
        ([{"backbone": "yolov5n", "seeds": [1, "2"]}], r"detectors\[0\]: seeds must be a list of integers"),
        ([{"backbone": "yolov5n", "seeds": 1}], r"detectors\[0\]: seeds must be a list of integers, got 1"),
        ([{"backbone": "lcnet", "rep": "yes"}], r"detectors\[0\]: rep must be true or false, got 'yes'"),
        ([{"model": "yolo26n.yaml", "rep": True}], r"detectors\[0\]: give either 'model' or 'backbone'"),
        (
            [{"backbone": "lcnet", "rep": True}],
            r"detectors\[0\]: .*--rep is shipped for --neck lite --head slim, --neck p45 --head slim only",
        ),
    ],
)
def test_teacher_and_model_row_errors_name_the_file_and_row(tmp_path, detectors, message):
    with pytest.raises(StudyConfigError, match=message):
        plan(load_config(_config(tmp_path, detectors)))


def test_inputs_resolve_beside_the_config_and_outputs_in_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "my-data.yaml").write_text("train: a\nval: a\nnames: [x]\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cfg = load_config(_config(tmp_path / "cfg", [{"backbone": "yolov5n"}], data="my-data.yaml", out="runs/s"))
    assert cfg["data"] == str(tmp_path / "cfg" / "my-data.yaml") and cfg["out"] == str(work / "runs" / "s")
    shipped = load_config(_config(tmp_path / "cfg", [{"backbone": "yolov5n"}], data="datasets/fmnist-det.yaml"))
    assert Path(shipped["data"]).is_file() and Path(shipped["data"]).name == "fmnist-det.yaml"  # lwdet's own


def test_a_rows_train_mapping_is_checked_planned_and_passed_to_the_trainer(tmp_path, monkeypatch):
    cfg = load_config(_config(tmp_path, [{"backbone": "yolov5n", "train": {"lr0": 0.02, "scale": 0.5}, "seeds": [1]}]))
    runs = plan(cfg)
    assert [r["train"] for r in runs] == [{"lr0": 0.02, "scale": 0.5}] * 2
    for bad, message in [
        ({"lr": 0.02}, r"c.yaml: detectors\[0\]: train: 'lr' is not a training argument of the engine; did you mean"),
        ({"seed": 3}, r"detectors\[0\]: train: seed is set by the budget's seed and the row's seeds"),
        ({"lr0": "fast"}, r"detectors\[0\]: train: lr0='fast'"),
    ]:
        with pytest.raises(StudyConfigError, match=message):
            load_config(_config(tmp_path, [{"backbone": "yolov5n", "train": bad}]))
    with pytest.raises(StudyConfigError, match=r"c.yaml: budget: 'epoch' is not a training argument"):
        load_config(_config(tmp_path, [{"backbone": "yolov5n"}], budget={"epoch": 3}))

    import lwdet.training

    calls = []

    def fake_train(model, data, run_dir, **kw):
        calls.append(kw)
        (Path(run_dir) / "weights").mkdir(parents=True)
        (Path(run_dir) / "weights" / "best.pt").write_bytes(b"")

    monkeypatch.setattr(lwdet.training, "train", fake_train)
    from lwdet.study import train_run

    train_run({**runs[1], "yaml": "x.yaml"}, tmp_path / "r", "d.yaml", {"epochs": 1, "lr0": 0.01})
    assert calls == [{"epochs": 1, "lr0": 0.02, "scale": 0.5, "seed": 1}]


def test_train_run_passes_a_teacher_only_to_a_student(tmp_path, monkeypatch):
    import lwdet.training

    calls = []

    def fake_train(model, data, run_dir, **kw):  # records the call; makes the files a finished run has
        calls.append(kw)
        (Path(run_dir) / "weights").mkdir(parents=True)
        (Path(run_dir) / "weights" / "best.pt").write_bytes(b"")

    monkeypatch.setattr(lwdet.training, "train", fake_train)
    from lwdet.study import train_run

    budget = {"epochs": 1, "imgsz": 64}
    train_run({"name": "a", "seed": 0, "yaml": "yolo26n.yaml"}, tmp_path / "a", "d.yaml", budget)
    train_run(
        {"name": "b", "seed": 0, "yaml": "x.yaml", "distill_weight": 0.5},
        tmp_path / "b",
        "d.yaml",
        budget,
        teacher=tmp_path / "a" / "weights" / "best.pt",
    )
    assert calls[0] == {"epochs": 1, "imgsz": 64, "seed": 0}
    assert calls[1] == {
        "epochs": 1,
        "imgsz": 64,
        "seed": 0,
        "teacher": tmp_path / "a" / "weights" / "best.pt",
        "distill_weight": 0.5,
    }
    assert (tmp_path / "b" / "study_trained.json").is_file()


def test_cli_missing_or_broken_config_is_one_line_and_exit_2(tmp_path):
    r = _study(tmp_path / "nope.yaml")
    assert r.returncode == 2 and r.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: study config not found"
    bad = tmp_path / "bad.yaml"
    bad.write_text("detectors: [{backbone: yolov5n}\nbudget: {\n")
    r = _study(bad)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "bad.yaml: line" in r.stderr
    bad.write_text("detectors: [{backbone: yolov5n, teacher: nobody}]\n")
    r = _study(bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "bad.yaml: detectors[0]" in r.stderr


def _study(config, *args):
    return subprocess.run(
        [sys.executable, "-m", "lwdet.study", str(config), *args], capture_output=True, text=True, cwd=ROOT, timeout=900
    )


def test_tiny_study_completes_rows_then_skips(tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "out": str(tmp_path / "out"),
                "report": str(tmp_path / "docs"),
                "budget": {"epochs": 1, "imgsz": 64, "batch": 32, "workers": 0, "fraction": 0.25},
                "detectors": [
                    {"backbone": "yolov5n"},
                    {"backbone": "shufflenetv2_050", "neck": "lite", "head": "lite", "train": {"lrf": 0.02}},
                ],
                "bench": {"threads": [1, 2], "loops": 3, "warmup": 1},
                "export": {"map_check": False},
            }
        )
    )  # data: the embedded default dataset
    r = _study(config)
    assert r.returncode == 0, r.stderr[-3000:]
    results = tmp_path / "out" / "results.csv"
    rows = list(csv.DictReader(results.open()))
    assert [row["model"] for row in rows] == ["yolov5n", "yolov5n-shufflenetv2_050-litepan-litehead"]
    assert [(row["neck"], row["head"]) for row in rows] == [("sppf", "yolo"), ("lite", "lite")]
    assert [row["train"] for row in rows] == ["", "lrf=0.02"]  # a row's engine arguments: recorded, and trained with
    args = yaml.safe_load((tmp_path / "out" / rows[1]["run_dir"] / "args.yaml").read_text())
    assert args["lrf"] == 0.02 and args["epochs"] == 1
    for row in rows:
        assert list(row) == list(COLUMNS)
        empty = [
            k
            for k, v in row.items()
            if v == ""
            and not k.startswith(("test_", "sliced_", "letterbox_"))  # no test split, no `sliced:` section
            and k not in ("teacher", "distill_weight", "error", "train")
        ]
        assert not empty, f"{row['model']}: empty {empty}"
        assert row["status"] == "done" and row["parity_ok"] == "True"
        assert (tmp_path / "out" / row["run_dir"] / "study_trained.json").is_file()
        assert row["imgsz"] == "64" and "cores)" in row["machine"]  # what the report writes on its plots
    assert (tmp_path / "docs" / "report.md").is_file() and (tmp_path / "docs" / "pareto_latency_map.png").is_file()
    assert (tmp_path / "docs" / "time_by_part.png").is_file() and (
        tmp_path / "docs" / "time_by_layer_type.png"
    ).is_file()
    layer_ms = json.loads(((tmp_path / "out" / rows[1]["run_dir"]) / "ncnn_layer_type_ms.json").read_text())
    assert "ConvolutionDepthWise" in layer_ms and "Swish" not in layer_ms  # lite: depthwise convs, ReLU fused
    if PEERS.is_dir():  # the peers are timed at the study's input size, beside its results
        peers = list(csv.DictReader((tmp_path / "out" / "peers.csv").open()))
        assert {p["input"] for p in peers} == {"64x64x3"} and any(p["model"] == "yolo-fastestv2" for p in peers)

    side = tmp_path / "out" / "latency.csv"  # the side-by-side pass after training: the rows' latency
    timed = {r["model"]: r for r in csv.DictReader(side.open()) if r["threads"] == "1"}
    assert all(float(timed[r["model"]]["infer_min_ms"]) == float(r["latency_ms_t1"]) for r in rows)
    assert "one side-by-side pass after training" in (tmp_path / "docs" / "report.md").read_text()

    before = results.stat().st_mtime_ns
    t0 = time.time()
    r = _study(config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("complete, skipped") == 2
    assert results.stat().st_mtime_ns == before and time.time() - t0 < 30  # nothing trained or timed again

    # an incomplete row is redone; a run whose training finished (marker) is not retrained
    rows[1]["status"], rows[1]["map5095"] = "", ""
    with results.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    epochs = ((tmp_path / "out" / rows[1]["run_dir"]) / "results.csv").read_text()
    (
        (tmp_path / "out" / rows[1]["run_dir"]) / "study_trained.json"
    ).unlink()  # finished, unmarked: resume says nothing left
    r = _study(config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("complete, skipped") == 1
    again = list(csv.DictReader(results.open()))
    assert again[1]["status"] == "done" and again[1]["map5095"] != "" and again[0] == rows[0]
    assert ((tmp_path / "out" / rows[1]["run_dir"]) / "results.csv").read_text() == epochs
    assert ((tmp_path / "out" / rows[1]["run_dir"]) / "study_trained.json").is_file()


def test_train_only_trains_then_a_second_pass_times_without_retraining(tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "out": str(tmp_path / "out"),
                "report": str(tmp_path / "docs"),
                "budget": {"epochs": 1, "imgsz": 64, "batch": 32, "workers": 0, "fraction": 0.25},
                "detectors": [{"backbone": "shufflenetv2_050", "head": "lite"}],
                "bench": {"threads": [1], "loops": 2, "warmup": 1, "parts": False},
                "export": {"map_check": False},
            }
        )
    )
    r = _study(config, "--train-only")
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = tmp_path / "out" / "yolov5n-shufflenetv2_050-litehead"
    assert (run_dir / "study_trained.json").is_file() and (run_dir / "weights" / "best.pt").is_file()
    assert not (tmp_path / "out" / "results.csv").exists() and not (tmp_path / "docs").exists()
    epochs = (run_dir / "results.csv").read_text()
    r = _study(config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run_dir / "results.csv").read_text() == epochs  # not retrained
    row = next(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert row["status"] == "done" and row["head"] == "lite" and float(row["latency_ms_t1"]) > 0
    assert row["backbone_ms"] == ""  # parts: false

    before = float(row["latency_ms_t1"])
    r = _study(config, "--rebench", "--no-report")
    assert r.returncode == 0, r.stderr[-3000:]
    again = next(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert float(again["latency_ms_t1"]) > 0 and float(again["latency_ms_t1"]) != before  # timed again
    timed = ("latency", "peak", "onnx_ms")
    assert {k: v for k, v in again.items() if not any(t in k for t in timed)} == {
        k: v for k, v in row.items() if not any(t in k for t in timed)
    }
    assert again["latency_graph"] == "trained"

    # a new checkout: the run folders are gone, the report's committed data is not. The row comes back from it,
    # is not trained again, and --rebench times the detector rebuilt from its YAML.
    (tmp_path / "out").rename(tmp_path / "gone")
    r = _study(config, "--rebench", "--no-report")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "adopted 1 finished detectors" in r.stderr
    kept = next(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert kept["latency_graph"] == "rebuilt" and float(kept["latency_ms_t1"]) > 0
    assert kept["map5095"] == row["map5095"] and kept["run_dir"] == run_dir.name  # relative to out
    assert (run_dir / "results.csv").read_text() == epochs and (run_dir / "study_adopted.json").is_file()
    assert (run_dir / "rebuilt" / "random_ncnn_model" / "model.ncnn.param").is_file()
    assert not (run_dir / "weights").exists()
    r = _study(config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "complete, skipped" in r.stderr and not (run_dir / "weights").exists()  # not trained again


def _kept(tmp_path, rows: list[dict], epochs: int) -> Path:
    """A study config whose report folder holds kept data (as ``lwdet.report.keep_data`` writes it)."""
    data = tmp_path / "docs" / "data"
    for r in rows:
        (data / r["model"]).mkdir(parents=True)
        lines = ["epoch,metrics/mAP50-95(B)", *(f"{e + 1},0.1" for e in range(epochs))]
        (data / r["model"] / "results.csv").write_text("\n".join(lines) + "\n")
    merge = [{**r, "status": "done", "run_dir": f"elsewhere/{r['model']}"} for r in rows]
    for r in merge:
        merge_result(data / "results.csv", r, [m["model"] for m in merge])
    config = tmp_path / "study.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "out": str(tmp_path / "out"),
                "report": str(tmp_path / "docs"),
                "budget": {"epochs": 3, "imgsz": 64},
                "detectors": [{"backbone": "yolov5n"}, {"backbone": "shufflenetv2_050", "head": "lite"}],
            }
        )
    )
    return config


def test_kept_rows_are_adopted_once_and_only_when_they_match_the_config(tmp_path, caplog):
    from lwdet.study.kept import adopt

    config = _kept(
        tmp_path,
        [
            {"model": "yolov5n", "imgsz": 64, "map5095": 0.25},
            {"model": "yolov5n-shufflenetv2_050-litehead", "imgsz": 96, "map5095": 0.5},  # another input size
            {"model": "not-in-this-config", "imgsz": 64},
        ],
        epochs=3,
    )
    cfg = load_config(config)
    order = [r["name"] for r in plan(cfg)]
    caplog.set_level("WARNING", logger="lwdet.study")
    assert adopt(cfg, order) == ["yolov5n"]
    assert "trained at 96 px, the study is at 64 px" in caplog.text and "not a run of this config" in caplog.text
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [(r["model"], r["map5095"], r["run_dir"]) for r in rows] == [("yolov5n", "0.25", "yolov5n")]  # relative
    assert (tmp_path / "out" / "yolov5n" / "results.csv").read_text().count("\n") == 4
    assert adopt(cfg, order) == []  # done here already

    cfg["budget"]["epochs"] = 5  # the kept curve has 3 epochs: another budget, trained again
    (tmp_path / "out").rename(tmp_path / "gone")
    assert adopt(cfg, order) == [] and "3 epochs in its epoch CSV, the study trains 5" in caplog.text


def test_an_adopted_teacher_without_weights_is_one_clear_error(tmp_path):
    from lwdet.study.steps import teacher_weights

    config = _kept(tmp_path, [{"model": "yolov5n", "imgsz": 64}], epochs=3)
    from lwdet.study.kept import adopt

    cfg = load_config(config)
    adopt(cfg, [r["name"] for r in plan(cfg)])
    with pytest.raises(RuntimeError, match="trained in an earlier checkout and its weights are not here"):
        teacher_weights({"name": "student", "teacher": "yolov5n"}, tmp_path / "out")


def test_claim_is_exclusive_until_released(tmp_path):
    lock = tmp_path / "out" / ".a.lock"
    with claim(lock) as first:
        with claim(lock) as second:
            assert first is True and second is False
    with claim(lock) as again:
        assert again is True


def test_merge_result_keeps_rows_another_process_wrote(tmp_path):
    path = tmp_path / "results.csv"
    merge_result(path, {"model": "c", "status": "done"}, ["a", "b", "c"])
    merge_result(path, {"model": "a", "status": "done"}, ["a", "b", "c"])  # as if written by another process
    merge_result(path, {"model": "b", "status": ""}, ["a", "b", "c"])
    rows = list(csv.DictReader(path.open()))
    assert [r["model"] for r in rows] == ["a", "b", "c"] and list(rows[0]) == list(COLUMNS)


def test_study_leaves_a_run_another_process_holds_and_waits_for_it_at_the_end(tmp_path, caplog):
    out = tmp_path / "out"
    config = tmp_path / "study.yaml"
    config.write_text(
        yaml.safe_dump({"out": str(out), "detectors": [{"backbone": "yolov5n"}], "bench": {"peers": ""}})
    )  # locks are the point here, not peer timing
    merge_result(out / "results.csv", {"model": "yolov5n", "status": "done"}, ["yolov5n"])  # the other one's row
    finished = threading.Event()
    caplog.set_level("INFO", logger="lwdet.study")
    with claim(out / ".yolov5n.lock"):  # held, as by a second `python -m lwdet.study` on the same config
        worker = threading.Thread(target=lambda: (run_study(config, report=False), finished.set()), daemon=True)
        worker.start()
        deadline = time.time() + 300  # plan() imports torch first: slow on a loaded VM
        while "another study process has it" not in caplog.text and time.time() < deadline:
            time.sleep(0.1)
        assert "another study process has it" in caplog.text
        assert not finished.wait(0.5)  # waiting for the held run: not training it, not returning
    worker.join(60)
    assert finished.is_set() and "yolov5n: complete, skipped" in caplog.text


# ----------------------------------------------------------------------------------- sliced: full-size accuracy
def test_sliced_section_defaults_and_strict_keys(tmp_path):
    path = _config(tmp_path, [{"backbone": "yolov5n"}], budget={"imgsz": 96}, sliced={})
    assert load_config(path)["sliced"] == {
        "images": "images/val-full",
        "labels": None,
        "tile": 96,  # the study's imgsz
        "overlap": 64,
        "full_image": False,
    }
    assert load_config(_config(tmp_path, [{"backbone": "yolov5n"}]))["sliced"] is None  # no section: no columns
    for sliced, message in (
        ({"tile": 320, "overlapp": 64}, r"c.yaml: sliced: unknown key 'overlapp'; did you mean 'overlap'\? Known: "),
        ({"tile": 320, "overlap": 320}, r"c.yaml: sliced: tile overlap must be in \[0, 320\) px"),
        ({"images": 5}, r"c.yaml: sliced.images must be a folder"),
        ([320], r"c.yaml: sliced must be a mapping"),
    ):
        with pytest.raises(StudyConfigError, match=message):
            load_config(_config(tmp_path, [{"backbone": "yolov5n"}], sliced=sliced))


def test_shipped_neon_study_plans_the_baseline_the_rival_and_fast_detectors():
    cfg = load_config(ROOT / "configs" / "study-neon.yaml")
    names = [r["name"] for r in plan(cfg)]
    assert names[:2] == ["yolov5n", "yolo26n"] and len(names) == 13
    # the fast detectors that lead the synthetic frontier, and the one they are compared with, run three seeds each
    for run in ("mobilenetv3_small_100", "repghostnet_050", "repghostnet_080"):
        base = f"yolov5n-{run}-litepan-slimhead"
        assert {base, f"{base}-seed1", f"{base}-seed2"} <= set(names)
    assert Path(cfg["data"]).name == "neon-trees.yaml" and cfg["budget"]["imgsz"] == 320
    assert cfg["sliced"] == {
        "images": "images/val-full",
        "labels": "labels/val-full",
        "tile": 320,
        "overlap": 64,
        "full_image": False,
    }


def test_sliced_columns_of_a_run_are_written_and_reused(tmp_path, caplog):
    import cv2

    from lwdet import YOLO
    from lwdet.report import SLICED_COLUMNS
    from lwdet.study.sliced import _FROM_TABLE, sliced_columns

    assert tuple(c for c, _, _ in _FROM_TABLE) == SLICED_COLUMNS and set(SLICED_COLUMNS) <= set(COLUMNS)
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    YOLO(str(ROOT / "models" / "yaml" / "yolov5n.yaml")).save(str(run / "weights" / "best.pt"))  # untrained
    data = tmp_path / "ds"
    (data / "images" / "val-full").mkdir(parents=True)
    (data / "labels" / "val-full").mkdir(parents=True)
    cv2.imwrite(str(data / "images" / "val-full" / "a.png"), np.full((150, 200, 3), 100, np.uint8))
    (data / "labels" / "val-full" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    opts = {"images": "images/val-full", "labels": None, "tile": 96, "overlap": 32, "full_image": False}
    cols = sliced_columns(run, data, 64, opts)
    assert set(cols) == set(SLICED_COLUMNS) and all(isinstance(v, float) for v in cols.values())
    assert 0.0 <= cols["sliced_map50"] <= 1.0 and cols["sliced_ms_per_image"] > 0
    saved = json.loads((run / "sliced_eval.json").read_text())
    assert saved["settings"]["tile"] == 96 and [r["mode"] for r in saved["rows"]] == ["letterbox", "sliced"]
    assert saved["rows"][1]["boxes"] == 1 and saved["rows"][1]["images"] == 1

    caplog.set_level("INFO", logger="lwdet.study")
    assert sliced_columns(run, data, 64, opts) == cols and "full-size accuracy from" in caplog.text  # reused
    before = (run / "sliced_eval.json").stat().st_mtime_ns
    sliced_columns(run, data, 64, {**opts, "overlap": 16})  # other settings: evaluated again
    assert (run / "sliced_eval.json").stat().st_mtime_ns != before
    with pytest.raises(FileNotFoundError, match=r"s.yaml: sliced.images: .*missing not found .*full_val: true"):
        sliced_columns(run, data, 64, {**opts, "images": "missing"}, "s.yaml")
