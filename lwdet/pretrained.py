"""ImageNet weights for a registered backbone, from the cache its own library uses, downloaded there when online.

timm backbones: the file timm's hub loader reads (``model.safetensors`` of the model's ``hf_hub_id``) in the
Hugging Face hub cache (``$HF_HOME/hub``, or ``$HF_HUB_CACHE``); ``HF_HUB_OFFLINE=1`` never downloads.
torchvision backbones: the file of the weights enum's URL in torch.hub's cache (``$TORCH_HOME/hub/checkpoints``).
A download that cannot start or stalls gives up after ``timeout`` seconds per network wait; a missing file is
one PretrainedWeightsError line naming the file to get, where it is looked for, and ``--backbone-weights FILE``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from lwdet.backbones import get_spec
from lwdet.errors import LwdetError

LOGGER = logging.getLogger(__name__)

TIMEOUT_S = 10.0
HF_FILE = "model.safetensors"  # timm's first choice on the hub (timm.models._hub.load_state_dict_from_hf)


class PretrainedWeightsError(LwdetError, FileNotFoundError):
    """The backbone's pretrained weights are neither in the cache nor downloadable now."""


def hub_weights(name: str, timeout: float = TIMEOUT_S) -> Path:
    """Path of backbone ``name``'s ImageNet weights in its library's cache, downloading them there if needed."""
    spec = get_spec(name)
    if spec.source == "timm":
        return _timm_weights(name, spec.model, timeout)
    return _torchvision_weights(name, spec.model, timeout)


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
        return Path(hf_hub_download(repo, HF_FILE, revision=revision, local_files_only=True))
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
            return Path(hf_hub_download(repo, HF_FILE, revision=revision, etag_timeout=timeout))
    except Exception as e:  # noqa: BLE001 -- any network / hub failure ends in the same one-line instruction
        raise _unavailable(name, url, where, f"download failed: {_reason(e)}") from None


def _torchvision_weights(name: str, model: str, timeout: float) -> Path:
    import torch
    import torchvision

    weights = torchvision.models.get_model_weights(model).DEFAULT
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    if path.is_file():
        return path
    LOGGER.info("backbone %s: downloading %s", name, weights.url)
    try:
        with _socket_timeout(timeout):
            weights.get_state_dict(progress=False, check_hash=True)  # torchvision's own download into torch.hub
    except Exception as e:  # noqa: BLE001
        raise _unavailable(
            name, weights.url, path, f"not in torch.hub's cache, and the download failed: {_reason(e)}"
        ) from None
    return path


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
