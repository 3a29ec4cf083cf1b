"""Export a run from a clone: python export.py runs/demo/yolov5n --format ncnn (the same as `lwdet export`)."""

import sys

from lwdet.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
