"""Fashion-MNIST without Debian (issue 34 point 6): the same four files from torchvision's download, the same set."""

import shutil
import socket
import time
from pathlib import Path

import pytest

from lwdet.data import fmnist

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_debian = pytest.mark.skipif(
    not all((DEBIAN / f).is_file() for f in fmnist.FILES), reason="Debian's dataset-fashion-mnist is not installed"
)


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
    """Neither Debian's package nor LWDET_FMNIST_DIR; an empty cache; no proxy between us and 127.0.0.1."""
    monkeypatch.setattr(fmnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.delenv(fmnist.DIR_ENV, raising=False)
    monkeypatch.setenv("LWDET_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "cache" / "fashion-mnist"


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@needs_debian
def test_the_set_is_byte_identical_from_debian_or_from_torchvisions_download(tmp_path, no_debian, monkeypatch):
    from lwdet.data.benchmark import build_benchmark_set

    raw = no_debian / "FashionMNIST" / "raw"  # what torchvision's FashionMNIST(root, download=True) leaves
    raw.mkdir(parents=True)
    for f in fmnist.FILES:
        shutil.copy(DEBIAN / f, raw / f)
    monkeypatch.setattr(fmnist, "_download", lambda root: pytest.fail("downloaded although the cache has the files"))
    assert fmnist.fmnist_dir() == raw
    out = tmp_path / "set"
    build_benchmark_set(out, n_train=2, n_val=2, n_test=2)
    from_cache = _tree(out)
    shutil.rmtree(out)

    monkeypatch.setattr(fmnist, "DEBIAN_DIR", DEBIAN)
    assert fmnist.fmnist_dir() == DEBIAN
    build_benchmark_set(out, n_train=2, n_val=2, n_test=2)
    from_debian = _tree(out)
    assert len(from_debian) == 6 * 2 + 3  # images + labels of 3 splits, data.yaml, stats.json, stats.md
    assert from_cache == from_debian


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_and_absent_is_one_line_naming_both_ways(no_debian, monkeypatch):
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "mirrors", [f"http://127.0.0.1:{_closed_port()}/"])  # refused, as offline
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as e:
        fmnist.fmnist_dir()
    assert time.monotonic() - start < 10
    msg = str(e.value)
    assert "\n" not in msg and "dataset-fashion-mnist" in msg and fmnist.DIR_ENV in msg
    assert "torchvision" in msg and str(no_debian) in msg and "the download failed" in msg
    assert not (no_debian / "FashionMNIST").exists()  # nothing half-downloaded is left as if complete


def test_a_mirror_that_never_answers_fails_within_the_timeout(no_debian, monkeypatch):
    from torchvision.datasets import FashionMNIST

    with socket.socket() as server:  # accepts connections (the kernel's backlog) and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        monkeypatch.setattr(FashionMNIST, "mirrors", [f"http://127.0.0.1:{server.getsockname()[1]}/"])
        monkeypatch.setattr(fmnist, "DOWNLOAD_TIMEOUT_S", 1.0)
        start = time.monotonic()
        with pytest.raises(FileNotFoundError, match="the download failed"):
            fmnist.fmnist_dir()
        assert time.monotonic() - start < 10
    assert socket.getdefaulttimeout() is None  # restored


def test_fmnist_dir_env_must_hold_the_four_files(tmp_path, monkeypatch):
    monkeypatch.setenv(fmnist.DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"LWDET_FMNIST_DIR=.*train-images-idx3-ubyte.gz not found"):
        fmnist.fmnist_dir()


def test_other_contents_under_the_same_name_are_refused(tmp_path):
    import gzip

    fake = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(fake, "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(ValueError, match="not Fashion-MNIST's t10k-labels-idx1-ubyte"):
        fmnist.check_raw(fake)


@needs_debian
def test_debian_files_are_the_published_contents():
    for f in fmnist.FILES:
        fmnist.check_raw(DEBIAN / f)
