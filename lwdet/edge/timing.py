"""Moved to ``lwdet.edge.bench.timing`` (lwdet 0.1.0); this alias goes in the next release."""

import sys
import warnings

from lwdet.edge.bench import timing as _moved

warnings.warn(
    "lwdet.edge.timing moved to lwdet.edge.bench.timing; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
