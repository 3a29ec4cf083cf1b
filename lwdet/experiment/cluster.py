"""The connection to Ray: imported only when an experiment runs on it (``pip install "lwdet[ray]"``)."""

from __future__ import annotations

import logging
import socket

from lwdet.errors import ConfigError
from lwdet.units import MB

LOGGER = logging.getLogger(__name__)

RAY_EXTRA = 'pip install "lwdet[ray]"'  # the pinned Ray of constraints.txt with Ray Tune
# A head's address is knocked on once before Ray is asked to join it: Ray itself retries an address that does not
# answer for minutes (measured: over 3 min for 127.0.0.1:1) before it raises.
PROBE_S = 5.0


class RayMissing(ConfigError):
    """An experiment on Ray without Ray installed: one line naming the extra (exit 2)."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayMissing(f"a study on Ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


def one_line(e: BaseException) -> str:
    """An exception as one line, ``Type: first line`` (a RayTaskError: the task's own exception)."""
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}".rstrip(": ")


def connect(ray, address: str, section: dict, error: type[ConfigError] = ConfigError) -> bool:
    """Connect (True) unless this process is connected already (a caller's Ray: a test, a notebook; False).

    ``address``: "local" (a Ray started here, capped by ``section``'s ``num_cpus`` and ``object_store_mb``), "auto"
    or a head's host:port; a refused connection raises ``error`` naming the address."""
    if ray.is_initialized():
        return False
    kwargs = {"include_dashboard": False, "log_to_driver": True}
    if address == "local":
        kwargs.update(num_cpus=section["num_cpus"], object_store_memory=int(section["object_store_mb"] * MB))
    probe(address, error)
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as e:
        raise error(f"ray address {address!r}: {one_line(e)}") from None
    LOGGER.info("Ray at %s: %s", address, ray.cluster_resources())
    return True


def head(address: str) -> tuple[str, int] | None:
    """(host, port) of a head's address (``host:port`` or ``ray://host:port``); None for "local" / "auto"."""
    if address in ("local", "auto"):
        return None
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return None  # not host:port: left to Ray to read
    return host.strip("[]"), int(port)


def probe(address: str, error: type[ConfigError] = ConfigError, timeout: float = PROBE_S) -> None:
    """Raise ``error`` in one line, within ``timeout`` seconds, when nothing accepts a connection at the head's
    address (refused, unreachable, unknown host, or no answer)."""
    target = head(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as e:
        why = f"no answer in {timeout:g} s" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise error(
            f"ray address {address!r}: nothing answers at {target[0]}:{target[1]} ({why}); "
            f"start the head there (ray start --head --port {target[1]}) or give its address"
        ) from None
