"""Write the comparison report (tables, Pareto plot, training curves) of a study results CSV.

lwdet report runs/study-cpu/results.csv                      # -> runs/report/study-cpu/
lwdet report docs/study-long/data/results.csv --out docs/study-long --overwrite   # re-render a committed report
"""

from __future__ import annotations

from pathlib import Path

from lwdet.cli import common


def default_out(results_csv: Path) -> Path:
    """runs/report/<study>: the CSV's stem, or for a ``results.csv`` its folder's name (for ``data/``: the one above)."""
    if results_csv.stem != "results":
        return Path("runs") / "report" / results_csv.stem
    folder = results_csv.resolve().parent
    return Path("runs") / "report" / (folder.parent.name if folder.name == "data" else folder.name)


def build_parser():
    p = common.parser("lwdet report", __doc__)
    p.add_argument("results_csv", type=Path, help="study results CSV (one row per detector)")
    p.add_argument("--out", type=Path, help="output folder (default: runs/report/<study name>)")
    p.add_argument("--overwrite", action="store_true", help="write into an output folder that has files already")
    p.add_argument(
        "--bench-csv", type=Path, help="bench_edge.py --csv file from the target device; replaces latency and memory"
    )
    p.add_argument(
        "--pi-calibration",
        type=common.existing_file,
        metavar="CSV",
        help="bench CSV of the peer graphs from the machine that timed the study (docs/pi/peers.csv "
        "here): adds projected Pi 4 / Pi 5 latency columns, labelled as a projection",
    )
    p.add_argument("--max-latency-ms", type=float, help="best-under limit: ncnn latency at 1 thread")
    p.add_argument("--max-params-m", type=float, help="best-under limit: parameters (millions)")
    p.add_argument("--max-memory-mb", type=float, help="best-under limit: ncnn peak memory")
    p.add_argument("--min-map", type=float, help="best-under limit: minimum val mAP50-95")
    return p


def _body(a) -> int:
    from lwdet.report import ACCURACY, LATENCY, best_under, load_study, write_report
    from lwdet.report.markdown import _constraints_text
    from lwdet.report.rows import fmt
    from lwdet.report.targets import targets

    for path, what in ((a.results_csv, "study results CSV"), (a.bench_csv, "bench CSV")):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"{path}: {what} not found")
    out = a.out or default_out(a.results_csv)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: --out is a file")
    if out.is_dir() and any(out.iterdir()) and not a.overwrite:
        raise FileExistsError(
            f"{out}: folder has files already; give --overwrite to write the report into it, or another --out"
        )
    limits = dict(
        max_latency_ms=a.max_latency_ms, max_params_m=a.max_params_m, max_memory_mb=a.max_memory_mb, min_map=a.min_map
    )
    report = write_report(a.results_csv, out, bench_csv=a.bench_csv, pi_calibration=a.pi_calibration, **limits)
    rows, peers, _ = load_study(a.results_csv, a.bench_csv)
    best = best_under(rows, **limits)
    print(f"report: {report}")
    print(
        f"best under ({_constraints_text(limits)}): "
        + (
            ", ".join(f"{r['model']} (mAP50-95 {fmt(r.get(ACCURACY))}, {fmt(r.get(LATENCY))} ms)" for r in best[:5])
            or "none"
        )
    )
    for g in targets(rows, peers):
        print(
            f"target {g['target']}: {g['verdict']}"
            + (f" ({g['candidate']}: {g['latency']}, {g['accuracy']})" if g.get("_model") else "")
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    return common.entry(build_parser, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
