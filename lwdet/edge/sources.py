"""Moved to ``lwdet.edge.app.sources`` (lwdet 0.1.0); this alias goes in the next release."""

import sys
import warnings

from lwdet.edge.app import sources as _moved

warnings.warn(
    "lwdet.edge.sources moved to lwdet.edge.app.sources; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
