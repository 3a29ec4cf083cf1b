import csv
import hashlib
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TAGS = [
    "metrics/mAP50(B)",
    "metrics/mAP50-95(B)",
    "metrics/precision(B)",
    "metrics/recall(B)",
    "metrics/F1(B)",
    "train/box_loss",
    "train/cls_loss",
    "train/dfl_loss",
    "train/dis_loss",
    "val/box_loss",
    "val/cls_loss",
    "val/dfl_loss",
    "val/dis_loss",
    "lr/pg0",
    "time/epoch_s",
]


def run_train(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    project = tmp_path_factory.mktemp("runs")
    r = run_train(
        "--backbone",
        "ghostnet",
        "--epochs",
        1,
        "--imgsz",
        64,
        "--batch",
        32,
        "--no-plots",
        "--project",
        project,
        "--name",
        "g",
        "lrf=0.02",  # the engine's own key=value training arguments (lwdet.hyp)
        "scale=0.4",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return project / "g", r


def test_run_folder_holds_weights_csv_events_and_its_inputs(run):
    run_dir, r = run
    for name in ("weights/best.pt", "weights/last.pt", "results.csv", "data.yaml", "yolov5n-ghostnet_100.yaml"):
        assert (run_dir / name).is_file(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert f"tensorboard --logdir {run_dir.parent}" in r.stdout


@pytest.mark.parametrize(
    "epochs, close_mosaic, warmup",
    [(1, 1, 1.0), (10, 1, 1.0), (30, 3, 1.0), (50, 5, 1.5), (100, 10, 3.0), (300, 10, 3.0)],
)
def test_epoch_settings_scale_with_the_budget(epochs, close_mosaic, warmup):
    from lwdet.training import budget_defaults

    assert budget_defaults(epochs) == {"optimizer": "SGD", "close_mosaic": close_mosaic, "warmup_epochs": warmup}


def test_epoch_settings_the_caller_sets_are_kept():
    from lwdet.training import budget_defaults

    assert budget_defaults(10, {"close_mosaic": 10, "epochs": 10}) == {"optimizer": "SGD", "warmup_epochs": 1.0}
    assert "optimizer" not in budget_defaults(10, {"optimizer": "auto"})


def test_short_run_gets_scaled_settings(run):
    import yaml

    args = yaml.safe_load((run[0] / "args.yaml").read_text())
    assert (args["close_mosaic"], args["warmup_epochs"]) == (1, 1.0)  # engine defaults: 10 and 3.0
    assert (args["optimizer"], args["lr0"]) == ("SGD", 0.01)  # the engine's 'auto' would pick AdamW at 0.000714
    assert "SGD(lr=0.01, momentum=0.937)" in run[1].stdout + run[1].stderr  # what the engine built


def test_key_value_arguments_reach_the_trainer(run):
    import yaml

    args = yaml.safe_load((run[0] / "args.yaml").read_text())
    assert (args["lrf"], args["scale"]) == (0.02, 0.4)  # engine defaults: 0.01 and 0.5


@pytest.mark.parametrize(
    "token, message",
    [
        ("lr=0.02", "key=value: 'lr' is not a training argument of the engine; did you mean 'lrf'?"),
        ("epochs=3", "key=value: epochs is set by --epochs, not as a training argument"),
        ("lr0=fast", "key=value: lr0='fast': 'lr0=fast' is of invalid type str."),
        ("lr0", "key=value: 'lr0' is not a key=value training argument"),
    ],
)
def test_bad_key_value_exits_2_in_one_line(tmp_path, token, message):
    r = run_train("--epochs", 1, token, "--project", tmp_path)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not any(tmp_path.iterdir())


def test_csv_has_every_metric_finite(run):
    run_dir, _ = run
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert len(rows) == 1
    for tag in TAGS:
        value = float(rows[0][tag])
        assert math.isfinite(value), tag
    assert float(rows[0]["train/dis_loss"]) == 0.0  # no teacher: the distillation column is there, at 0
    p, r, f1 = (float(rows[0][f"metrics/{k}(B)"]) for k in ("precision", "recall", "F1"))
    assert 0.0 <= f1 <= 1.0 and 0.0 <= p <= 1.0 and 0.0 <= r <= 1.0


def test_tensorboard_has_the_same_tags_with_finite_values(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = run
    events = EventAccumulator(str(run_dir))
    events.Reload()
    for tag in TAGS:
        values = [e.value for e in events.Scalars(tag)]
        assert [e.step for e in events.Scalars(tag)] == [1], tag
        assert all(math.isfinite(v) for v in values), tag


def test_existing_run_is_never_overwritten(run):
    run_dir, _ = run
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in run_dir.rglob("*") if p.is_file()}
    r = run_train("--backbone", "ghostnet", "--epochs", 1, "--imgsz", 64, "--project", run_dir.parent, "--name", "g")
    assert r.returncode == 2
    assert "already exists" in r.stderr and str(run_dir) in r.stderr
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in run_dir.rglob("*") if p.is_file()}
    assert before == after


@pytest.mark.parametrize(
    "args, message",
    [
        (["--imgsz", "100"], "argument --imgsz: must be a positive multiple of 32"),
        (["--epochs", "0"], "argument --epochs: must be >= 1"),
        (["--backbone", "ghostnet_10O"], "backbone 'ghostnet_10O' is not known; did you mean"),
        (["--data", "nope.yaml"], "argument --data: not found: nope.yaml"),
        (["--backbone-weights", "nope.pth"], "argument --backbone-weights: not found: nope.pth"),
        (["--neck", "fpn"], "invalid choice: 'fpn'"),
        (["--device", "7"], "--device 7: this machine has 0 CUDA GPU(s)"),
        (["--device", "gpu"], "--device must be cpu, mps or GPU indices"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(tmp_path, args, message):
    r = run_train(*args, "--project", tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_bad_model_yaml_exits_2_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "models/yaml/yolov5n-mnasnet_100.yaml").read_text().replace("Index, [40, 0]", "Index, [48, 0]")
    )
    r = run_train("--model", bad, "--project", tmp_path / "runs")
    assert r.returncode == 2
    assert f"{bad}:7: backbone row 1 (layer 1): declares 48 channels" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_resume_of_a_finished_run_is_a_clear_error(run):
    run_dir, _ = run
    r = run_train("--project", run_dir.parent, "--name", "g", "--resume")
    assert r.returncode == 2
    assert "finished its epochs already; nothing to resume" in r.stderr


def small_set(root: Path, n_train: int = 16, n_val: int = 8) -> Path:
    """The first ``n_train`` / ``n_val`` images of the embedded set copied to ``root``; returns its data YAML."""
    import shutil

    from lwdet.data import DEFAULT_DATA, ensure_dataset

    src = Path(ensure_dataset(DEFAULT_DATA)["path"])
    for split, n in (("train", n_train), ("val", n_val)):
        for sub in ("images", "labels"):
            (root / sub / split).mkdir(parents=True)
        for img in sorted((src / "images" / split).glob("*.jpg"))[:n]:
            shutil.copy(img, root / "images" / split / img.name)
            shutil.copy(src / "labels" / split / f"{img.stem}.txt", root / "labels" / split / f"{img.stem}.txt")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: [a, b, c, d, e]\n")
    return root / "data.yaml"


def start_and_stop(tmp_path: Path, sig: int, epochs: int, pipe: bool = False) -> subprocess.Popen:
    """Start an ``epochs``-epoch run of one batch per epoch, send ``sig`` once its first last.pt is saved."""
    import time

    data = small_set(tmp_path / "data")
    cmd = [sys.executable, str(ROOT / "train.py"), "--backbone", "shufflenetv2_050", "--data", str(data)]
    cmd += ["--epochs", str(epochs), "--imgsz", "64", "--batch", "16", "--no-plots"]
    cmd += ["--project", str(tmp_path / "runs"), "--name", "r"]
    out = subprocess.PIPE if pipe else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=out, text=True)
    last = tmp_path / "runs" / "r" / "weights" / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let the first save finish
    proc.send_signal(sig)
    return proc


def test_killed_run_resumes_in_place_with_its_own_settings(tmp_path):
    import signal

    proc = start_and_stop(tmp_path, signal.SIGKILL, epochs=8)
    proc.wait()
    runs = tmp_path / "runs"
    csv_path = runs / "r" / "results.csv"
    done = len(list(csv.DictReader(csv_path.open())))
    assert done < 8, "the run finished before it could be killed"
    r = run_train("--project", runs, "--name", "r", "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = list(csv.DictReader(csv_path.open()))
    assert [int(row["epoch"]) for row in rows][-1] == 8
    assert "imgsz=64" in (runs / "r" / "args.yaml").read_text().replace(": ", "=")
    assert sorted(p.name for p in runs.iterdir()) == ["r"]  # resumed in place, no new run folder


@pytest.fixture
def bad_dataset(tmp_path):
    """16 train / 8 val images of the embedded set, one train label with class 99."""
    root = small_set(tmp_path / "bad").parent
    bad = sorted((root / "labels" / "train").glob("*.txt"))[0]
    bad.write_text("99 0.5 0.5 0.2 0.2\n" + bad.read_text())
    return root, bad


def test_dataset_errors_stop_training_unless_skip_bad(tmp_path, bad_dataset):
    root, bad = bad_dataset
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    common = [
        "--backbone",
        "shufflenetv2_050",
        "--data",
        root / "data.yaml",
        "--epochs",
        1,
        "--imgsz",
        64,
        "--no-plots",
        "--project",
        tmp_path / "runs",
    ]
    r = run_train(*common, "--name", "a")
    assert r.returncode == 2
    assert f"labels/train/{bad.name}:1: class 99 is not in names" in r.stderr
    assert "--skip-bad" in r.stderr
    assert not (tmp_path / "runs").exists()
    r = run_train(*common, "--name", "b", "--skip-bad")
    assert r.returncode == 0, r.stderr[-2000:]
    good = (tmp_path / "runs" / "b" / "data-good" / "train.txt").read_text().split()
    assert len(good) == 15 and not any(bad.stem in g for g in good)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    assert {p: h for p, h in after.items() if p.suffix != ".cache"} == before  # the engine's label cache aside


def test_sigint_saves_a_resumable_checkpoint_and_exits_cleanly(tmp_path):
    import signal

    proc = start_and_stop(tmp_path, signal.SIGINT, epochs=8, pipe=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "SIGINT: stopped in epoch" in out and "--resume" in out
    assert "Traceback" not in err
    runs = tmp_path / "runs"
    assert not list((runs / "r" / "weights").glob(".*.tmp"))  # atomic writes leave no temporaries
    r = run_train("--project", runs, "--name", "r", "--resume", "--epochs", "10")  # a new target is honoured
    assert r.returncode == 0, r.stderr[-2000:]
    assert [int(row["epoch"]) for row in csv.DictReader((runs / "r" / "results.csv").open())][-1] == 10


def test_checkpoint_results_are_read_without_polars_as_the_engine_reads_them(run):
    """The engine reads results.csv with polars for the checkpoint; lwdet's stdlib reader gives the same dict."""
    from types import SimpleNamespace

    from ultralytics.engine.trainer import BaseTrainer

    from lwdet.training import LwdetTrainer

    run_dir, _ = run
    fake = SimpleNamespace(csv=run_dir / "results.csv")
    ours, engines = LwdetTrainer.read_results_csv(fake), BaseTrainer.read_results_csv(fake)
    assert ours == engines and len(ours["epoch"]) == 1
    assert LwdetTrainer.read_results_csv(SimpleNamespace(csv=run_dir / "missing.csv")) == {}


def test_lite_neck_and_head_train_from_the_cli(tmp_path):
    r = run_train(
        "--backbone",
        "shufflenetv2_050",
        "--neck",
        "lite",
        "--head",
        "lite",
        "--epochs",
        1,
        "--imgsz",
        64,
        "--batch",
        32,
        "--no-plots",
        "--project",
        tmp_path,
        "--name",
        "lite",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "lite" / "yolov5n-shufflenetv2_050-litepan-litehead.yaml").is_file()
    rows = list(csv.DictReader((tmp_path / "lite" / "results.csv").open()))
    assert all(math.isfinite(float(rows[0][tag])) for tag in TAGS)


def test_fine_tuning_steps_every_batch_unless_the_caller_says_otherwise():
    from lwdet.training import fine_tune_defaults

    assert fine_tune_defaults({"batch": 8}) == {"nbs": 8}
    assert fine_tune_defaults({}) == {"nbs": 16}
    assert fine_tune_defaults({"batch": 8, "nbs": 64}) == {}
    assert fine_tune_defaults({"batch": -1}) == {}  # the engine's auto batch keeps its own nbs


class _Stop(Exception):
    pass


def _train_until_the_model(tmp_path, monkeypatch, model="ghostnet", student=True):
    """Run ``lwdet.training.train`` up to the trainer's model set-up; return (trainer, model YAML reads, builds)."""
    import builtins

    from ultralytics.engine.trainer import BaseTrainer

    from lwdet import models
    from lwdet.data import DEFAULT_DATA
    from lwdet.training import LwdetTrainer, train

    monkeypatch.chdir(ROOT)  # the embedded dataset, as the CLI tests use it
    yaml_path = models.model_yaml(model)
    reads, builds, seen = [], [], {}
    real_read_text, real_open, real_init = Path.read_text, builtins.open, models.LwdetModel.__init__

    def is_model_yaml(p):
        return isinstance(p, (str, Path)) and Path(p).name == yaml_path.name

    def read_text(self, *a, **k):
        if is_model_yaml(self):
            reads.append(str(self))
        return real_read_text(self, *a, **k)

    def open_(file, *a, **k):
        if is_model_yaml(file) and "w" not in (a[0] if a else k.get("mode", "r")):
            reads.append(str(file))
        return real_open(file, *a, **k)

    def init(self, *a, **k):
        builds.append(1)
        real_init(self, *a, **k)

    def setup_model(self):
        if not student:
            self.student = None
        BaseTrainer.setup_model(self)  # calls get_model
        seen["trainer"] = self
        raise _Stop

    monkeypatch.setattr(Path, "read_text", read_text)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(models.LwdetModel, "__init__", init)
    monkeypatch.setattr(LwdetTrainer, "setup_model", setup_model)
    with pytest.raises(_Stop):
        train(yaml_path, DEFAULT_DATA, tmp_path / "r", epochs=1, imgsz=64, batch=8, plots=False)
    return seen["trainer"], reads, len(builds)


def test_one_read_of_the_model_yaml_and_one_build_per_train(tmp_path, monkeypatch):
    """Issue 34 point 5: before, one run read its model YAML 9 times and built the student twice (strides)."""
    trainer, reads, builds = _train_until_the_model(tmp_path, monkeypatch)
    assert len(reads) == 1, reads
    assert builds == 1
    assert trainer.student is None  # handed over: the trainer's model is the one train() built and checked
    assert trainer.model.yaml["yaml_file"] == str(tmp_path / "r" / "yolov5n-ghostnet_100.yaml")  # the run's copy


def test_the_one_build_has_the_weights_the_trainer_would_build(tmp_path, monkeypatch):
    """The model built before the run folder is seeded as the engine seeds its own build: the same initial weights."""
    import torch

    ours, _, _ = _train_until_the_model(tmp_path / "a", monkeypatch)
    engine, _, builds = _train_until_the_model(tmp_path / "b", monkeypatch, student=False)
    assert builds == 2  # without the hand-over the trainer builds again
    a, b = ours.model.state_dict(), engine.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
