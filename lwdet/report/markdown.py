"""The report: ``report.md`` (tables, frontier, seed noise, ranking stability, best under limits) with the figures,
and a copy of the data it was written from."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from lwdet.experiment.table import FAILED, SLICED_COLUMNS, relative_to
from lwdet.report.analysis import (
    PLATEAU_EPOCHS,
    PLATEAU_SHARE,
    PLATEAU_SMOOTH,
    PROXIES,
    best_under,
    cost_vs_latency,
    one_run_each,
    pareto_front,
    plateau,
    ranking_over_epochs,
    seed_groups,
    seed_noise,
)
from lwdet.report.curves import plot_curves
from lwdet.report.plots import BASELINE, measured_on, plot_layer_types, plot_pareto, plot_scatter, plot_time_split
from lwdet.report.rows import (
    ACCURACY,
    DENSITY,
    LATENCY,
    MEMORY,
    SLICED_ACCURACY,
    _num,
    epoch_curves,
    keep_data,
    load_study,
)
from lwdet.report.rows import fmt as _fmt
from lwdet.report.targets import ACCURACY_SHARE, LATENCY_SHARE, PEER_MAP50_SHARE, TEST, Split, targets, verdict_split

LOGGER = logging.getLogger(__name__)

# (title, columns) of the markdown tables; every column of COLUMNS appears in one of them
TABLES = (
    ("Accuracy", ("model", "map50", "map5095", "precision", "recall", "f1", DENSITY, "parity_ok")),
    ("Cost", ("model", "params_m", "gflops", "macs_m", "mac_mb", "peak_act_mb", "pt_mb", "ncnn_bin_mb")),
    (
        "Speed and memory (ncnn; onnxruntime at 1 thread for comparison)",
        ("model", "latency_ms_t1", "latency_ms_t2", "ncnn_peak_mb", "onnx_ms_t1"),
    ),
    ("Where the time goes (ncnn, 1 thread, split export)", ("model", "backbone_ms", "neck_ms", "head_ms")),
    ("Training", ("model", "backbone", "neck", "head", "teacher", "train_s", "epoch_s", "run_dir")),
)
TUNE_TABLE = ("model", "tuned", "tune_trials", "tune_epochs", "tune_cpu_s", "tune_edge")  # a tuned study's rows


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (reports are committed)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _shown_run(run_dir, base: Path) -> str:
    """A row's run folder as the table stores it (relative to the results CSV's folder: the same wherever the table
    and its runs are copied to), else relative to the working directory."""
    stored = str(relative_to(run_dir, base))
    return stored if not Path(stored).is_absolute() else _shown(Path(stored))


def _constraints_text(limits: dict) -> str:
    names = {
        "max_latency_ms": "latency <= {} ms",
        "max_params_m": "params <= {} M",
        "max_memory_mb": "ncnn peak memory <= {} MB",
        "min_map": "mAP50-95 >= {}",
    }
    return ", ".join(names[k].format(v) for k, v in limits.items() if v is not None) or "none"


def write_report(
    results_csv: str | Path,
    out_dir: str | Path,
    *,
    bench_csv: str | Path | None = None,
    max_latency_ms: float | None = None,
    max_params_m: float | None = None,
    max_memory_mb: float | None = None,
    min_map: float | None = None,
    pi_calibration: str | Path | None = None,
) -> Path:
    """Write ``report.md`` and the PNGs into ``out_dir``; returns the markdown file.

    ``pi_calibration``: a bench CSV of the peer graphs timed on the machine that timed the study (e.g.
    docs/pi/peers.csv): adds projected Raspberry Pi latency columns (``lwdet.edge.bench.projection``), labelled as such."""
    results_csv, out = Path(results_csv), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, peers, latency_source = load_study(results_csv, bench_csv)
    failed = [r for r in rows if r.get("status") == FAILED]  # a study's row whose run raised: listed, not ranked
    rows = sorted((r for r in rows if r.get("status") != FAILED), key=lambda r: -(_num(r, ACCURACY) or -1.0))
    limits = dict(
        max_latency_ms=max_latency_ms, max_params_m=max_params_m, max_memory_mb=max_memory_mb, min_map=min_map
    )
    points = one_run_each(rows)  # one point per detector: repeat-seed runs are reported as noise, not plotted
    curves = epoch_curves(rows, results_csv.parent)
    figs = [
        plot_pareto(points, out / "pareto_latency_map.png", peers),
        plot_pareto(points, out / "pareto_latency_sliced_map.png", peers, y=SLICED_ACCURACY),
        plot_scatter(rows, "gflops", None, out / "map_vs_gflops.png"),
        plot_scatter(rows, "mac_mb", None, out / "map_vs_mac.png"),
        plot_time_split(rows, out / "time_by_part.png"),
        plot_layer_types(rows, out / "time_by_layer_type.png", results_csv.parent),
        *plot_curves(curves, rows, out),
    ]
    front = pareto_front(points)
    best = best_under(points, **limits)
    keep_data(results_csv, rows, out)
    md = [
        "# Detector comparison\n",
        f"Source: `{_shown(results_csv)}`; {len(rows)} detectors; latency and memory "
        f"from {latency_source}. Rows sorted by mAP50-95. `{DENSITY}` = mAP50-95 per million parameters.\n",
    ]
    if context := measured_on(points):
        md += [f"Measured at: {context}.\n"]
    if failed:
        md += [
            "Failed (not in the tables; the study tries them again when it is run again): "
            + "; ".join(f"{r['model']}: {r.get('error') or 'no reason recorded'}" for r in failed)
            + ".\n"
        ]
    if rebuilt := [str(r["model"]) for r in rows if r.get("latency_graph") == "rebuilt"]:
        md += [
            f"Timed from their YAMLs with random weights (trained in an earlier checkout, weights not here; ncnn's "
            f"latency does not depend on weight values): {', '.join(rebuilt)}.\n"
        ]
    goals, converged = targets(rows, peers), plateau(curves)
    md += ["## Summary\n", *summary_lines(goals, converged, rows), ""]
    shown = [{**r, "run_dir": _shown_run(r["run_dir"], results_csv.parent)} if r.get("run_dir") else r for r in rows]
    for title, cols in TABLES:
        md += [f"## {title}\n", markdown_table(shown, cols), ""]
    test = ("model", "test_map50", "test_map5095", "test_precision", "test_recall", "test_f1")
    if any(_num(r, "test_map5095") is not None for r in rows):
        md += ["## Accuracy on the test split\n", markdown_table(rows, test), ""]
    if any(r.get("tuned") not in (None, "") for r in rows):  # a study with a `tune:` section (lwdet.study.tune)
        md += [
            "## Tuning (the same budget for every row)\n",
            "Each row's training arguments chosen on the val split by the study's `tune:` section (the same trials "
            "for every row), then trained on every seed of the row; cost: trials, epochs trained in all, the "
            "trainers' CPU seconds; `tune_edge`: tuned keys chosen at the edge of the space (widen it).\n",
            markdown_table(
                [
                    {**r, **{k: int(r[k]) for k in ("tune_trials", "tune_epochs") if _num(r, k) is not None}}
                    for r in one_run_each(rows)
                ],
                TUNE_TABLE,
            ),  # fmt: skip
            "",
        ]
    if any(_num(r, SLICED_ACCURACY) is not None for r in rows):
        md += [
            "## Accuracy on full-size images (sliced vs letterbox)\n",
            "The full-size val images (the study config's `sliced:` section) through each detector's PyTorch "
            "weights: `sliced` runs the tile grid and merges the boxes (lwdet.edge.slicing), `letterbox` shrinks the "
            "whole image into one input. mAP is the engine's; ms per image are PyTorch on this machine, not ncnn. "
            f"The Pareto plot `pareto_latency_sliced_map.png` puts {SLICED_ACCURACY} against the ncnn latency per "
            "input.\n",
            markdown_table(rows, ("model", *SLICED_COLUMNS)),
            "",
        ]
    table, taus = ranking_over_epochs(rows, results_csv.parent, curves=curves)
    if len(table) > 1:
        md += [
            "## Is the ranking stable? (val mAP50-95 per epoch, from each run's results.csv)\n",
            "Kendall's tau of each epoch's ranking against the last epoch's (1 = same order): "
            + ", ".join(f"{k[2:]}: {_fmt(v)}" for k, v in taus.items())
            + ". Compare the gaps between detectors "
            "with the gap between the baseline's seeds.\n",
            markdown_table(table, list(table[0])),
            "",
        ]
    md += converged_section(converged)
    noise = seed_noise(rows)
    if noise:
        md += [
            "## Seed noise (the same detector and budget, another seed)\n",
            "Differences between detectors smaller than the spread are not evidence. Only the first seed's run "
            "is drawn on the plots and ranked on the frontier.\n",
            markdown_table(noise, list(noise[0])),
            "",
        ]
    md += [
        "## Pareto frontier (latency vs mAP50-95)\n",
        "On the frontier: no other detector is as fast or faster and as accurate or more, and better in one.\n",
        markdown_table(front, ("model", LATENCY, ACCURACY, "params_m")) if front else "_no latency measured_",
        "",
    ]
    pairs, proxy_taus = cost_vs_latency(points)
    if any(v is not None for v in proxy_taus.values()):
        md += [
            "## Where FLOPs and latency disagree\n",
            "Kendall's tau of each paper cost against the measured ncnn latency (1 thread; 1 = it orders the "
            "detectors exactly as the clock does): "
            + ", ".join(f"{label} {_fmt(proxy_taus[k])}" for k, label in PROXIES)
            + ".\n",
        ]
        md += (
            [
                "Pairs where a detector has fewer GFLOPs yet is slower (both by 5% or more; largest latency "
                "ratio first; ratios are A / B):\n",
                markdown_table(pairs, list(pairs[0])),
                "",
            ]
            if pairs
            else ["_no detector with 5% fewer GFLOPs is 5% slower than another_", ""]
        )
    md += [
        f"## Best under constraints ({_constraints_text(limits)})\n",
        markdown_table(best, ("model", ACCURACY, LATENCY, "params_m", MEMORY))
        if best
        else "_no detector meets the constraints_",
        "",
    ]
    md += targets_section(goals, verdict_split(rows))
    if pi_calibration is not None:
        md += projected_pi_section(points, pi_calibration)
    if peers:
        md += [
            "## Peer networks (bench CSV; drawn as dotted lines on the Pareto plot)\n",
            markdown_table(peers, ("model", "threads", "infer_median_ms", "mem_peak_mb")),
            "",
        ]
    md += ["## Figures\n"] + [f"![{f.stem}]({f.name})" for f in figs if f is not None] + [""]
    report = out / "report.md"
    report.write_text("\n".join(md), encoding="utf-8")
    LOGGER.info("report: %s (%d figures)", report, sum(f is not None for f in figs))
    return report


def projected_pi_section(rows: Sequence[dict], calibration: str | Path) -> list[str]:
    """Markdown lines: each detector's 1-thread latency here scaled to a Pi 4 / Pi 5 by the peers' published timings."""
    from lwdet.edge.bench import projection

    scales = {t: s for t, s in projection.fit(projection.read_rows(calibration)).items() if s.threads_here == 1}
    cols = {t: f"{t} ms (projected)" for t in scales}
    table = [
        {"model": r["model"], LATENCY: r[LATENCY], **{c: _num(r, LATENCY) * scales[t].ratio for t, c in cols.items()}}
        for r in rows
        if _num(r, LATENCY) is not None
    ]
    if not table:
        return []
    return [
        "## Projected Raspberry Pi latency (a projection, not a measurement)\n",
        f"This machine's 1-thread ncnn latency times the ratio of ncnn's published Pi timings of the peer graphs to "
        f"their timings here (`{_shown(Path(calibration))}`, fastest loop); leave-one-out error of that ratio over "
        "the peers: "
        + "; ".join(f"{t} mean {100 * s.loo_mean:.0f} %, max {100 * s.loo_max:.0f} %" for t, s in scales.items())
        + ". A bench CSV from a real Pi (`--bench-csv`) replaces it. Method: docs/pi-projection.md.\n",
        markdown_table(table, ("model", LATENCY, *cols.values())),
        "",
    ]


TARGET_COLUMNS = ("target", "goal", "reference", "candidate", "latency", "accuracy", "verdict")
PLATEAU_COLUMNS = ("model", "epochs", "final_map5095", "map5095_10_earlier", "last10_gain", "verdict")


def _gain(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:+.1f} %"


def summary_lines(goals: Sequence[dict], converged: Sequence[dict], rows: Sequence[dict]) -> list[str]:
    """Bullets: each target's verdict, and whether the baseline and the most accurate fast detector (target (a)'s
    candidate) had stopped rising."""
    lines = [
        f"- Target {g['target']} ({g['goal']}): **{g['verdict']}**"
        + (f"; {g['candidate']}: {g['latency']}, {g['accuracy']}" if g.get("_model") else "")
        for g in goals
    ]
    groups = seed_groups(rows)
    watched = [m for g in goals[:1] for m in (BASELINE, g.get("_model")) if m]
    runs = {r["model"]: r for r in converged}
    checked = [runs[m] for w in watched for m in [r["model"] for r in groups.get(w, [{"model": w}])] if m in runs]
    for verdict, say in (
        ("still rising", "still rising at the end of the budget (share of the final mAP50-95 the last "
         f"{PLATEAU_EPOCHS} epochs added): {{}}; a longer budget may change these numbers and the targets"),
        ("too short", f"too short to show a plateau ({PLATEAU_EPOCHS} epochs or fewer): {{}}"),
        ("plateau", f"at a plateau (the last {PLATEAU_EPOCHS} epochs added < {100 * PLATEAU_SHARE:.0f} % of the "
         "final mAP50-95): {}"),
        ("no accuracy", "no val mAP50-95 above 0 at the end: {}"),
    ):  # fmt: skip
        hit = [r for r in checked if r["verdict"] == verdict]
        if hit:
            names = ", ".join(f"{r['model']} ({_gain(r['last10_share'])})" if r["last10_share"] is not None
                              else r["model"] for r in hit)  # fmt: skip
            lines.append(f"- Training: {say.format(names)}.")
    return lines


def converged_section(converged: Sequence[dict]) -> list[str]:
    """Markdown lines: per run, its final val mAP50-95, the value ten epochs before and the verdict."""
    if not converged:
        return []
    return [
        "## Has training converged?\n",
        f"From each run's per-epoch val mAP50-95 (its results.csv; raw values, not the best so far, so a late drop "
        f"shows): `final_map5095` is the mean of the last {PLATEAU_SMOOTH} epochs, `map5095_10_earlier` the mean of "
        f"the {PLATEAU_SMOOTH} epochs ending {PLATEAU_EPOCHS} epochs before the last (both means damp epoch-to-epoch "
        f"noise), `last10_gain` = (final - earlier) / final. Verdict: plateau under {100 * PLATEAU_SHARE:.0f} %, "
        f"still rising at {100 * PLATEAU_SHARE:.0f} % or more, too short at {PLATEAU_EPOCHS} epochs or fewer, no accuracy when the final mean is 0. "
        "These are per-epoch values; the Accuracy table is the validation of best.pt after training.\n",
        markdown_table([{**r, "last10_gain": _gain(r["last10_share"])} for r in converged], PLATEAU_COLUMNS),
        "",
    ]


def split_note(split: Split) -> str:
    """The line that says which split the verdicts read, and why."""
    why = "configurations are chosen on val" if split == TEST else "not every row has a test split"
    return f"Verdicts read the {split.name} split's means over seeds ({why}).\n"


def targets_section(goals: Sequence[dict], split: Split) -> list[str]:
    """Markdown lines: each target with its reference, candidate, measured numbers and verdict, read on ``split``."""
    return [
        "## Targets\n",
        f"From the rows above (same data, budget and input; latency: ncnn, 1 thread; candidates: lwdet detectors, "
        f"not the baseline or engine models). (a) and (a+): the most accurate lwdet detector at <= {LATENCY_SHARE:g}x the reference's latency (none that fast: the fastest), met with >= "
        f"{100 * ACCURACY_SHARE:.0f} % of its mAP50-95. (b): the fastest lwdet detector no slower than the peer graph "
        f"with >= {100 * PEER_MAP50_SHARE:.0f} % of the baseline's mAP50. A detector with several seeds counts with "
        "its mean accuracy and its first run's latency.\n",
        split_note(split),
        markdown_table(goals, TARGET_COLUMNS),
        "",
    ]
