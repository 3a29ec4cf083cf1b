"""``python -m lwdet.profile MODEL``: the same as ``lwdet profile`` (see ``lwdet.cli.profile``)."""

import sys

from lwdet.cli.profile import main

if __name__ == "__main__":
    sys.exit(main())
