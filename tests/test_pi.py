"""The Pi path without a Pi: projection fit and leave-one-out by hand, board fp16 defaults, the emulated check."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lwdet.edge import boards
from lwdet.edge.bench import projection
from lwdet.edge.bench.projection import PUBLISHED, Scale

ROOT = Path(__file__).resolve().parents[1]
ROOTFS = Path(os.environ.get("LWDET_PI_CACHE", "/var/cache/lwdet/pi-rootfs")) / "bookworm-arm64"


# ------------------------------------------------------------------------------------------------------ projection
def test_ratio_is_geometric_mean():
    assert projection.ratio([1.0, 4.0], [2.0, 2.0]) == pytest.approx(1.0)  # ratios 2 and 0.5
    assert projection.ratio([10.0], [30.0]) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        projection.ratio([], [])


def test_leave_one_out_by_hand():
    # ratios 2, 2, 8: leaving out the third predicts 2 x 1 = 2 for 8 -> error 0.75; leaving out the first predicts
    # sqrt(2 * 8) = 4 x 1 = 4 for 2 -> error 1.0; same for the second
    errs = projection.leave_one_out([1.0, 1.0, 1.0], [2.0, 2.0, 8.0])
    assert errs == pytest.approx([1.0, 1.0, 0.75])
    assert projection.leave_one_out([1.0, 2.0, 3.0], [3.0, 6.0, 9.0]) == pytest.approx([0, 0, 0], abs=1e-12)
    with pytest.raises(ValueError):
        projection.leave_one_out([1.0], [2.0])


def _rows(scale_by_threads: dict[int, float], noise: dict[str, float] | None = None) -> list[dict]:
    """Bench rows whose here-ms are published pi4-t1 / scale (x noise per peer), one set per thread count."""
    noise = noise or {}
    return [
        {
            "model": m,
            "runtime": "ncnn",
            "threads": t,
            "kind": "peer",
            "infer_min_ms": PUBLISHED[m]["pi4-t1"] / s * noise.get(m, 1.0),
        }
        for t, s in scale_by_threads.items()
        for m in PUBLISHED
    ]


def test_fit_recovers_an_exact_scale_and_picks_the_best_thread_count():
    # at 1 thread here the Pi 4 1-thread timings are exactly 3x: ratio 3, no LOO error
    noisy = {"mobilenet_v2": 1.5, "nanodet_m": 0.6}
    scales = projection.fit(_rows({1: 3.0}) + [{**r, "threads": 2} for r in _rows({1: 3.0}, noisy)])
    s = scales["pi4-t1"]
    assert (s.threads_here, s.n) == (1, 7)
    assert s.ratio == pytest.approx(3.0)
    assert s.loo_mean == pytest.approx(0.0, abs=1e-12) and s.loo_max == pytest.approx(0.0, abs=1e-12)
    assert set(scales) == {"pi4-t1", "pi4-t4", "pi5-t4"}


def test_fit_needs_peers():
    with pytest.raises(ValueError, match="--peers"):
        projection.fit([{"model": "yolov5n", "runtime": "ncnn", "threads": 1, "infer_min_ms": 5.0}])


def test_project_labels_and_bounds():
    scales = {
        "pi4-t1": Scale("pi4-t1", 1, 3.0, 0.1, 0.2, 7),
        "pi4-t4": Scale("pi4-t4", 2, 2.0, 0.2, 0.3, 7),
        "pi5-t4": Scale("pi5-t4", 2, 0.5, 0.15, 0.3, 7),
    }
    rows = [
        {"model": "det", "runtime": "ncnn", "threads": 1, "infer_min_ms": 10.0},
        {"model": "det", "runtime": "ncnn", "threads": 2, "infer_min_ms": 6.0},
        {"model": "det", "runtime": "onnx", "threads": 1, "infer_min_ms": 9.0},
    ]
    out = projection.project(rows, scales)
    got = {(p["board"], p["pi_threads"]): p for p in out}
    assert set(got) == {("pi4", 1), ("pi4", 4), ("pi5", 4)}
    assert got["pi4", 1]["projected_ms"] == pytest.approx(30.0)
    assert (got["pi4", 1]["low_ms"], got["pi4", 1]["high_ms"]) == pytest.approx((27.0, 33.0))
    assert got["pi4", 4]["projected_ms"] == pytest.approx(12.0) and got["pi4", 4]["from_threads"] == 2
    assert got["pi5", 4]["projected_ms"] == pytest.approx(3.0)
    assert all(p["label"] == "projected" for p in out)
    assert "projected" in projection.table(out)
    assert [p["board"] for p in projection.project(rows, scales, ["pi5"])] == ["pi5"]
    with pytest.raises(ValueError, match="unknown board"):
        projection.project(rows, scales, ["pi3"])


def test_committed_calibration_reproduces_the_documented_error():
    """docs/pi/peers.csv (peers timed here + published) refits to the LOO error docs/pi-projection.md states."""
    import csv

    with open(ROOT / "docs/pi/peers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    scales = projection.fit(rows)
    assert set(scales) == {"pi4-t1", "pi4-t4", "pi5-t4"}
    for s in scales.values():
        assert s.n == 7 and 0 < s.loo_mean <= s.loo_max < 1
    doc = (ROOT / "docs/pi-projection.md").read_text()
    for s in scales.values():
        assert f"{100 * s.loo_mean:.0f} %" in doc


# ---------------------------------------------------------------------------------------------------------- boards
def test_cpu_part_from_cpuinfo():
    assert boards.cpu_part("processor\t: 0\nCPU part\t: 0xd0b\n") == "Cortex-A76"
    assert boards.cpu_part("CPU part\t: 0xD08\n") == "Cortex-A72"
    assert boards.cpu_part("model name\t: Intel Xeon\n") is None


def _numerics(fp16_map: float, ref_map: float = 0.1585, part: str = "Cortex-A76") -> dict:
    """board_numerics as tools/pi_numerics.py records them: the x86 reference and one board's runs."""
    row = {"asimdhp": True, "box_max_px": 0.0, "score_max": 0.0, "anchors_over_1px": 0, "map_torch": ref_map}
    return {
        "map_tolerance": 0.005,
        "runs": [
            {**row, "run": "x86", "cpu_part": None, "fp16_used": False, "map50_95": ref_map},
            {**row, "run": f"{part.lower()}-fp16-off", "cpu_part": part, "fp16_used": False, "map50_95": ref_map},
            {**row, "run": f"{part.lower()}-fp16-on", "cpu_part": part, "fp16_used": True, "map50_95": fp16_map},
        ],
    }


def test_board_default_follows_the_recorded_map():
    within = boards.board_default(_numerics(0.1576), "Cortex-A76", arm=True)  # -0.0009: within 0.005
    assert within.fp16 is True and within.checked and "0.1576" in within.why
    beyond = boards.board_default(_numerics(0.1500), "Cortex-A76", arm=True)  # -0.0085: beyond
    assert beyond.fp16 is False and beyond.checked and "> 0.005" in beyond.why
    other = boards.board_default(_numerics(0.1576), "Cortex-A72", arm=True)  # only the Pi 5 was checked
    assert other.fp16 is None and not other.checked and "unchecked" in other.why
    none = boards.board_default({}, "Cortex-A76", arm=True)
    assert none.fp16 is None and not none.checked and "Raspberry Pi 5" in none.why
    assert boards.board_default({}, None, arm=False) == (None, True, "ncnn's defaults (not an ARM board)")
    int8 = _numerics(0.2003, ref_map=0.2003)  # the board's int8 kernels differ from x86's; fp16 costs nothing there
    int8["runs"][0]["map50_95"] = 0.2095
    choice = boards.board_default(int8, "Cortex-A76", arm=True)
    assert choice.fp16 is True and "differs from x86's 0.2095" in choice.why
    old = _numerics(0.1576)  # a record from before cpu_part saw QEMU_CPU: the run's tag names the core
    old["runs"] = [{**r, "cpu_part": None} for r in old["runs"]]
    assert boards.board_default(old, "Cortex-A76", arm=True).fp16 is True


def test_qemu_cpu_names_the_emulated_board(monkeypatch):
    monkeypatch.setenv("QEMU_CPU", "cortex-a76")
    assert boards.cpu_part("model name\t: AMD EPYC\n") == "Cortex-A76"  # qemu-user shows the host's cpuinfo
    monkeypatch.setenv("QEMU_CPU", "max")
    assert boards.cpu_part("model name\t: AMD EPYC\n") is None


def test_fp16_flags_parse():
    assert boards.parse_fp16("on") is True and boards.parse_fp16("OFF") is False and boards.parse_fp16("auto") is None
    with pytest.raises(ValueError, match="on, off or auto"):
        boards.parse_fp16("maybe")


# ------------------------------------------------------------------------------------------------- emulated check
def _pi_check_missing() -> str | None:
    if shutil.which("qemu-aarch64-static") is None:
        return "qemu-user-static is not installed (apt-get install qemu-user-static binfmt-support)"
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        return "qemu-aarch64 is not registered in binfmt_misc"
    if not (ROOTFS / "usr/bin/python3").exists():
        return f"no cached arm64 root filesystem at {ROOTFS} (build it once: sudo tools/pi_emulated.sh ...)"
    if os.geteuid() != 0:
        return "the emulated check needs root (chroot)"
    return None


@pytest.mark.pi_emulated
@pytest.mark.slow
def test_emulated_pi_runs_setup_bench_detect_and_numerics(request, tmp_path):
    """setup.sh, bench_edge.py, detect.py and the numerics under cortex-a72/-a76: the board default (fp16 off on
    the A76) gives x86's raw output within the parity tolerance. Runs only with ``pytest -m pi_emulated``."""
    if "pi_emulated" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the emulated Pi check takes minutes: run it with pytest -m pi_emulated")
    if reason := _pi_check_missing():
        pytest.skip(reason)
    export = os.environ.get("LWDET_PI_EXPORT")
    if not export:
        pytest.skip("set LWDET_PI_EXPORT to an ncnn export folder (and LWDET_PI_VAL to its val images)")
    val, labels = os.environ.get("LWDET_PI_VAL"), os.environ.get("LWDET_PI_LABELS")
    out = tmp_path / "out"
    t0 = time.monotonic()
    subprocess.run(
        ["bash", str(ROOT / "tools/pi_emulated.sh"), export, *([val] if val else []), str(out)],
        check=True,
        env={**os.environ, "LWDET_PI_CPUS": "cortex-a72 cortex-a76"},
    )
    print(f"emulated check: {time.monotonic() - t0:.0f} s")
    for cpu in ("cortex-a72", "cortex-a76"):
        assert "ncnn" in (out / f"bench-{cpu}.txt").read_text()
    if val and labels:
        import json

        from lwdet.pi_numerics import board_table, within_parity

        parity = json.loads((Path(export) / "parity.json").read_text())
        names = json.loads((Path(export) / "lwdet.json").read_text())["names"]
        rows = {r["run"]: r for r in board_table(out, labels, names, parity)}
        assert rows["cortex-a76-fp16-off"]["asimdhp"] and not rows["cortex-a72-fp16-off"]["asimdhp"]
        assert within_parity(rows["cortex-a76-fp16-off"]) and within_parity(rows["cortex-a72-fp16-on"])
        assert all(np.isfinite(r["map50_95"]) for r in rows.values())


def test_estimate_fits_on_the_run_peers_or_a_calibration_csv(tmp_path):
    import csv

    peers = _rows({1: 3.0})
    det = {"model": "yolov5n-ghostnet", "runtime": "ncnn", "threads": 1, "kind": "lwdet", "infer_min_ms": 10.0}
    scales, out = projection.estimate([*peers, det], ["pi4"])
    assert [(p["model"], p["pi_threads"]) for p in out] == [("yolov5n-ghostnet", 1), ("yolov5n-ghostnet", 4)]
    assert out[0]["projected_ms"] == pytest.approx(30.0)
    cal = tmp_path / "peers.csv"
    with open(cal, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(peers[0]))
        w.writeheader()
        w.writerows(peers)
    _, out2 = projection.estimate([det], ["pi4"], calibration=cal)
    assert out2[0]["projected_ms"] == pytest.approx(30.0)
    with pytest.raises(ValueError, match="--peers"):
        projection.estimate([det], ["pi4"])


# -------------------------------------------------------------------------------------------------------- numerics
def test_raw_difference_and_detection_changes_by_hand():
    from lwdet.pi_numerics import detection_changes, raw_difference

    ref = np.zeros((1, 6, 4), dtype=np.float32)
    out = ref.copy()
    out[0, 0, 1] = 2.5  # one anchor's x moves 2.5 px
    out[0, 5, 3] = 0.01  # one score moves 0.01
    d = raw_difference(ref, out)
    assert d == {"box_max_px": 2.5, "score_max": pytest.approx(0.01), "anchors_over_1px": 1, "anchors": 4}
    with pytest.raises(ValueError, match="shape"):
        raw_difference(ref, out[:, :5])
    a = {"im": [[0, 0, 10, 10, 0.9, 1], [20, 20, 30, 30, 0.5, 2], [0, 0, 5, 5, 0.1, 0]]}
    assert detection_changes(a, a) == {"dets_x86": 2, "dets_changed": 0}
    b = {"im": [[0, 0, 10, 10.2, 0.88, 1], [20, 20, 30, 30, 0.5, 3], [40, 40, 50, 50, 0.3, 0]]}
    # the first box still matches; the second changed class (vanished + appeared); a third appeared
    assert detection_changes(a, b) == {"dets_x86": 2, "dets_changed": 3}


def test_coco_map_is_one_for_the_ground_truth_itself(tmp_path):
    pytest.importorskip("pycocotools")
    from lwdet.pi_numerics import board_map, coco_ground_truth

    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.25 0.25 0.1 0.1\n")
    gt = coco_ground_truth(tmp_path, {"a.jpg": (100, 200)}, ["x", "y"])
    assert gt["annotations"][0]["bbox"] == pytest.approx([80, 30, 40, 40])
    perfect = {"a.jpg": [[80, 30, 120, 70, 0.9, 0], [40, 20, 60, 30, 0.8, 1]]}
    assert board_map(gt, perfect) == pytest.approx(1.0)
    assert board_map(gt, {"a.jpg": [[0, 0, 5, 5, 0.9, 0]]}) == pytest.approx(0.0)


# ---------------------------------------------------------------------------------------- the numerics tool's CLI
def _fake_export(folder: Path, imgsz=(64, 96)) -> Path:
    """An export folder as tools/pi_numerics.py reads it: lwdet.json (ExportMeta v1) beside the graph files."""
    from lwdet.artifacts import Blob, ExportMeta

    folder.mkdir(parents=True)
    for f in ("model.ncnn.param", "model.ncnn.bin"):
        (folder / f).write_text("")
    h, w = imgsz
    ExportMeta("ncnn", "tiny", ["a", "b"], [h, w], Blob("in0", [1, 3, h, w]), Blob("out0", [6, 0])).save(folder)
    return folder


def test_numerics_inputs_are_noise_then_letterboxed_images(tmp_path):
    import cv2

    export = _fake_export(tmp_path / "tiny_ncnn_model")
    images = tmp_path / "val"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.jpg"), np.full((40, 50, 3), 60 * i, np.uint8))
    out = tmp_path / "inputs.npy"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "pi_numerics.py"), "inputs"]
        + [str(export), str(images), str(out), "--n-images", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    x = np.load(out)
    assert x.shape == (2 + 2, 3, 64, 96) and x.dtype == np.float32  # 2 noise inputs, then 2 images
    assert x[2, :, 0, 0] == pytest.approx([114 / 255] * 3)  # letterbox padding at the corner


def test_recorded_board_numerics_keep_the_export_readable(tmp_path):
    import importlib.util

    from lwdet.edge.runner import read_export_meta

    export = _fake_export(tmp_path / "tiny_ncnn_model")
    spec = importlib.util.spec_from_file_location("pi_numerics_tool", ROOT / "tools" / "pi_numerics.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    runs = _numerics(0.1500)["runs"]
    tool.record(export, [{**r, "map_torch": 0.5} for r in runs])
    meta = read_export_meta(export)
    assert [r["run"] for r in meta.board_numerics["runs"]] == ["x86", "cortex-a76-fp16-off", "cortex-a76-fp16-on"]
    assert meta.board_numerics["precision"] == "fp32" and meta.board_numerics["map_tolerance"] == 0.005
    assert meta.board_numerics["defaults"]["Cortex-A76"]["fp16"] is False  # 0.1500 vs 0.1585: beyond 0.005


def test_int8_projects_on_both_boards_from_ncnns_published_int8_over_fp_ratios():
    """Pi 4 and Pi 5 int8 rows: the fp32 projection / the geometric mean of ncnn's published speed-ups (Pi 5 from
    ../shared/peers/ncnn-pi5-int8.csv, issue 37): 1.37x on a Pi 4 at 4 threads, only 1.10x on a Pi 5."""
    geo4, lo4, hi4 = projection.int8_speedup("pi4-t4")
    geo5, lo5, hi5 = projection.int8_speedup("pi5-t4")
    assert geo4 == pytest.approx(1.370, abs=1e-3) and (lo4, hi4) == pytest.approx((1.095, 1.780), abs=1e-3)
    assert geo5 == pytest.approx(1.103, abs=1e-3) and (lo5, hi5) == pytest.approx((1.024, 1.208), abs=1e-3)
    fp32 = [
        {"model": "m", "board": b, "pi_threads": 4, "projected_ms": 11.0, "low_ms": 10.0, "high_ms": 12.0}
        for b in ("pi4", "pi5")
    ]
    int8 = {r["board"]: r for r in projection.project_int8(fp32)}
    assert int8["pi5"]["projected_ms"] == pytest.approx(11.0 / geo5) and int8["pi5"]["high_ms"] == pytest.approx(
        12 / lo5
    )
    assert int8["pi4"]["projected_ms"] == pytest.approx(11.0 / geo4) and "pi5 int8 speed-up" in int8["pi5"]["label"]
    peers = ROOT.parent / "shared" / "peers" / "ncnn-pi5-int8.csv"
    if peers.is_file():  # the table is what the shared file says (the noisy 4-thread mobilenet pair: its minima)
        import csv

        rows = {(r["model"], r["threads"]): r for r in csv.DictReader(peers.open())}
        for target, threads in (("pi5-t4", "4"), ("pi5-t1", "1")):
            for model, (fp, i8) in projection.PUBLISHED_INT8[target].items():
                r = rows[(model, threads)]
                kind = "min" if (model, threads) == ("mobilenet", "4") else "avg"
                assert (fp, i8) == (float(r[f"fp_{kind}_ms"]), float(r[f"int8_{kind}_ms"])), (model, threads)
