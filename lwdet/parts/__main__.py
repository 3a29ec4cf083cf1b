"""``python -m lwdet.parts MODEL``: the same as ``lwdet parts`` (see ``lwdet.cli.parts``)."""

import sys

from lwdet.cli.parts import main

if __name__ == "__main__":
    sys.exit(main())
