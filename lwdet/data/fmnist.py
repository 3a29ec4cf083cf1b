"""Fashion-MNIST's four idx files, wherever they are: Debian's package, ``LWDET_FMNIST_DIR``, or torchvision's download.

The benchmark set (``lwdet.data.benchmark``) draws its objects from the full Fashion-MNIST. In order:

1. ``$LWDET_FMNIST_DIR``, when set (a folder with the four ``.gz`` files; it must hold them);
2. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``);
3. the cache ``$LWDET_CACHE_DIR/fashion-mnist`` (default ``~/.cache/lwdet/fashion-mnist``), in torchvision's layout
   (``FashionMNIST/raw/*.gz``), filled on first use by torchvision's own ``FashionMNIST`` download (its mirrors, its
   md5 checks of each archive), with a bounded socket timeout so that an offline machine fails in seconds.

Whichever way the files came, their *decompressed* contents must be the published ones (``RAW_SHA256``; Debian
recompressed the archives, so their bytes and md5s differ from upstream's, their contents do not): the built set is
then byte-identical whichever way the files came. Offline with none of them: one line naming both ways.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

LOGGER = logging.getLogger(__name__)

DIR_ENV = "LWDET_FMNIST_DIR"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# SHA-256 of each decompressed idx file, as published (upstream's archives, md5-checked by torchvision, and Debian's
# recompressed ones decompress to these bytes).
RAW_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DOWNLOAD_TIMEOUT_S = 15.0  # per socket operation (connect, each read): offline fails fast, a stalled mirror too

__all__ = ["DEBIAN_DIR", "DIR_ENV", "FILES", "RAW_SHA256", "cache_dir", "check_raw", "fmnist_dir"]


def cache_dir() -> Path:
    """``$LWDET_CACHE_DIR/fashion-mnist``, else ``$XDG_CACHE_HOME/lwdet/fashion-mnist``, else ``~/.cache/lwdet/...``."""
    base = (
        os.environ.get("LWDET_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lwdet"
    )
    return Path(base).expanduser() / "fashion-mnist"


def _raw(root: Path) -> Path:
    return root / "FashionMNIST" / "raw"  # torchvision's layout under its root


def _complete(folder: Path) -> bool:
    return all((folder / f).is_file() for f in FILES)


def _absent(why: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Fashion-MNIST not found ({why}): install Debian's dataset-fashion-mnist package (or set {DIR_ENV} to a "
        f"folder with its four .gz files), or go online once so lwdet fetches them with torchvision into {cache_dir()}"
    )


def fmnist_dir(download: bool = True) -> Path:
    """The folder holding the four ``.gz`` files (see the module docstring); downloads them when nothing else has
    them and ``download``. Raises FileNotFoundError (one line, naming both ways) when they cannot be had."""
    if env := os.environ.get(DIR_ENV):
        folder = Path(env).expanduser()
        if not _complete(folder):
            missing = next(f for f in FILES if not (folder / f).is_file())
            raise FileNotFoundError(f"{DIR_ENV}={env}: {missing} not found there (it must hold the four .gz files)")
        return folder
    if _complete(DEBIAN_DIR):
        return DEBIAN_DIR
    if _complete(cached := _raw(cache_dir())):
        return cached
    if not download:
        raise _absent(f"not in {DEBIAN_DIR} nor in {cached}")
    return _download(cache_dir())


def _download(root: Path) -> Path:
    """torchvision's FashionMNIST download into a staging folder, checked, then renamed into ``root``."""
    try:
        from torchvision.datasets import FashionMNIST
    except ImportError:
        raise _absent(f"not in {DEBIAN_DIR}, and torchvision is not installed to download it") from None
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torchvision's urlopen takes no timeout: its default is none
    try:
        LOGGER.info("Fashion-MNIST: not in %s; downloading it with torchvision into %s", DEBIAN_DIR, root)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):  # torchvision prints its progress; the library logs
                FashionMNIST(str(stage), train=False, download=True)
        except Exception as e:  # noqa: BLE001  URLError, RuntimeError (its md5 check), socket timeouts alike
            reason = " ".join(str(e).split())[:300]
            raise _absent(f"the download failed: {reason}") from None
        finally:
            for line in printed.getvalue().splitlines():
                LOGGER.debug("torchvision: %s", line)
        for f in FILES:
            check_raw(_raw(stage) / f)
        final = _raw(root)
        final.parent.mkdir(parents=True, exist_ok=True)
        keep = stage / "gz"
        keep.mkdir()
        for f in FILES:  # only the archives: the builder reads them; torchvision's extracted copies are dropped
            os.replace(_raw(stage) / f, keep / f)
        try:
            os.rename(keep, final)
        except OSError:  # another process put them there meanwhile
            if not _complete(final):
                raise
        return final
    finally:
        socket.setdefaulttimeout(previous)
        shutil.rmtree(stage, ignore_errors=True)


def check_raw(path: Path, raw: bytes | None = None) -> bytes:
    """The decompressed bytes of one of the four files, refused (ValueError, one line) unless they are the published
    ones (``RAW_SHA256``)."""
    import gzip

    path = Path(path)
    name = path.name.removesuffix(".gz")
    if raw is None:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    expected = RAW_SHA256.get(name)
    if expected is not None and hashlib.sha256(raw).hexdigest() != expected:
        raise ValueError(
            f"{path}: not Fashion-MNIST's {name} (its decompressed sha256 differs from the published {expected[:12]}...)"
        )
    return raw
