"""``python -m lwdet.report RESULTS_CSV --out DIR``: see ``lwdet.cli.report``."""

import sys

from lwdet.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
