"""The floor under every experiment: what ``lwdet.study`` and ``lwdet.search`` both stand on.

``study`` (a list of detectors, each trained, profiled, exported and timed) and ``search`` (a space of detectors
screened for latency, then trained under ASHA on Ray Tune) are two ways to run experiments; neither imports the
other. What they share lives here, and ``lwdet.report`` reads the results table's schema from here:

- ``config``: reading a config file (strict keys with "did you mean", the training budget's defaults, where
  relative input and output paths point, the header every experiment config has);
- ``table``: the results table (every column, the status values, the one atomic CSV writer, the one reader, the lock
  under which several processes merge their rows; run folders stored relative to the table's folder);
- ``timing``: the side-by-side timing (graphs built from a YAML with random weights, a fresh torch-free process,
  every graph and peer timed in it round-robin);
- ``cluster``: the connection to Ray.
"""

from lwdet.experiment.cluster import RAY_EXTRA, RayMissing, connect, import_ray, one_line
from lwdet.experiment.config import BUDGET_DEFAULTS, header, input_path, output_path, read_mapping, strict
from lwdet.experiment.table import (
    COLUMNS,
    DONE,
    FAILED,
    PEERS_CSV,
    RESULTS,
    SEARCH_COLUMNS,
    SIDE_BY_SIDE,
    SIDE_BY_SIDE_STAT,
    claim,
    merge_result,
    read_results,
    read_table,
    write_csv,
    write_results,
)
from lwdet.experiment.timing import exit_with_parent, in_fresh_process, random_graph, time_graphs

__all__ = [
    "BUDGET_DEFAULTS",
    "COLUMNS",
    "DONE",
    "FAILED",
    "PEERS_CSV",
    "RAY_EXTRA",
    "RESULTS",
    "SEARCH_COLUMNS",
    "SIDE_BY_SIDE",
    "SIDE_BY_SIDE_STAT",
    "RayMissing",
    "claim",
    "connect",
    "exit_with_parent",
    "header",
    "import_ray",
    "in_fresh_process",
    "input_path",
    "merge_result",
    "one_line",
    "output_path",
    "random_graph",
    "read_mapping",
    "read_results",
    "read_table",
    "strict",
    "time_graphs",
    "write_csv",
    "write_results",
]
