#!/usr/bin/env python3
"""Time ncnn exports from a clone or on a Pi: python bench_edge.py --model best_ncnn_model (= `lwdet bench`)."""

import sys

from lwdet.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
