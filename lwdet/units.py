"""lwdet's one unit rule for sizes: MB = 10**6 bytes and KB = 10**3 bytes (SI), everywhere a column or report says
``_mb`` / ``MB`` / ``_kb`` (file sizes, weights, memory-access cost, activation and process memory). Torch-free.

Linux's /proc reports memory in KiB (1024 bytes): convert those with ``kib_to_mb``.
"""

from __future__ import annotations

KB = 10**3
MB = 10**6


def mb(nbytes: float) -> float:
    """Bytes -> MB (10**6 bytes)."""
    return nbytes / MB


def kb(nbytes: float) -> float:
    """Bytes -> KB (10**3 bytes)."""
    return nbytes / KB


def kib_to_mb(kib: float) -> float:
    """KiB (what /proc/*/status and /proc/meminfo call 'kB') -> MB (10**6 bytes)."""
    return kib * 1024 / MB
