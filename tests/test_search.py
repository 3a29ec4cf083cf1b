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
        "reseed": {"top": 0},  # no re-seeding: the tests of it say so
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


# ---------------------------------------------------------------------------------------- no winner's curse (reseed)
@pytest.mark.parametrize(
    "reseed, message",
    [
        ({"tops": 3}, r"search.yaml: reseed: unknown key 'tops'; did you mean 'top'"),
        ({"top": -1}, r"reseed.top and reseed.seeds must be whole numbers >= 0"),
        ({"seeds": 1.5}, r"reseed.top and reseed.seeds must be whole numbers >= 0"),
        ([3, 2], r"'reseed' must be a mapping"),
    ],
)
def test_reseed_config_errors_name_the_file_and_key(tmp_path, reseed, message):
    with pytest.raises(SearchConfigError, match=message):
        load_search(_config(tmp_path, reseed=reseed))


def test_reseed_defaults_to_the_best_three_on_two_fresh_seeds(tmp_path):
    from lwdet.search.reseed import fresh_seeds

    cfg = _config(tmp_path)
    raw = yaml.safe_load(cfg.read_text())
    del raw["reseed"]
    cfg.write_text(yaml.safe_dump({**raw, "budget": {**raw["budget"], "seed": 5}}))
    loaded = load_search(cfg)
    assert loaded["reseed"] == {"top": 3, "seeds": 2} and fresh_seeds(loaded) == [6, 7]


def _row(trial, seed, val, test=None, status="done", stopped_early=False):
    """A results row as the table holds it (text): a trial's own run (seed 0) or one of its re-seeded runs."""
    model = f"{trial}-arch" + (f"-seed{seed}" if seed else "")
    return {"model": model, "trial": trial, "arch": "arch", "seed": str(seed), "map5095": str(val),
            "test_map5095": "" if test is None else str(test), "status": status,
            "stopped_early": str(stopped_early)}  # fmt: skip


def test_the_winner_is_the_best_mean_over_seeds_on_the_test_split_not_the_best_val_draw():
    """A hand-made table: t1 is the best val draw and the worst on fresh seeds; t2 wins on the test mean."""
    from lwdet.search.reseed import judge, ranked

    trials = [
        _row("t1", 0, 0.30, test=0.26),
        _row("t2", 0, 0.28, test=0.27),
        _row("t3", 0, 0.40, stopped_early=True),  # stopped by ASHA: never a candidate
        _row("t4", 0, 0.25, test=0.25),
        _row("t5", 0, 0.10),
    ]
    assert [r["trial"] for r in ranked(trials)[:3]] == ["t1", "t2", "t4"]
    rows = [
        *trials,
        _row("t1", 1, 0.27, test=0.24),
        _row("t1", 2, 0.26, test=0.23),
        _row("t2", 1, 0.29, test=0.28),
        _row("t2", 2, 0.27, test=0.26),
        _row("t4", 1, 0.30, test=0.30),
        _row("t4", 2, 0.0, status="failed"),  # a failed run is not in the mean
    ]
    verdict = judge(rows, ["t1", "t2", "t4"], "test")
    assert [c["trial"] for c in verdict] == ["t4", "t2", "t1"]
    assert verdict[0]["seeds"] == [0, 1] and verdict[0]["scores"] == [0.25, 0.30]
    assert verdict[1]["seeds"] == [0, 1, 2] and verdict[1]["mean"] == pytest.approx(0.27)
    assert verdict[2]["mean"] == pytest.approx(0.2433, abs=1e-4)
    # no test split: the runs' val mAP50-95 (their last epoch's)
    assert [c["trial"] for c in judge(rows, ["t1", "t2"], "val")] == ["t2", "t1"]


def test_a_data_yaml_without_a_test_split_is_said_in_one_line_and_scored_on_val(tmp_path, caplog):
    from lwdet.search.reseed import split_of

    (tmp_path / "with.yaml").write_text("path: /x\ntrain: a\nval: b\ntest: c\nnames: [x]\n")
    (tmp_path / "without.yaml").write_text("path: /x\ntrain: a\nval: b\nnames: [x]\n")
    with caplog.at_level("WARNING", logger="lwdet.search.reseed"):
        assert split_of(tmp_path / "with.yaml") == "test" and not caplog.records
        assert split_of(tmp_path / "without.yaml") == "val"
    (said,) = caplog.records
    assert "no test split" in said.getMessage() and "\n" not in said.getMessage()


def _data_with_a_test_split(tmp_path) -> Path:
    """lwdet's default dataset (no test split of its own) with its val images standing in for a test split."""
    from lwdet.data import DEFAULT_DATA, ensure_dataset

    data = ensure_dataset(DEFAULT_DATA)
    path = tmp_path / "data-with-test.yaml"
    path.write_text(yaml.safe_dump({"path": data["path"], "train": "images/train", "val": "images/val",
                                    "test": "images/val", "names": data["names"]}))  # fmt: skip
    return path


@pytest.mark.slow
@pytest.mark.train
def test_a_search_retrains_its_best_on_fresh_seeds_and_picks_the_winner_by_the_test_mean(tmp_path):
    config = _config(
        tmp_path,
        data=str(_data_with_a_test_split(tmp_path)),
        space={"backbone": ["shufflenetv2_050"], "neck": ["lite"], "head": ["lite"], "lr0": [0.005, 0.02]},
        reseed={"top": 1, "seeds": 1},
    )
    r = _search(config)
    assert r.returncode == 0, r.stderr[-4000:]
    out = tmp_path / "out"
    rows = {row["model"]: row for row in _csv(out / "results.csv")}
    trials = [row for row in rows.values() if row["seed"] == "0"]
    assert len(rows) == 3 and len(trials) == 2
    best = max(trials, key=lambda row: float(row["map5095"]))  # the best on val: the one candidate
    again = rows[f"{best['model']}-seed1"]  # its configuration on a fresh seed: a row of the same table
    assert again["trial"] == best["trial"] and again["arch"] == best["arch"] and again["train"] == best["train"]
    assert again["lr0"] == best["lr0"] and best["train"] == f"lr0={float(best['lr0'])}"
    assert again["status"] == "done" and again["stopped_early"] == "False" and int(again["epochs"]) == 2
    assert again["run_dir"] == f"reseed/{best['trial']}-seed1" and (out / again["run_dir"] / "weights").is_dir()
    for row in (best, again):  # both runs of the candidate scored on the test split, by the engine's validator
        assert row["test_map5095"] != "" and row["test_map50"] != ""
        assert json.loads((out / row["run_dir"] / "test_score.json").read_text())["split"] == "test"
    other = next(row for row in trials if row is not best)
    assert other["test_map5095"] == ""  # not a candidate: never read on the test split
    winner = json.loads((out / "winner.json").read_text())
    assert winner["model"] == best["model"] and winner["reseeded"] and winner["split"] == "test"
    assert not winner["test_split_missing"] and winner["seeds"] == [0, 1] and winner["train"] == best["train"]
    assert winner["mean_map5095"] == pytest.approx((float(best["test_map5095"]) + float(again["test_map5095"])) / 2)
    assert "re-seeding the best 1 configuration(s)" in r.stderr and "2 of 2 run(s) to do" in r.stderr

    # again: nothing is trained or scored again
    kept = {p: p.read_text() for d in ("trials", "reseed") for p in [*out.glob(f"{d}/*/results.csv"),
                                                                    *out.glob(f"{d}/*/test_score.json")]}  # fmt: skip
    r = _search(config)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "0 of 2 run(s) to do" in r.stderr
    assert {p: p.read_text() for p in kept} == kept and len(kept) == 5
    assert {row["model"]: row for row in _csv(out / "results.csv")} == rows


# --- search-fastest (issue 37, point 2): a ratio budget to a peer graph, the metric, heads per neck -----------------

PEERS = ROOT.parent / "shared" / "peers" / "ncnn"  # the peer graphs, beside the clone (as bench.peers' default)
needs_peers = pytest.mark.skipif(not (PEERS / "yolo-fastestv2.param").is_file(), reason=f"no peer graphs at {PEERS}")


@needs_peers
def test_search_fastest_config_validates(monkeypatch):
    from lwdet.search.screen import candidates

    monkeypatch.chdir(ROOT)  # bench.peers (../shared/peers/ncnn) is found from a clone's root
    cfg = load_search(ROOT / "configs" / "searches" / "search-fastest.yaml")
    assert cfg["max_latency"] == {
        "kind": "ratio", "value": 1.0, "reference": "yolo-fastestv2", "text": "1.0x yolo-fastestv2",
        "peer": str((PEERS / "yolo-fastestv2.param").resolve()),
    }  # fmt: skip
    assert cfg["metric"] == "map50" and cfg["budget"]["epochs"] == 50 and cfg["budget"]["imgsz"] == 160
    assert cfg["reseed"] == {"top": 3, "seeds": 2}  # its best configurations again on fresh seeds, the test split
    assert Path(cfg["data"]).name == "fmnist-bench-s.yaml" and Path(cfg["data"]).is_file()
    space = cfg["space"]
    assert set(space["neck"]["choices"]) == {"lite", "nano", "p45"}
    assert {"imgsz", "lr0", "nbs", "scale"} <= set(space)
    archs = {(c["backbone"], c["neck"], c["head"]) for c in candidates(cfg)}
    assert ("lcnet_050", "nano", "nano") in archs and ("repghostnet_050", "p45", "slim") in archs
    assert not any(n == "lite" and h == "nano" for _, n, h in archs)  # heads per neck: only the shipped pairs
    # the package ships it: configs/ is lwdet/cfg/studies in a clone
    assert (ROOT / "lwdet" / "cfg" / "studies" / "searches" / "search-fastest.yaml").is_file()


@needs_peers
def test_a_ratio_budget_may_name_a_peer_graph(tmp_path):
    bench = {**QUICK_BENCH, "peers": str(PEERS)}
    budget = load_search(_config(tmp_path, max_latency="1.0x yolo-fastestv2", bench=bench))["max_latency"]
    assert budget["kind"] == "ratio" and budget["value"] == 1.0 and budget["reference"] == "yolo-fastestv2"
    assert Path(budget["peer"]) == PEERS / "yolo-fastestv2.param"
    assert "peer" not in load_search(_config(tmp_path, max_latency="0.3x yolov5n", bench=bench))["max_latency"]
    assert load_search(_config(tmp_path, max_latency="0.5x yolo11n"))["max_latency"]["reference"] == "yolo11n"


@needs_peers
def test_an_unknown_reference_is_one_line_naming_what_is_allowed(tmp_path):
    config = _config(tmp_path, max_latency="1.0x yolo-fastest", bench={**QUICK_BENCH, "peers": str(PEERS)})
    with pytest.raises(SearchConfigError) as e:
        load_search(config)
    said = str(e.value)
    assert "\n" not in said and "reference 'yolo-fastest' is neither an lwdet model nor a peer graph" in said
    assert "did you mean 'yolo-fastestv2'?" in said
    for allowed in ("yolov5n", "repghostnet_050", "yolo11n", "FastestDet", "nanodet_m"):
        assert allowed in said
    r = subprocess.run([sys.executable, "-m", "lwdet.search", str(config)], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "did you mean" in lines[0]
    # no peers folder: the line says so
    said = str(pytest.raises(SearchConfigError, load_search, _config(tmp_path, max_latency="1x yolo-fastestv2")).value)
    assert "peers: none (bench.peers empty: not a folder)" in said


@pytest.mark.parametrize(
    "over, message",
    [
        ({"metric": "mAP50"}, r"metric must be one of map5095, map50, got 'mAP50'"),
        ({"space": {"backbone": ["lcnet_050"], "neck": ["lite", "p45"], "head": {"lite": "slim"}}},
         r"space.head: give neck 'p45' its head"),
        ({"space": {"backbone": ["lcnet_050"], "neck": ["lite", "p45"], "head": {"lite": "slim", "p54": "nano"}}},
         r"space.head: unknown key 'p54'; did you mean 'p45'"),
        ({"space": {"backbone": ["lcnet_050"], "neck": ["nano"], "head": {"nano": "slim"}}},
         r"space: .*no shipped model YAML for backbone 'lcnet_050' with neck 'nano' and head 'slim'"),
        ({"space": {"backbone": ["lcnet_050"], "nbs": {"uniform": [16, 64]}}}, r"nbs: give the choices as a list"),
    ],
)  # fmt: skip
def test_the_metric_and_heads_per_neck_are_checked(tmp_path, over, message):
    with pytest.raises(SearchConfigError, match=message):
        load_search(_config(tmp_path, **over))
    assert load_search(_config(tmp_path))["metric"] == "map5095"  # the default: what the search ranked by before


@needs_peers
def test_the_screen_keeps_only_graphs_within_a_peer_budget(tmp_path):
    """Random-weight graphs timed beside Yolo-FastestV2's at the candidates' input size, in one pass: every kept
    candidate's ratio is within the budget and every dropped one's over it (no training)."""
    from lwdet.report.rows import read_bench
    from lwdet.search.screen import screen

    cfg = load_search(
        _config(
            tmp_path,
            budget={"epochs": 2, "imgsz": 96, "batch": 32, "workers": 0},
            space={
                "backbone": ["shufflenetv2_050", "mobilenetv3"],
                "neck": ["p45", "lite"],
                "head": {"p45": "nano", "lite": "slim"},
            },  # fmt: skip
            max_latency="1.0x yolo-fastestv2",
            bench={**QUICK_BENCH, "peers": str(PEERS)},
        )
    )
    rows = screen(cfg)
    assert len(rows) == 4
    timed = {str(b["model"]): b for b in read_bench(tmp_path / "out" / "screen-latency-96.csv")}
    peer = timed["yolo-fastestv2"]
    assert peer["kind"] == "peer" and peer["input"] == "96x96x3"  # the peer at the candidates' input, same pass
    for row in rows:
        assert row["reference_ms_t1"] == float(peer["infer_min_ms"])
        assert row["ratio"] == pytest.approx(row["latency_ms_t1"] / row["reference_ms_t1"])
        assert row["feasible"] == (row["ratio"] <= 1.0), row
    by = {(r["backbone"], r["neck"]): r for r in rows}
    # 0.75x and 4.3x Yolo-FastestV2 when measured on the 2-core VM: one kept, one dropped whatever the machine's noise
    assert by["shufflenetv2_050", "p45"]["feasible"] and not by["mobilenetv3", "lite"]["feasible"]
    assert {r["arch"] for r in screen(cfg)} == {r["arch"] for r in rows}  # a rerun reuses screen.csv


def test_metric_map50_ranks_the_trials_and_judges_the_reseeded_runs_by_map50():
    """The same hand-made table with mAP50 beside mAP50-95: metric map50 ranks by val mAP50 and takes test_map50's
    mean; the default is unchanged (mAP50-95)."""
    from lwdet.search.reseed import judge, ranked

    def row(trial, seed, map5095, map50, test50):
        return {**_row(trial, seed, map5095, test=map5095), "map50": str(map50), "test_map50": str(test50)}

    rows = [row("t1", 0, 0.30, 0.40, 0.41), row("t2", 0, 0.20, 0.50, 0.45), row("t2", 1, 0.21, 0.52, 0.47),
            row("t1", 1, 0.31, 0.42, 0.43)]  # fmt: skip
    trials = rows[:2]
    assert [r["trial"] for r in ranked(trials)] == ["t1", "t2"]
    assert [r["trial"] for r in ranked(trials, "map50")] == ["t2", "t1"]
    assert [c["trial"] for c in judge(rows, ["t1", "t2"], "test")] == ["t1", "t2"]
    by50 = judge(rows, ["t1", "t2"], "test", "map50")
    assert [c["trial"] for c in by50] == ["t2", "t1"] and by50[0]["mean"] == pytest.approx(0.46)
