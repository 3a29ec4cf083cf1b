"""Moved to ``lwdet.edge.app.outputs`` (lwdet 0.1.0); this alias goes in the next release."""

import sys
import warnings

from lwdet.edge.app import outputs as _moved

warnings.warn(
    "lwdet.edge.outputs moved to lwdet.edge.app.outputs; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
