"""Moved to ``lwdet.edge.app.overlay`` (lwdet 0.1.0); this alias goes in the next release."""

import sys
import warnings

from lwdet.edge.app import overlay as _moved

warnings.warn(
    "lwdet.edge.overlay moved to lwdet.edge.app.overlay; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
