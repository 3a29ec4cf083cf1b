"""Post-training int8 quantization of an ncnn model into ncnn's own int8 format, torch-free (ncnn + numpy).

Layers: ``graph`` (the .param/.bin as data), ``thresholds`` (KL / ACIQ / percentile / max from a histogram),
``calibrate`` (activation statistics by ncnn on calibration images), ``int8`` (the int8 layers, the keep-float
search). ``lwdet.export.int8`` puts them together into an export with its accuracy proof.
"""

from lwdet.quantize.calibrate import BlobStats, FloatNet, blob_scales, collect_stats
from lwdet.quantize.graph import QUANTIZABLE, Graph, GraphError, Layer, read_graph
from lwdet.quantize.int8 import (
    Search,
    Step,
    int8_graph,
    keep_float_search,
    output_error,
    quantize_layer,
    rank_layers,
)
from lwdet.quantize.thresholds import METHODS

__all__ = [
    "METHODS",
    "QUANTIZABLE",
    "BlobStats",
    "FloatNet",
    "Graph",
    "GraphError",
    "Layer",
    "Search",
    "Step",
    "blob_scales",
    "collect_stats",
    "int8_graph",
    "keep_float_search",
    "output_error",
    "quantize_layer",
    "rank_layers",
    "read_graph",
]
