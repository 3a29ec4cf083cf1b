"""``python -m lwdet.search CONFIG``: see ``lwdet.cli.search``."""

import sys

from lwdet.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
