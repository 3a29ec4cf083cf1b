"""Comparison report: tables, Pareto plot and training curves from a study results CSV.

Input: one row per detector (``COLUMNS``: the schema of ``lwdet.experiment.table``, as a study or search writes it) plus each row's run folder
(``run_dir/results.csv`` for the curves). Output, in one folder: ``report.md``, small PNGs and ``data/`` (a copy
of what it was written from, so it can be written again anywhere).

A bench CSV from a real Raspberry Pi (``bench_edge.py --all ... --csv PI.csv``) can replace this machine's
latency and memory columns: rows are matched by model name, ``infer_median_ms`` at threads 1 / 2 becomes
``latency_ms_t1`` / ``latency_ms_t2`` and ``mem_peak_mb`` (threads 1) becomes ``ncnn_peak_mb``. Bench rows that
match no detector (e.g. ``kind=peer`` networks) are drawn as labelled vertical lines on the Pareto plot.

    lwdet report runs/study/results.csv --out runs/report/study --max-latency-ms 80 --bench-csv pi.csv

Layers: ``rows`` (read and merge the inputs), ``analysis`` (frontier, noise, rankings, plateau), ``targets`` (the
study's speed / accuracy targets, met or not), ``plots`` / ``curves`` (figures), ``markdown`` (the report).
"""

from lwdet.experiment.table import CONTEXT_COLUMNS, PEERS_CSV, SLICED_COLUMNS, TEXT_COLUMNS
from lwdet.report.analysis import (
    CURVES,
    PROXIES,
    best_under,
    cost_vs_latency,
    kendall_tau,
    one_run_each,
    pareto_front,
    plateau,
    ranking_over_epochs,
    seed_groups,
    seed_noise,
)
from lwdet.report.curves import curve_figure, curve_group, plot_curves
from lwdet.report.markdown import TABLES, markdown_table, write_report
from lwdet.report.plots import (
    AXIS,
    is_detector_peer,
    measured_on,
    pareto_figure,
    place_labels,
    plot_layer_types,
    plot_pareto,
    plot_scatter,
    plot_time_split,
    scatter_figure,
    short_name,
)
from lwdet.report.rows import (
    ACCURACY,
    COLUMNS,
    DATA,
    DENSITY,
    LATENCY,
    LAYER_TIMES,
    MEMORY,
    SEED_RUN,
    SLICED_ACCURACY,
    apply_bench,
    epoch_curves,
    keep_data,
    load_study,
    machine_of,
    read_bench,
    read_results,
    read_rows,
    with_density,
)

__all__ = [
    "ACCURACY",
    "AXIS",
    "COLUMNS",
    "CONTEXT_COLUMNS",
    "CURVES",
    "DATA",
    "DENSITY",
    "LATENCY",
    "LAYER_TIMES",
    "MEMORY",
    "PEERS_CSV",
    "PROXIES",
    "SEED_RUN",
    "SLICED_ACCURACY",
    "SLICED_COLUMNS",
    "TABLES",
    "TEXT_COLUMNS",
    "apply_bench",
    "best_under",
    "cost_vs_latency",
    "curve_figure",
    "curve_group",
    "epoch_curves",
    "is_detector_peer",
    "keep_data",
    "kendall_tau",
    "load_study",
    "machine_of",
    "markdown_table",
    "measured_on",
    "one_run_each",
    "pareto_figure",
    "pareto_front",
    "place_labels",
    "plateau",
    "plot_curves",
    "plot_layer_types",
    "plot_pareto",
    "plot_scatter",
    "plot_time_split",
    "ranking_over_epochs",
    "read_bench",
    "read_results",
    "read_rows",
    "scatter_figure",
    "seed_groups",
    "seed_noise",
    "short_name",
    "with_density",
    "write_report",
]
