"""Comparison study: train, profile, export and bench a list of detectors on one dataset and budget, resumably.

    lwdet study STUDY.yaml [--only yolov5n,yolov5n-ghostnet_100] [--no-report]   # or: python -m lwdet.study

Per detector (run folder ``<out>/<name>/``): train (an unfinished run, i.e. ``weights/last.pt`` without the
``study_trained.json`` marker, resumes; a row with ``teacher: <another row's id>`` is distilled from that run's
``weights/best.pt``, which the plan trains first), profile ``weights/best.pt``, export to ncnn (parity-checked),
bench the ncnn export at threads 1 and 2 in a fresh torch-free process (so memory is the runtime's, as on the Pi),
final val (and test, when the data has a test split) through the engine's validator; with a ``sliced:`` section,
the mAP on full-size images, sliced and letterboxed (``lwdet.study.sliced``). The row goes into
``<out>/results.csv`` (rewritten atomically after every detector); a row with ``status`` ``done`` is skipped on
the next invocation. At the end ``lwdet.report`` writes the report.

Several study processes may share one config (e.g. two on a 2-core CPU, where the engine trains on one thread
per process): each takes the runs no other process holds (a lock file per run, ``<out>/.<name>.lock``), merges
its rows into ``results.csv`` under a lock, and at the end waits for the runs the others still hold.

Once every run is done, ``timing`` times every detector and peer side by side in one process (``latency.csv``):
the study's latency. ``--ray`` runs the runs as Ray tasks instead (``distributed``).

Layers: ``config`` (the YAML), ``plan`` (the runs, teachers first), ``steps``
(train / evaluate / export / time one run), ``sliced`` (full-size accuracy of one run), ``timing`` (the side-by-side
pass), ``runner`` (the loop), ``distributed`` (the runs as Ray tasks); under them ``lwdet.experiment`` (the config
reader, the results table and its locks, the side-by-side timing, Ray), which ``lwdet.search`` stands on too.
"""

from lwdet.experiment.config import BUDGET_DEFAULTS
from lwdet.experiment.table import COLUMNS, TEST_COLUMNS, claim, merge_result, read_results, write_results
from lwdet.study.config import (
    BENCH_DEFAULTS,
    CONFIG_KEYS,
    DETECTOR_KEYS,
    EXPORT_DEFAULTS,
    SLICED_DEFAULTS,
    StudyConfigError,
    load_config,
)
from lwdet.study.plan import plan, select
from lwdet.study.runner import rebench, run_study
from lwdet.study.steps import (
    TRAINED,
    bench,
    bench_peers,
    bench_row,
    evaluate,
    export,
    study_row,
    train_run,
    training_time,
)

__all__ = [
    "BENCH_DEFAULTS",
    "BUDGET_DEFAULTS",
    "COLUMNS",
    "CONFIG_KEYS",
    "DETECTOR_KEYS",
    "EXPORT_DEFAULTS",
    "SLICED_DEFAULTS",
    "TEST_COLUMNS",
    "TRAINED",
    "StudyConfigError",
    "bench",
    "bench_peers",
    "bench_row",
    "claim",
    "evaluate",
    "export",
    "load_config",
    "merge_result",
    "plan",
    "read_results",
    "rebench",
    "run_study",
    "select",
    "study_row",
    "train_run",
    "training_time",
    "write_results",
]
