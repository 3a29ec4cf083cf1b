"""``python -m lwdet <command> ...``: the same as the ``lwdet`` command."""

import sys

from lwdet.cli import main

if __name__ == "__main__":
    sys.exit(main())
