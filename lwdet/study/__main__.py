"""``python -m lwdet.study CONFIG``: see ``lwdet.cli.study``."""

import sys

from lwdet.cli.study import main

if __name__ == "__main__":
    sys.exit(main())
