"""What every lwdet command shares: one-line errors with exit status 2, and the flags that mean the same everywhere.

Each command is a module ``lwdet.cli.<name>`` with ``build_parser() -> argparse.ArgumentParser`` and
``main(argv=None) -> int``; ``lwdet <name> ...``, ``python -m lwdet <name>`` and the top-level scripts all call it.
Torch-free: ``lwdet bench`` runs on a Pi.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EXIT_USAGE = 2  # bad input: a missing file, a wrong value, a config error


def progress_bar():
    """``f(iterable, desc=...)`` drawing a tqdm bar on a terminal (nothing in a log), or None without tqdm (a Pi)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return lambda it, desc: tqdm(it, desc=desc, leave=False, disable=None)


class UsageError(Exception):
    """Bad input a person can fix: the message is one line saying what is wrong and where (file, line, key)."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line on stderr with exit status 2 (no usage dump)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` once, to every option with a real default (not None / False) whose help lacks one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if any(action.default is v for v in (None, False, argparse.SUPPRESS)) or "default" in text:  # not 0
            return text
        return super()._get_help_string(action) if text else "(default: %(default)s)"


def parser(prog: str, doc: str | None) -> Parser:
    """A command's parser: the first docstring line as description; each default shown once, by the help text."""
    return Parser(
        prog=prog, description=(doc or "").strip().splitlines()[0] if doc else None, formatter_class=HelpFormatter
    )


def int_list(text: str, n: int | None = None) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4] (positive integers; exactly n of them when n is given). For ``--threads``."""
    try:
        values = [int(v) for v in str(text).split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if (n and len(values) != n) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected {n or 'some'} positive integers, got {text!r}")
    return values


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (``--epochs``, ``--batch``, ``--loops``)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def existing_file(text: str) -> Path:
    """A file that must exist (checked at parse time, so the error names the flag)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{'not a file' if path.exists() else 'not found'}: {path}")
    return path


def imgsz(text: str) -> int:
    """``--imgsz``: a square input size; the rule is ``lwdet.artifacts.check_imgsz`` (a multiple of the stride)."""
    from lwdet.artifacts import check_imgsz  # torch-free: `lwdet bench` stays so

    value = _int(text)
    try:
        check_imgsz(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive multiple of 32 (the largest stride), got {value}"
        ) from None
    return value


def existing_path(text: str) -> Path:
    """A file or folder that must exist (checked at parse time, so the error names the flag)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"not found: {path}")
    return path


def run(main_body, *args, **kwargs) -> int:
    """Call a command body; a UsageError (or a config/file error) becomes one line on stderr and exit status 2."""
    from lwdet.errors import USER_ERRORS  # the library's error types a person can fix

    try:
        return int(main_body(*args, **kwargs) or 0)
    except (UsageError, *USER_ERRORS) as e:
        msg = e.args[0] if getattr(e, "args", None) else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_USAGE


def entry(build_parser, body, argv: list[str] | None = None) -> int:
    """A command's ``main``: parse ``argv``, set up logging, run ``body(args)`` with one-line errors (``run``)."""
    args = build_parser().parse_args(argv)
    setup_logging()
    return run(body, args)


def interrupted(hint: str) -> int:
    """Ctrl-C in a resumable command: one line saying how to resume, exit status 130."""
    print(f"interrupted; {hint}", file=sys.stderr)
    return 130


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
