"""Moved to ``lwdet.edge.bench.output`` (lwdet 0.1.0); this alias goes in the next release."""

import sys
import warnings

from lwdet.edge.bench import output as _moved

warnings.warn(
    "lwdet.edge.output moved to lwdet.edge.bench.output; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
