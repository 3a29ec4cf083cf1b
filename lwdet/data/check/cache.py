"""A cache of per-file check results (images and label files), keyed by absolute path, size and modification time.

One SQLite file outside the dataset, ``$LWDET_CACHE_DIR/check/images-v<N>.sqlite`` (default
``$XDG_CACHE_HOME/lwdet`` or ``~/.cache/lwdet``), shared by every dataset: a renamed, replaced or edited file has
another size or mtime and is checked again. A label file's result also depends on its image's size and the class
count: that ``context`` is stored with it and must match too. A bump of ``VERSION`` (what the checks report
changed) starts a new file. A cache that cannot be opened or written is skipped with one warning: the check then
reads everything, as before.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["VERSION", "default_cache_dir", "file_key", "ResultCache"]

LOGGER = logging.getLogger(__name__)

VERSION = 1  # bump when scan.scan_image or scan.check_label reports differently
Key = tuple[str, int, int]  # absolute path, size in bytes, mtime in ns


def default_cache_dir() -> Path:
    """``$LWDET_CACHE_DIR/check``, else ``$XDG_CACHE_HOME/lwdet/check``, else ``~/.cache/lwdet/check``."""
    base = (
        os.environ.get("LWDET_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lwdet"
    )
    return Path(base).expanduser() / "check"


def file_key(path: str | os.PathLike) -> Key | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


class ResultCache:
    """``get(key, context)`` / ``put([(key, context, result)])`` of JSON-able results; ``ResultCache(None)`` caches nothing."""

    def __init__(self, folder: str | os.PathLike | None):
        self.path = None if folder is None else Path(folder) / f"images-v{VERSION}.sqlite"
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=30)
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS files "
                    "(path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER, context TEXT, result TEXT)"
                )
                self._db.commit()
            except (OSError, sqlite3.Error) as e:
                LOGGER.warning("check cache %s unusable (%s); checking every file", self.path, e)
                self._db = None

    def get(self, key: Key | None, context: Any = None) -> Any:
        """The stored result, or None when absent or stale (another size, mtime or context)."""
        if self._db is None or key is None:
            return None
        try:
            row = self._db.execute(
                "SELECT size, mtime, context, result FROM files WHERE path = ?", (key[0],)
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or (row[0], row[1]) != key[1:] or row[2] != json.dumps(context):
            return None
        return json.loads(row[3])

    def put(self, items: Iterable[tuple[Key | None, Any, Any]]) -> None:
        if self._db is None:
            return
        rows = [(k[0], k[1], k[2], json.dumps(c), json.dumps(r)) for k, c, r in items if k is not None]
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as e:
            LOGGER.warning("check cache %s not written (%s)", self.path, e)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
