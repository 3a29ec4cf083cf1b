import csv
import json
import re
from pathlib import Path

import pytest

from lwdet import report
from lwdet.cli import report as report_cli
from lwdet.report import COLUMNS, apply_bench, best_under, pareto_front, read_rows, write_report


def _row(model, lat, m, params=1.0, mem=50.0, **kw):
    return {"model": model, "latency_ms_t1": lat, "map5095": m, "params_m": params, "ncnn_peak_mb": mem, **kw}


TABLE = [
    _row("a", 10.0, 0.30),  # frontier: fastest
    _row("b", 20.0, 0.40),  # frontier
    _row("c", 25.0, 0.35),  # dominated by b
    _row("d", 20.0, 0.38),  # dominated by b (equal latency, less accurate)
    _row("e", 40.0, 0.50, params=3.0, mem=120.0),  # frontier: most accurate
    _row("f", 40.0, 0.50, params=2.0),  # ties e exactly: neither dominates
    _row("g", None, 0.90),  # no latency: not plotted, not on the frontier
]


def test_pareto_front_hand_made():
    assert [r["model"] for r in pareto_front(TABLE)] == ["a", "b", "e", "f"]


def test_pareto_front_single_and_empty():
    assert [r["model"] for r in pareto_front(TABLE[:1])] == ["a"]
    assert pareto_front([]) == []


def test_best_under_filters_and_ranks():
    assert [r["model"] for r in best_under(TABLE)][:3] == ["g", "f", "e"]  # f ties e on mAP, fewer params
    assert [r["model"] for r in best_under(TABLE, max_latency_ms=25)] == ["b", "d", "c", "a"]
    assert [r["model"] for r in best_under(TABLE, max_latency_ms=40, max_memory_mb=100)] == ["f", "b", "d", "c", "a"]
    assert [r["model"] for r in best_under(TABLE, max_params_m=1.0, min_map=0.36)] == ["g", "b", "d"]
    assert best_under(TABLE, max_latency_ms=5) == []


def test_apply_bench_replaces_latency_and_keeps_peers():
    bench = [
        {"model": "a", "runtime": "ncnn", "threads": 1, "infer_median_ms": 99.0, "mem_peak_mb": 70.0},
        {"model": "a", "runtime": "ncnn", "threads": 2, "infer_median_ms": 60.0, "mem_peak_mb": 72.0},
        {"model": "mobilenet_ssd", "kind": "peer", "runtime": "ncnn", "threads": 1, "infer_median_ms": 45.0},
    ]
    rows, peers = apply_bench(TABLE[:2], bench)
    assert (rows[0]["latency_ms_t1"], rows[0]["latency_ms_t2"], rows[0]["ncnn_peak_mb"]) == (99.0, 60.0, 70.0)
    assert rows[1]["latency_ms_t1"] == 20.0  # no bench row: unchanged
    assert [p["model"] for p in peers] == ["mobilenet_ssd"]


def _write_results(run_dir, maps):
    run_dir.mkdir(parents=True)
    cols = [
        "epoch",
        "time",
        "train/box_loss",
        "train/cls_loss",
        "train/dfl_loss",
        "metrics/precision(B)",
        "metrics/recall(B)",
        "metrics/mAP50(B)",
        "metrics/mAP50-95(B)",
        "metrics/F1(B)",
        "time/epoch_s",
    ]
    with open(run_dir / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i, m in enumerate(maps, 1):
            w.writerow([i, 10.0 * i, 3.0 / i, 2.0 / i, 1.0, m + 0.1, m + 0.05, m * 1.5, m, m + 0.07, 10.0])


def _study_csv(tmp_path):
    runs = tmp_path / "runs"
    _write_results(runs / "yolov5n", [0.05, 0.10, 0.20])
    _write_results(runs / "yolov5n-ghostnet_100", [0.04, 0.12, 0.22])
    rows = [
        dict(
            model="yolov5n",
            backbone="yolov5n",
            neck="sppf",
            params_m=1.77,
            gflops=1.2,
            macs_m=600,
            mac_mb=30.0,
            peak_act_mb=4.0,
            pt_mb=3.8,
            ncnn_bin_mb=7.0,
            train_s=30.0,
            epoch_s=10.0,
            map50=0.3,
            map5095=0.2,
            precision=0.3,
            recall=0.25,
            f1=0.27,
            latency_ms_t1=12.0,
            latency_ms_t2=8.0,
            ncnn_peak_mb=60.0,
            parity_ok=True,
            run_dir=str(runs / "yolov5n"),
        ),
        dict(
            model="yolov5n-ghostnet_100",
            backbone="ghostnet_100",
            neck="sppf",
            params_m=4.1,
            gflops=0.9,
            macs_m=450,
            mac_mb=40.0,
            peak_act_mb=5.0,
            pt_mb=8.5,
            ncnn_bin_mb=16.0,
            train_s=40.0,
            epoch_s=13.0,
            map50=0.33,
            map5095=0.22,
            precision=0.35,
            recall=0.27,
            f1=0.29,
            latency_ms_t1=15.0,
            latency_ms_t2=9.5,
            ncnn_peak_mb="",
            parity_ok=True,
            run_dir="runs/yolov5n-ghostnet_100",
        ),  # relative
    ]
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


def test_read_rows_parses_and_adds_density(tmp_path):
    rows = read_rows(_study_csv(tmp_path))
    assert rows[0]["params_m"] == 1.77 and rows[0]["parity_ok"] is True and rows[1]["ncnn_peak_mb"] is None
    assert rows[0]["map5095_per_mparam"] == pytest.approx(0.2 / 1.77)


def test_write_report_files(tmp_path):
    out = tmp_path / "docs"
    md = write_report(_study_csv(tmp_path), out, max_latency_ms=13)
    text = md.read_text()
    assert "## Pareto frontier" in text and "map5095_per_mparam" in text
    best = text.split("## Best under constraints")[1].split("##")[0]
    assert "yolov5n |" in best and "ghostnet" not in best
    pngs = {p.name for p in out.glob("*.png")}
    assert {"pareto_latency_map.png", "map_vs_gflops.png", "map_vs_mac.png"} <= pngs
    assert {f"curve_{k}.png" for k in report.CURVES} <= pngs
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size < 200_000
        assert f"({p.name})" in text
    assert "## Accuracy on full-size images" not in text and "pareto_latency_sliced_map.png" not in pngs


def test_full_size_accuracy_table_and_pareto_plot_when_the_study_has_them(tmp_path):
    from lwdet.report import SLICED_COLUMNS

    rows = [
        _row("yolov5n", 5.0, 0.13, sliced_map50=0.52, sliced_map5095=0.17, letterbox_map50=0.31, letterbox_map5095=0.1),
        _row("fast", 2.0, 0.09, sliced_map50=0.44, sliced_map5095=0.13, letterbox_map50=0.2, letterbox_map5095=0.06),
    ]
    for r in rows:
        r.update(sliced_ms_per_image=900.0, letterbox_ms_per_image=80.0)
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*COLUMNS, *SLICED_COLUMNS])
        w.writeheader()
        w.writerows(rows)
    text = write_report(path, tmp_path / "out").read_text()
    table = text.split("## Accuracy on full-size images (sliced vs letterbox)")[1].split("##")[0]
    assert "| model | sliced_map50 | sliced_map5095 | letterbox_map50 |" in table
    assert "| yolov5n | 0.520 | 0.170 | 0.310 | 0.100 | 900 | 80.0 |" in table
    assert (tmp_path / "out" / "pareto_latency_sliced_map.png").is_file() and "(pareto_latency_sliced_map.png)" in text
    fig = report.pareto_figure(rows, y=report.SLICED_ACCURACY)
    assert fig.axes[0].get_ylabel() == "full-size val mAP@0.5, sliced inference (tiles merged)"


def test_report_names_the_detectors_timed_from_their_yamls(tmp_path):
    rows = [_row("yolov5n", 5.0, 0.13, latency_graph="trained"), _row("fast", 2.0, 0.09, latency_graph="rebuilt")]
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*COLUMNS, "latency_graph"])
        w.writeheader()
        w.writerows(rows)
    assert read_rows(path)[1]["latency_graph"] == "rebuilt"  # text, not a number
    text = write_report(path, tmp_path / "out").read_text()
    assert "Timed from their YAMLs with random weights" in text and "weights not here" in text
    assert text.split("with random weights")[1].split("\n")[0].endswith(": fast.")


def test_cli_with_bench_csv(tmp_path, capsys):
    bench = tmp_path / "pi.csv"
    bench.write_text(
        "kind,model,runtime,threads,infer_median_ms,mem_peak_mb\n"
        "lwdet,yolov5n,ncnn,1,120.5,80\nlwdet,yolov5n,ncnn,2,70,82\npeer,nanodet-m,ncnn,1,95,60\n"
    )
    out = tmp_path / "docs"
    assert (
        report_cli.main(
            [str(_study_csv(tmp_path)), "--out", str(out), "--bench-csv", str(bench), "--max-latency-ms", "100"]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "yolov5n-ghostnet_100" in said.split("best under")[1]  # yolov5n is 120 ms on the Pi now
    assert "target (a): met (yolov5n-ghostnet_100: 15.0 ms = 0.12x, val mAP50-95 0.220 = 110.0 %)" in said
    assert "target (b): cannot be judged: no Yolo-FastestV2 peer timing" in said  # the Pi bench timed nanodet only
    text = (out / "report.md").read_text()
    assert "120" in text and "nanodet-m" in text


def test_time_split_and_layer_type_figures_and_own_peers(tmp_path):
    import json

    path = _study_csv(tmp_path)
    rows = list(csv.DictReader(path.open()))
    for r, parts in zip(rows, ((5.0, 3.0, 4.0), (9.0, 3.5, 4.5))):
        r.update(backbone_ms=parts[0], neck_ms=parts[1], head_ms=parts[2])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (tmp_path / "runs" / "yolov5n" / "ncnn_layer_type_ms.json").write_text(
        json.dumps({"Convolution": 7.0, "Swish": 2.0, "Concat": 1.0})
    )
    (tmp_path / "peers.csv").write_text(
        "kind,model,runtime,threads,infer_median_ms,mem_peak_mb\n"
        "peer,yolo-fastestv2,ncnn,1,3.9,90\npeer,yolo-fastestv2,ncnn,2,3.7,90\n"
        "peer,mobilenet_v2,ncnn,1,19.5,130\n"
    )
    out = tmp_path / "docs"
    text = write_report(path, out).read_text()
    assert (out / "time_by_part.png").is_file() and (out / "time_by_layer_type.png").is_file()
    split = text.split("## Where the time goes")[1].split("##")[0]
    assert (
        "| yolov5n | 5.000 | 3.000 | 4.000 |" in split and "| yolov5n-ghostnet_100 | 9.000 | 3.500 | 4.500 |" in split
    )
    assert "(time_by_part.png)" in text and "(time_by_layer_type.png)" in text
    peers = text.split("## Peer networks")[1]
    assert "yolo-fastestv2" in peers and "mobilenet_v2" in peers and "| 2 |" not in peers  # 1 thread only
    assert report.is_detector_peer({"model": "yolo-fastestv2"}) and not report.is_detector_peer({"model": "mnasnet"})


def test_kendall_tau_hand_values():
    assert report.kendall_tau([1, 2, 3], [10, 20, 30]) == 1.0
    assert report.kendall_tau([1, 2, 3], [30, 20, 10]) == -1.0
    assert report.kendall_tau([1, 2, 3], [10, 30, 20]) == pytest.approx(1 / 3)
    assert report.kendall_tau([1], [1]) is None


def test_ranking_over_epochs_reads_each_runs_csv(tmp_path):
    results = _study_csv(tmp_path)
    rows = report.read_rows(results)
    table, taus = report.ranking_over_epochs(rows, results.parent)
    assert [t["model"] for t in table] == ["yolov5n", "yolov5n-ghostnet_100"]
    assert table[0] == {"model": "yolov5n", "ep1": 0.05, "ep2": 0.10, "ep3": 0.20}
    assert taus == {"ep1": -1.0, "ep2": 1.0, "ep3": 1.0}  # the baseline led at epoch 1, GhostNet from epoch 2
    text = write_report(results, tmp_path / "docs").read_text()
    section = text.split("## Is the ranking stable?")[1].split("##")[0]
    assert "1: -1.000, 2: 1.000, 3: 1.000" in section and "| yolov5n-ghostnet_100 | 0.040 | 0.120 | 0.220 |" in section


FAST_CORNER = [  # names and numbers of the long study's crowded fast corner (docs/study-long)
    _row("yolov5n", 5.3, 0.138, params=2.5),
    _row("yolov5n-litepan-litehead", 2.48, 0.050),
    _row("yolov5n-mobilenetv3_small_100-litepan", 3.07, 0.059, params=1.5),
    _row("yolov5n-mobilenetv3_small_100-litepan-litehead", 1.63, 0.010),
    _row("yolov5n-shufflenetv2_050-litepan-litehead", 1.17, 0.005, params=0.25),
    _row("yolov5n-shufflenetv2_050-nanopan-nanohead", 0.95, 0.002, params=0.2),
    _row("yolov5n-shufflenetv2_050-p45pan-nanohead", 0.953, 0.000, params=0.2),
    _row("yolov5n-mobilenetv3_small_100", 4.05, 0.087, params=2.8),
    _row("yolov5n-ghostnet_100", 6.1, 0.099),
    _row("yolov5n-shufflenetv2_100", 5.57, 0.082),
    _row("yolov5n-mobilenetv3_small_100-aspp", 6.2, 0.082),
]


def test_pareto_figure_has_word_axis_titles_context_and_labels_that_do_not_collide():
    rows = [{**r, "imgsz": 160.0, "machine": "Test CPU (x86_64, 2 cores)"} for r in FAST_CORNER]
    peers = [
        {"model": "yolo-fastestv2", "threads": 1, "infer_median_ms": 0.96},
        {"model": "mnasnet", "infer_median_ms": 5.4},
    ]
    fig = report.pareto_figure(rows, peers)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "ncnn latency per image (ms)" and ax.get_ylabel() == "val mAP@0.5:0.95"
    assert ax.get_title(loc="left") == "input 160x160 px · ncnn, 1 thread · Test CPU (x86_64, 2 cores)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("yolo-fastestv2 (peer graph") for t in legend) and not any("mnasnet" in t for t in legend)
    labels = {t.get_text(): t for t in ax.texts if t.get_text()}  # (the rest: leader lines)
    assert set(labels) == {report.short_name(r["model"]) for r in rows}
    assert "shufflenetv2_050-litepan-litehead" in labels  # the shared prefix is said once, in the legend
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in labels.values()]
    overlaps = [
        (a, b)
        for i, (a, ba) in enumerate(zip(labels, boxes))
        for b, bb in list(zip(labels, boxes))[i + 1 :]
        if ba.overlaps(bb)
    ]
    assert overlaps == []
    fig.clf()


def test_curves_are_small_multiples_with_legends_beside_the_panels(tmp_path):
    rows = [
        _row(m, 1.0, 0.1, neck=n, head=h)
        for m, n, h in [
            ("yolov5n", "sppf", "yolo"),
            *((f"yolov5n-b{i}", "sppf", "yolo") for i in range(10)),
            ("yolov5n-aspp", "aspp", "yolo"),
            ("yolov5n-litepan-litehead", "lite", "lite"),
            ("yolo26n", "", ""),
        ]
    ]
    runs = {r["model"]: {"epoch": [1.0, 2.0], "metrics/mAP50-95(B)": [0.01, 0.02]} for r in rows}
    fig = report.curve_figure(runs, rows, "metrics/mAP50-95(B)", "val mAP@0.5:0.95")
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == [
        "SPPF neck, YOLOv5n head (1/2)",
        "SPPF neck, YOLOv5n head (2/2)",
        "ASPP neck",
        "lite / nano neck or head",
        report.curves.GROUPS[3],
    ]
    fig.canvas.draw()
    for ax in fig.axes:
        assert 2 <= len(ax.lines) <= report.curves.PANEL_LINES + 1  # the baseline is in every panel
        assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1  # beside, not over the lines
    assert sum(len(ax.lines) for ax in fig.axes) == len(rows) + len(fig.axes) - 1


def test_seed_runs_are_grouped_reported_as_noise_and_kept_off_the_frontier(tmp_path):
    rows = [
        _row("yolov5n", 5.0, 0.138, seed=0.0, test_map5095=0.136),
        _row("yolov5n-seed1", 4.0, 0.125, seed=1.0, test_map5095=0.122),  # faster by timing noise only
        _row("ghost", 6.0, 0.099, seed=0.0),
        _row("other-seed3", 3.0, 0.01, seed=3.0),
    ]  # no "other" row: a detector of its own
    assert {k: [r["model"] for r in v] for k, v in report.seed_groups(rows).items()} == {
        "yolov5n": ["yolov5n", "yolov5n-seed1"]
    }
    assert [r["model"] for r in report.one_run_each(rows)] == ["yolov5n", "ghost", "other-seed3"]
    (noise,) = report.seed_noise(rows)
    assert noise["seeds"] == "0, 1" and noise["val_map5095"] == "0.138 / 0.125"
    assert noise["val_spread"] == pytest.approx(0.013) and noise["test_spread"] == pytest.approx(0.014)
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*COLUMNS, "seed", "test_map5095"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    text = write_report(path, tmp_path / "out").read_text()
    assert "## Seed noise" in text and "0.138 / 0.125" in text
    front = text.split("## Pareto frontier")[1].split("##")[0]
    assert "yolov5n |" in front and "seed1" not in front and "other-seed3" in front


def test_cost_vs_latency_names_pairs_where_flops_mislead():
    rows = [
        _row("light_but_slow", 6.0, 0.1, gflops=0.37, mac_mb=60.0),
        _row("base", 5.0, 0.1, gflops=0.44, mac_mb=30.0),
        _row("fast", 2.0, 0.1, gflops=0.20, mac_mb=20.0),
        _row("noise", 5.1, 0.1, gflops=0.43, mac_mb=31.0),
    ]  # 2% fewer FLOPs, 2% slower: inside the margin
    pairs, taus = report.cost_vs_latency(rows)
    assert [(p["fewer_flops"], p["but_slower_than"]) for p in pairs] == [
        ("light_but_slow", "base"),
        ("light_but_slow", "noise"),
    ]
    assert pairs[0]["latency_ratio"] == pytest.approx(1.2) and pairs[0]["mac_ratio"] == pytest.approx(2.0)
    assert taus["mac_mb"] == pytest.approx(1.0) and taus["gflops"] < 1.0  # MAC orders them as the clock does
    assert report.cost_vs_latency([_row("a", None, 0.1, gflops=1.0)]) == (
        [],
        {"gflops": None, "mac_mb": None, "params_m": None},
    )


def test_report_keeps_its_data_and_can_be_written_again_without_the_runs(tmp_path):
    import shutil

    path = _study_csv(tmp_path)
    (tmp_path / "runs" / "yolov5n" / "ncnn_layer_type_ms.json").write_text('{"Convolution": 7.0, "Swish": 2.0}')
    out = tmp_path / "docs"
    first = write_report(path, out).read_text()
    data = out / report.DATA
    kept, original = (list(csv.DictReader(f.open())) for f in (data / "results.csv", path))
    assert [{**r, "run_dir": ""} for r in kept] == [{**r, "run_dir": ""} for r in original]
    assert [r["run_dir"] for r in kept] == [r["model"] for r in kept]  # the copy's own subfolders: portable
    assert (data / "yolov5n" / "results.csv").is_file() and (data / "yolov5n-ghostnet_100" / "results.csv").is_file()
    assert (data / "yolov5n" / "ncnn_layer_type_ms.json").is_file()
    shutil.rmtree(tmp_path / "runs")  # the run folders are gone (a new checkout): the report's own copy suffices
    path.unlink()
    again = tmp_path / "again"
    text = write_report(data / "results.csv", again).read_text()
    assert {f"curve_{k}.png" for k in report.CURVES} <= {p.name for p in again.glob("*.png")}
    assert (again / "time_by_layer_type.png").is_file()
    # the same tables; run_dir is shown as the table stores it: relative to the CSV, in the copy its own subfolder
    assert tables(text, drop=("run_dir",)) == tables(first, drop=("run_dir",))
    assert "| yolov5n |" in text.split("## Training", 1)[1] and "| runs/yolov5n |" in first.split("## Training", 1)[1]
    assert write_report(data / "results.csv", out).is_file()  # into its own folder: nothing copied onto itself
    assert (data / "results.csv").is_file()


def tables(markdown: str, drop: tuple[str, ...] = ()) -> dict[str, list[list[str]]]:
    """Every table of a report: section title -> rows of cells (header first), the columns named in ``drop`` out."""
    found: dict[str, list[list[str]]] = {}
    title = ""
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("# ").strip()
        elif line.startswith("|") and not set(line) <= set("|-: "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows = found.setdefault(title, [])
            if not rows:
                keep = [i for i, c in enumerate(cells) if c not in drop]
                found[title + "\0keep"] = [[str(i) for i in keep]]
            keep = [int(i) for i in found[title + "\0keep"][0]]
            rows.append([cells[i] for i in keep if i < len(cells)])
    return {k: v for k, v in found.items() if not k.endswith("\0keep")}


def test_cli_missing_csv_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "lwdet.report", str(tmp_path / "nope.csv")], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and r.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: study results CSV not found"


def test_cli_writes_under_runs_by_default_and_never_into_a_folder_with_files(tmp_path, monkeypatch, capsys):
    path = _study_csv(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert report_cli.main([str(path)]) == 0
    assert (tmp_path / "runs" / "report" / tmp_path.name / "report.md").is_file()  # <study folder>'s name
    assert not (tmp_path / "docs").exists()
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    assert report_cli.main([str(path), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and not (out / "report.md").exists()
    assert report_cli.main([str(path), "--out", str(out), "--overwrite"]) == 0
    assert (out / "report.md").is_file() and (out / "notes.md").read_text() == "mine"


def test_projected_pi_columns_scale_the_study_latency_and_say_so(tmp_path):
    from pathlib import Path

    from lwdet.edge.bench import projection

    calibration = Path(__file__).resolve().parents[1] / "docs" / "pi" / "peers.csv"  # this repo's peer timings
    path = _study_csv(tmp_path)
    rows = {r["model"]: r for r in read_rows(path)}
    text = write_report(path, tmp_path / "out", pi_calibration=calibration).read_text()
    section = text.split("## Projected Raspberry Pi latency (a projection, not a measurement)")[1].split("\n## ")[0]
    scales = projection.fit(projection.read_rows(calibration))
    assert "leave-one-out error" in section and f"mean {100 * scales['pi5-t4'].loo_mean:.0f} %" in section
    line = next(ln for ln in section.splitlines() if ln.startswith("| yolov5n |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    here = rows["yolov5n"]["latency_ms_t1"]
    assert float(cells[1]) == pytest.approx(here, rel=1e-2)
    assert float(cells[2]) == pytest.approx(here * scales["pi4-t1"].ratio, rel=1e-2)  # Pi 4, 1 thread


def _curve(maps):
    return {"epoch": [float(i) for i in range(1, len(maps) + 1)], "metrics/mAP50-95(B)": list(maps)}


def test_plateau_verdicts_from_raw_epochs_with_three_epoch_means():
    rising = [0.01 * e for e in range(1, 31)]  # +0.01 an epoch to the end
    flat = [min(0.2, 0.02 * e) for e in range(1, 31)]  # flat from epoch 10
    wobble = [*flat[:27], 0.19, 0.21, 0.2]  # noise at the end: the 3-epoch mean damps it
    runs = {"rising": _curve(rising), "flat": _curve(flat), "wobble": _curve(wobble), "short": _curve(rising[:10])}
    got = {r["model"]: r for r in report.plateau(runs)}
    assert got["rising"]["final_map5095"] == pytest.approx(0.29) and got["rising"]["epochs"] == 30
    assert got["rising"]["map5095_10_earlier"] == pytest.approx(0.19)  # epochs 18-20
    assert got["rising"]["last10_share"] == pytest.approx(0.10 / 0.29) and got["rising"]["verdict"] == "still rising"
    assert got["flat"]["last10_share"] == pytest.approx(0.0) and got["flat"]["verdict"] == "plateau"
    assert got["wobble"]["final_map5095"] == pytest.approx(0.2) and got["wobble"]["verdict"] == "plateau"
    assert got["short"]["verdict"] == "too short" and got["short"]["last10_share"] is None
    (eleven,) = report.plateau({"x": _curve(rising[:11])})  # 11 epochs: judged against epoch 1 alone
    assert eleven["map5095_10_earlier"] == pytest.approx(0.01) and eleven["verdict"] == "still rising"
    (almost,) = report.plateau({"x": _curve([*[0.2] * 20, *[0.209] * 3])})  # +4.3 %: under 5 %
    (zero,) = report.plateau({"x": _curve([0.0] * 15)})
    assert zero["verdict"] == "no accuracy" and zero["last10_share"] is None
    assert almost["last10_share"] == pytest.approx(0.009 / 0.209) and almost["verdict"] == "plateau"


def _write_study(tmp_path, rows, peers=None, extra=("imgsz", "seed")):
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*COLUMNS, *extra], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    if peers:
        (tmp_path / "peers.csv").write_text(peers)
    return path


def test_training_converged_section_and_summary_line(tmp_path):
    runs = tmp_path / "runs"
    _write_results(runs / "yolov5n", [0.01 * e for e in range(1, 31)])  # still rising
    _write_results(runs / "yolov5n-fast", [min(0.1, 0.01 * e) for e in range(1, 31)])  # flat from epoch 10
    rows = [
        _row("yolov5n", 10.0, 0.29, map50=0.4, run_dir=str(runs / "yolov5n"), neck="sppf", head="yolo"),
        _row("yolov5n-fast", 4.0, 0.10, map50=0.2, run_dir=str(runs / "yolov5n-fast"), neck="lite", head="lite"),
    ]
    text = write_report(_write_study(tmp_path, rows), tmp_path / "out").read_text()
    section = text.split("## Has training converged?")[1].split("\n## ")[0]
    assert "mean of the last 3 epochs" in section and "raw values, not the best so far" in section
    assert "| yolov5n | 30 | 0.290 | 0.190 | +34.5 % | still rising |" in section
    assert "| yolov5n-fast | 30 | 0.100 | 0.100 | +0.0 % | plateau |" in section
    summary = text.split("## Summary")[1].split("\n## ")[0]
    assert "- Training: still rising at the end of the budget" in summary and "yolov5n (+34.5 %)" in summary
    assert "at a plateau" in summary and "yolov5n-fast (+0.0 %)" in summary  # target (a)'s candidate


PEERS = "kind,model,runtime,threads,input,infer_median_ms\npeer,yolo-fastestv2,ncnn,1,320x320x3,3.9\n"


def _goals(rows, peers=()):
    return {g["target"]: g for g in report.targets.targets(rows, peers)}


def test_target_roles_and_seed_means():
    assert report.targets.role({"model": "yolov5n"}) == "baseline"
    assert report.targets.role({"model": "yolo26n", "neck": "", "head": ""}) == "engine"
    assert report.targets.role({"model": "rival", "backbone": "yolo11n", "neck": "", "head": ""}) == "engine"
    assert report.targets.role({"model": "yolov5n-litepan-litehead", "neck": "lite", "head": "lite"}) == "lwdet"
    ds = report.targets.detectors([_row("yolov5n", 10.0, 0.20), _row("yolov5n-seed1", 9.0, 0.22), _row("f", 1, 0.1)])
    assert [(d["model"], d["seeds"]) for d in ds] == [("yolov5n", 2), ("f", 1)]
    assert ds[0]["map5095"] == pytest.approx(0.21) and ds[0]["latency_ms_t1"] == 10.0  # first run's latency


def test_target_a_met_not_met_and_fallback_to_the_fastest():
    base = [_row("yolov5n", 10.0, 0.20), _row("yolov5n-seed1", 9.0, 0.22)]  # mean mAP50-95 0.21
    met = _goals([*base, _row("yolov5n-a", 4.0, 0.2), _row("yolov5n-b", 3.0, 0.1), _row("yolov5n-c", 6, 0.3)])["(a)"]
    assert met["verdict"] == "met" and met["candidate"] == "yolov5n-a"  # c is more accurate but 0.6x
    assert met["latency"] == "4.000 ms = 0.40x" and met["accuracy"] == "val mAP50-95 0.200 = 95.2 %"
    assert "mean of 2 seeds" in met["reference"]
    low = _goals([*base, _row("yolov5n-b", 3.0, 0.1)])["(a)"]
    assert low["verdict"] == "not met" and low["accuracy"] == "val mAP50-95 0.100 = 47.6 %"
    slow = _goals([*base, _row("yolov5n-d", 8.0, 0.3), _row("yolov5n-e", 7.0, 0.1)])["(a)"]
    assert slow["verdict"] == "not met" and slow["candidate"] == "yolov5n-e (none is that fast: the fastest)"
    assert slow["latency"] == "7.000 ms = 0.70x"
    assert _goals([_row("yolov5n-b", 3.0, 0.1)])["(a)"]["verdict"] == "cannot be judged: the study has no yolov5n row"
    pi = [{**base[0], "machine": "Raspberry Pi 4"}, {**base[1], "machine": "Raspberry Pi 4"}]
    mixed = _goals(
        [*pi, _row("yolov5n-b", 3.0, 0.2, machine="Xeon"), _row("yolov5n-f", 4.5, 0.1, machine="Raspberry Pi 4")]
    )
    assert mixed["(a)"]["candidate"] == "yolov5n-f"  # b was timed on another machine: not compared with the Pi
    assert _goals([*pi, _row("yolov5n-b", 3.0, 0.2, machine="Xeon")])["(a)"]["verdict"] == (
        "cannot be judged: no lwdet detector has a val mAP50-95 and a latency from yolov5n's machine"
    )


def test_target_a_plus_against_the_more_accurate_rival():
    rows = [_row("yolov5n", 10.0, 0.2, neck="sppf", head="yolo"), _row("yolov5n-a", 3.5, 0.2, neck="lite")]
    rivals = [_row("yolo11n", 6.0, 0.18, neck="", head=""), _row("yolo26n", 8.0, 0.21, neck="", head="")]
    met = _goals([*rows, *rivals])["(a+)"]
    assert met["reference"] == "yolo26n: 8.000 ms, val mAP50-95 0.210" and met["verdict"] == "met"
    assert met["latency"] == "3.500 ms = 0.44x" and met["accuracy"] == "val mAP50-95 0.200 = 95.2 %"
    rivals[1]["map5095"] = 0.25
    assert _goals([*rows, *rivals])["(a+)"]["verdict"] == "not met"  # 80 % of YOLO26n's mAP50-95
    none = _goals(rows)["(a+)"]
    assert none["verdict"] == "cannot be judged: the study has no YOLO11n or YOLO26n row"
    assert none["candidate"] == "-" and _goals(rows)["(a)"]["verdict"] == "met"  # (a) is judged all the same


def test_target_b_against_the_yolo_fastestv2_peer():
    peer = [{"model": "yolo-fastestv2", "threads": 1, "input": "320x320x3", "infer_median_ms": 3.9}]
    base = _row("yolov5n", 10.0, 0.2, map50=0.30, imgsz=320.0)
    fast = [_row("yolov5n-x", 3.0, 0.05, map50=0.10), _row("yolov5n-y", 3.8, 0.1, map50=0.18)]
    met = _goals([base, *fast], peer)["(b)"]
    assert met["verdict"] == "met" and met["candidate"] == "yolov5n-y"  # x is faster, but 33 % of the mAP50
    assert met["latency"] == "3.800 ms = 0.97x" and met["accuracy"] == "val mAP50 0.180 = 60.0 %"
    assert met["reference"].startswith("yolo-fastestv2 (peer graph): 3.900 ms at 320 px")
    weak = _goals([base, fast[0]], peer)["(b)"]
    assert weak["verdict"] == "not met" and "(none that fast is accurate enough" in weak["candidate"]
    slow = _goals([base, _row("yolov5n-z", 4.5, 0.1, map50=0.2)], peer)["(b)"]
    assert slow["verdict"] == "not met" and slow["latency"] == "4.500 ms = 1.15x"
    assert _goals([base, *fast])["(b)"]["verdict"].startswith("cannot be judged: no Yolo-FastestV2 peer timing")
    other = [{**peer[0], "input": "352x352x3"}]
    assert _goals([base, *fast], other)["(b)"]["verdict"] == (
        "cannot be judged: yolo-fastestv2 was timed at 352 px, the study at 320"
    )


def test_targets_section_in_the_report(tmp_path):
    rows = [
        _row("yolov5n", 10.0, 0.20, map50=0.30, imgsz=320, seed=0, neck="sppf", head="yolo"),
        _row("yolov5n-seed1", 10.5, 0.22, map50=0.32, imgsz=320, seed=1, neck="sppf", head="yolo"),
        _row("yolov5n-fast", 3.5, 0.12, map50=0.18, imgsz=320, seed=0, neck="lite", head="lite"),
    ]
    text = write_report(_write_study(tmp_path, rows, PEERS), tmp_path / "out").read_text()
    section = text.split("## Targets")[1].split("\n## ")[0]
    assert "mean accuracy and its first run's latency" in section
    assert (
        "| (a) | <= 0.5x yolov5n's latency, >= 95 % of its mAP50-95 | yolov5n: 10.0 ms, val mAP50-95 0.210, mean of 2 "
        "seeds | yolov5n-fast | 3.500 ms = 0.35x | val mAP50-95 0.120 = 57.1 % | not met |" in section
    )
    assert "| cannot be judged: the study has no YOLO11n or YOLO26n row |" in section
    assert "| yolov5n-fast | 3.500 ms = 0.90x | val mAP50 0.180 = 58.1 % | met |" in section  # 0.18 / 0.31
    summary = text.split("## Summary")[1].split("\n## ")[0]
    assert "- Target (a) (<= 0.5x yolov5n's latency, >= 95 % of its mAP50-95): **not met**" in summary
    assert "- Target (b) (" in summary and "**met**; yolov5n-fast: 3.500 ms = 0.90x, val mAP50 0.180 = 58.1" in summary
    assert "Training:" not in summary  # no epoch CSVs: nothing said about convergence
    assert "Verdicts read the val split's means over seeds (not every row has a test split)." in section


def _split_rows():
    """A study whose val and test splits disagree: on val (a) and (b) are met and YOLO26n is the (a+) reference, on
    test (a) and (b) are not met and YOLO11n is."""
    lwdet, engine = {"neck": "lite", "head": "lite"}, {"neck": "", "head": ""}

    def row(model, lat, val, test, **kw):
        return _row(model, lat, val[0], map50=val[1], test_map5095=test[0], test_map50=test[1], imgsz=320, **kw)

    return [
        row("yolov5n", 10.0, (0.20, 0.30), (0.30, 0.40), seed=0, neck="sppf", head="yolo"),
        row("yolov5n-seed1", 10.5, (0.22, 0.30), (0.32, 0.40), seed=1, neck="sppf", head="yolo"),
        row("yolov5n-a", 4.0, (0.20, 0.25), (0.25, 0.30), seed=0, **lwdet),  # val 95.2 % of 0.21, test 80.6 % of 0.31
        row("yolov5n-y", 3.8, (0.10, 0.18), (0.10, 0.15), seed=0, **lwdet),  # mAP50: val 60 % of 0.30, test 37.5 %
        row("yolo11n", 6.0, (0.18, 0.28), (0.30, 0.42), seed=0, **engine),
        row("yolo26n", 8.0, (0.21, 0.30), (0.28, 0.40), seed=0, **engine),
    ]


def test_targets_read_the_test_split_means_when_every_row_has_them():
    rows, peer = _split_rows(), [{"model": "yolo-fastestv2", "threads": 1, "input": "320", "infer_median_ms": 3.9}]
    assert report.targets.verdict_split(rows) == report.targets.TEST
    goals = _goals(rows, peer)
    assert goals["(a)"]["verdict"] == "not met" and goals["(a)"]["candidate"] == "yolov5n-a"
    assert goals["(a)"]["reference"] == "yolov5n: 10.0 ms, test mAP50-95 0.310, mean of 2 seeds"
    assert goals["(a)"]["accuracy"] == "test mAP50-95 0.250 = 80.6 %"
    assert goals["(a+)"]["reference"] == "yolo11n: 6.000 ms, test mAP50-95 0.300"  # the more accurate on test
    assert goals["(b)"]["verdict"] == "not met" and goals["(b)"]["accuracy"] == "test mAP50 0.150 = 37.5 %"
    assert "yolov5n: test mAP50 0.400, mean of 2 seeds" in goals["(b)"]["reference"]


def test_targets_fall_back_to_val_when_a_row_lacks_a_test_figure():
    peer = [{"model": "yolo-fastestv2", "threads": 1, "input": "320", "infer_median_ms": 3.9}]
    for key in ("test_map5095", "test_map50"):
        rows = _split_rows()
        rows[-1][key] = None  # YOLO26n has no test figure: every verdict reads val
        assert report.targets.verdict_split(rows) == report.targets.VAL
        goals = _goals(rows, peer)
        assert goals["(a)"]["verdict"] == "met" and goals["(a)"]["accuracy"] == "val mAP50-95 0.200 = 95.2 %"
        assert goals["(a+)"]["reference"] == "yolo26n: 8.000 ms, val mAP50-95 0.210"
        assert goals["(b)"]["verdict"] == "met" and goals["(b)"]["accuracy"] == "val mAP50 0.180 = 60.0 %"
    failed = [*_split_rows(), {"model": "broken", "status": "failed"}]  # a failed row is not compared
    assert report.targets.verdict_split(failed) == report.targets.TEST


def test_the_report_says_which_split_the_verdicts_read(tmp_path):
    extra = ("imgsz", "seed", "test_map5095", "test_map50")
    peers = "kind,model,runtime,threads,input,infer_median_ms\npeer,yolo-fastestv2,ncnn,1,320x320x3,3.9\n"
    for name, rows, split, verdict in (
        ("test", _split_rows(), "the test split's means over seeds (configurations are chosen on val)", "not met"),
        ("val", [*_split_rows()[:-1], {**_split_rows()[-1], "test_map50": None}], "the val split's means", "met"),
    ):
        (tmp_path / name).mkdir()
        text = write_report(_write_study(tmp_path / name, rows, peers, extra), tmp_path / name / "out").read_text()
        section = text.split("## Targets")[1].split("\n## ")[0]
        assert f"Verdicts read {split}" in section
        assert f"| {name} mAP50-95 " in section and f"| {verdict} |" in section
        summary = text.split("## Summary")[1].split("\n## ")[0]
        assert f"- Target (a) (<= 0.5x yolov5n's latency, >= 95 % of its mAP50-95): **{verdict}**" in summary
        assert f", {name} mAP50 " in summary


def test_a_tuned_study_reports_each_rows_choice_and_cost_once(tmp_path):
    tuned = {"tuned": "lr0=0.02 nbs=16", "tune_trials": 8, "tune_epochs": 170, "tune_cpu_s": 5100.0, "tune_edge": "nbs"}
    rows = [
        _row("yolov5n", 10.0, 0.29, seed=0, **tuned),
        _row("yolov5n-seed1", 10.0, 0.28, seed=1, **tuned),  # a repeat seed: the same tuning, listed once
        _row("yolov5n-fast", 4.0, 0.20, seed=0, neck="lite", head="lite", tuned="lr0=0.03", tune_trials=8,
             tune_epochs=150, tune_cpu_s=3000.0, tune_edge=""),
    ]  # fmt: skip
    extra = ("imgsz", "seed", "tuned", "tune_trials", "tune_epochs", "tune_cpu_s", "tune_edge")
    text = write_report(_write_study(tmp_path, rows, extra=extra), tmp_path / "out").read_text()
    section = text.split("## Tuning (the same budget for every row)")[1].split("\n## ")[0]
    assert "| yolov5n | lr0=0.02 nbs=16 | 8 | 170 | 5100 | nbs |" in section
    assert "| yolov5n-fast | lr0=0.03 | 8 | 150 | 3000 |" in section and "yolov5n-seed1" not in section
    (tmp_path / "plain").mkdir()
    plain = [{k: v for k, v in r.items() if not k.startswith("tune")} for r in rows]
    assert (
        "## Tuning"
        not in write_report(_write_study(tmp_path / "plain", plain, extra=extra), tmp_path / "p").read_text()
    )


def test_a_studys_side_by_side_pass_gives_the_latency_peers_and_says_so(tmp_path):
    path = _study_csv(tmp_path)  # latency beside training: yolov5n 12 ms, yolov5n-ghostnet_100 15 ms
    (tmp_path / "peers.csv").write_text("kind,model,runtime,threads,infer_median_ms\npeer,yolo-fastestv2,ncnn,1,1.0\n")
    (tmp_path / "latency.csv").write_text(  # the pass after training: fastest loop and median of medians
        "kind,model,runtime,threads,infer_min_ms,infer_median_ms,mem_peak_mb,rounds,cpu,arch,cores\n"
        "lwdet,yolov5n,ncnn,1,10.0,11.0,70,3,Quiet CPU,x86_64,2\n"
        "lwdet,yolov5n-ghostnet_100,ncnn,1,4.0,4.5,50,3,Quiet CPU,x86_64,2\n"
        "peer,yolo-fastestv2,ncnn,1,3.0,3.2,40,3,Quiet CPU,x86_64,2\n"
    )
    rows, peers, source = report.load_study(path)
    lat = {r["model"]: r["latency_ms_t1"] for r in rows}
    assert lat == {"yolov5n": 10.0, "yolov5n-ghostnet_100": 4.0}  # the fastest loop, not the figures beside training
    assert [p["model"] for p in peers] == ["yolo-fastestv2"] and peers[0]["infer_median_ms"] == 3.2
    assert source.startswith("one side-by-side pass after training") and "3 passes" in source
    text = write_report(path, tmp_path / "docs").read_text()
    assert "one side-by-side pass after training" in text and "Quiet CPU" in text
    assert (tmp_path / "docs" / "data" / "latency.csv").is_file()  # kept with the report's data


def test_failed_study_rows_are_listed_not_ranked(tmp_path):
    path = _study_csv(tmp_path)
    rows = list(csv.DictReader(path.open()))
    rows.append({"model": "broken", "status": "failed", "error": "ValueError: no such layer"})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*COLUMNS, "error", "status"])
        w.writeheader()
        w.writerows(rows)
    text = write_report(path, tmp_path / "docs").read_text()
    assert "Failed (not in the tables; the study tries them again when it is run again): broken: ValueError" in text
    assert "| broken |" not in text and "2 detectors" in text


DOCS = Path(__file__).resolve().parents[1] / "docs"
ABSOLUTE = re.compile(r"(^|[,\"'])(/|[A-Za-z]:[\\/]|~/)")  # a cell that starts like a path of one machine


@pytest.mark.parametrize("path", sorted(DOCS.glob("**/*.csv")), ids=lambda p: str(p.relative_to(DOCS)))
def test_no_committed_csv_holds_an_absolute_path(path):
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert not ABSOLUTE.search(line), f"{path.relative_to(DOCS)} line {i}: an absolute path ({line[:120]}...)"


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("path", sorted(DOCS.glob("**/*.json")), ids=lambda p: str(p.relative_to(DOCS)))
def test_no_committed_json_holds_an_absolute_path(path):
    found = [v for v in _strings(json.loads(path.read_text(encoding="utf-8"))) if ABSOLUTE.match(f'"{v}')]
    assert not found, f"{path.relative_to(DOCS)}: an absolute path ({found[0][:120]})"


REPORTS = sorted(
    p.parent.parent.name for p in DOCS.glob("*/data/results.csv") if (p.parent.parent / "report.md").is_file()
)


@pytest.mark.parametrize(
    "name", [n if n == "head-ablation-sgd" else pytest.param(n, marks=pytest.mark.slow) for n in REPORTS]
)
def test_a_committed_report_renders_from_a_copy_of_its_data_anywhere(name, tmp_path):
    """The committed data folder copied elsewhere renders the committed report's tables (run_dir: as each report was
    first written, relative to the working folder of the study; from the copy, the copy's own subfolders)."""
    import shutil

    data = tmp_path / "elsewhere" / "data"
    shutil.copytree(DOCS / name / "data", data)
    text = write_report(data / "results.csv", tmp_path / "out").read_text()
    assert tables(text, drop=("run_dir",)) == tables((DOCS / name / "report.md").read_text(), drop=("run_dir",))
