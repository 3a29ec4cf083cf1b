"""Train a detector from a clone: python train.py --backbone ghostnet (the same as `lwdet train`)."""

import sys

from lwdet.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
