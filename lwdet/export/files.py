"""Where an export goes and how it gets there: a hidden staging folder beside the destination, then one rename
(an atomic exchange where the system has renameat2), so a failed export leaves nothing and never replaces a good one."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from lwdet.artifacts import NCNN_SUFFIX, ONNX_SUFFIX

_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Linux renameat2(2); False where the C library, kernel or filesystem lacks it (the caller falls back)."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def _move_into_place(src: Path, dst: Path, overwrite: bool) -> None:
    """Rename ``src`` to ``dst``. Without ``overwrite`` an existing ``dst`` is an error; with it, a folder is swapped
    in one atomic exchange (renameat2) where the system has it, else renamed aside and restored on failure."""
    if not overwrite or not dst.exists():
        if _renameat2(src, dst, _RENAME_NOREPLACE):
            return
        if dst.exists():
            raise FileExistsError(errno.EEXIST, "already exists", str(dst))
        os.rename(src, dst)
    elif src.is_file():
        os.replace(src, dst)  # atomic for files
    elif _renameat2(src, dst, _RENAME_EXCHANGE):
        shutil.rmtree(src)  # src now holds the old folder
    else:
        old = dst.with_name(f".old-{os.getpid()}-{dst.name}")
        os.rename(dst, old)
        try:
            os.rename(src, dst)
        except BaseException:
            os.rename(old, dst)
            raise
        shutil.rmtree(old)


@contextmanager
def _staging(dst: Path, overwrite: bool):
    """A hidden temporary folder beside ``dst``, removed when the block fails (or after the move succeeded)."""
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} already exists; pass overwrite=True (--overwrite) to replace it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", suffix=f"-{dst.name}", dir=dst.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def output_path(weights: str | Path, fmt: str, out_dir: str | Path | None = None, name: str | None = None) -> Path:
    """Where ``export_<fmt>`` writes: ``<out_dir or weights folder>/<name or weights stem>_ncnn_model`` or ``.onnx``."""
    weights = Path(weights)
    suffix = {"ncnn": NCNN_SUFFIX, "onnx": ONNX_SUFFIX}[fmt]
    return Path(out_dir or weights.parent).resolve() / f"{name or weights.stem}{suffix}"


def _destination(source: Path | None, model_stem: str, out_dir, name, fmt: str) -> Path:
    if out_dir is None and source is None:
        raise ValueError("out_dir is required when exporting a module rather than a weights file")
    return output_path(source or Path(model_stem), fmt, out_dir, name)
