"""The error types a person can fix (bad input): every CLI turns these into one line and exit status 2. Torch-free."""

from __future__ import annotations


class LwdetError(Exception):
    """Base for lwdet's user-facing errors; the message says what is wrong and where (file, line, key)."""


class ConfigError(LwdetError, ValueError):
    """A config file (model YAML, data YAML, study YAML, lwdet.json) is wrong: names the file, row or key."""


# FileNotFoundError / FileExistsError: a missing input, or an output that would be overwritten.
USER_ERRORS: tuple[type[BaseException], ...] = (
    LwdetError,
    ValueError,
    FileNotFoundError,
    FileExistsError,
    KeyError,
    NotADirectoryError,
    IsADirectoryError,
)
