"""Moved to ``lwdet.edge.bench.projection`` (lwdet 0.1.0); this alias goes in the next release."""

import sys
import warnings

from lwdet.edge.bench import projection as _moved

warnings.warn(
    "lwdet.edge.projection moved to lwdet.edge.bench.projection; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
