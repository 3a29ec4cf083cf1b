"""``python -m lwdet.data import|check ...``: the same as ``lwdet data`` (lwdet.cli.data)."""

import sys

from lwdet.cli.data import main

if __name__ == "__main__":
    sys.exit(main())
