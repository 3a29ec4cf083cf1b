"""Moved to ``lwdet.edge.bench.sysinfo`` (lwdet 0.1.0); this alias goes in the next release."""

import sys
import warnings

from lwdet.edge.bench import sysinfo as _moved

warnings.warn(
    "lwdet.edge.sysinfo moved to lwdet.edge.bench.sysinfo; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
