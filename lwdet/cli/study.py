"""PLACEHOLDER (the pkg branch): the studyreport branch writes the real lwdet.cli.study; the coordinator replaces this.

Runs ``python -m lwdet.study`` after a missing input file becomes one line and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lwdet.cli import common


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and not Path(first).is_file():
        print(f"lwdet study: error: not found: {first}", file=sys.stderr)
        return common.EXIT_USAGE
    from lwdet.study import main as lib_main

    return lib_main(argv)
