import functools
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import expected_strides
from torch import nn

from lwdet import export as lx
from lwdet import reparam
from lwdet.artifacts import ExportMeta
from lwdet.backbones import BACKBONES
from lwdet.cli import export as cli
from lwdet.export import files as lx_files
from lwdet.export import ncnn as lx_ncnn
from lwdet.export import parity as lx_parity
from lwdet.models import BASELINE as BASELINE_NAME
from lwdet.models import MODEL_DIR, LwdetModel, shipped_yamls

pytestmark = pytest.mark.export

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
BASELINE = MODEL_DIR / "yolov5n.yaml"
ASPP = MODEL_DIR / "yolov5n-mobilenetv3_small_075-aspp.yaml"  # timm features_only + ASPP, and quick to export
SMALL = MODEL_DIR / "yolov5n-shufflenetv2_050.yaml"  # the quickest to export, for the atomicity tests
NCNN_FILES = ["lwdet.json", "metadata.yaml", "model.ncnn.bin", "model.ncnn.param", "parity.json"]
PAIRS_ON = "shufflenetv2_050"  # the backbone every neck/head pair is exported on in the default tier (the quickest)


def backbone_and_pair(path: Path) -> tuple[str, str]:
    """('ghostnet_100', 'litepan-litehead') from yolov5n-ghostnet_100-litepan-litehead.yaml ('' = SPPF + Detect)."""
    rest = path.stem.removeprefix(BASELINE_NAME)
    for name in sorted(BACKBONES, key=len, reverse=True):
        if rest.startswith(f"-{name}"):
            return name, rest[len(name) + 1 :].lstrip("-")
    return BASELINE_NAME, rest.lstrip("-")


SHIPPED = shipped_yamls()
# default tier: every neck/head pair on one backbone, every backbone on the plain pair; the rest of the cross
# product is the slow tier (pytest -m slow; make test runs every tier)
DEFAULT_TIER = [p for p in SHIPPED if backbone_and_pair(p)[0] == PAIRS_ON or backbone_and_pair(p)[1] == ""]


def test_default_tier_covers_every_backbone_and_every_pair():
    split = [backbone_and_pair(p) for p in SHIPPED]
    default = [backbone_and_pair(p) for p in DEFAULT_TIER]
    assert {b for b, _ in default} == {b for b, _ in split} and {n for _, n in default} == {n for _, n in split}
    assert len(SHIPPED) > 3 * len(DEFAULT_TIER) and len(set(split)) == len(SHIPPED)


@functools.cache
def randomized(path: Path, seed: int = 0) -> LwdetModel:
    """A detector whose output depends on its input, so a parity check on it means something.

    Cached: tests that export the same YAML share one model (export copies it and never changes it).

    Freshly built, activations vanish with depth and the head sits at its bias priors: every anchor gets the same
    box and score, and a broken export could still match. Kaiming weights, random conv biases and BN statistics
    measured on random inputs keep activations at unit scale all the way to the head. (Random BN affine parameters
    as well make the nets chaotic: fp32 rounding then grows to ~5e-4 of the output, fp16 to 0.4 on scores.)
    A backbone with re-parameterizable branches keeps its library's own initialisation: Kaiming weights in each of
    MobileOne's summed branches make it chaotic too (fp32 alone moved scores by 4e-4 against fp64, ncnn by 8e-3).
    """
    torch.manual_seed(seed)
    model = LwdetModel(path, nc=3, verbose=False)
    own_init = {id(x) for b in model.model if reparam.branches(b) for x in b.modules()}
    for m in model.modules():
        if id(m) in own_init and not isinstance(m, nn.BatchNorm2d):
            continue
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.normal_(m.bias, 0.0, 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(2, 3, SIZE, SIZE))
    return model.eval()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def digest(folder: Path) -> dict:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


# ------------------------------------------------------------------------------------------ every shipped model
# Random-weight MobileOne detectors other than these two pairs drift past the 0.1 % box tolerance in ncnn (0.08-0.45
# px at 64 px): with ~5 summed branches per block the random net is chaotic (fp32 torch alone moves scores 2-4e-4 off
# fp64). Their parity is left to trained checkpoints (the study's rows); the fold itself is exact (test_reparam.py).
CHAOTIC = {"yolov5n-mobileone_s0", "yolov5n-mobileone_s0-litepan-slimhead"}


def _tier(p: Path):
    if p.stem.startswith("yolov5n-mobileone_s0") and p.stem not in CHAOTIC:
        return pytest.param(p, marks=[pytest.mark.slow, pytest.mark.skip(reason="random-weight MobileOne: chaotic")])
    return p if p in DEFAULT_TIER else pytest.param(p, marks=pytest.mark.slow)


@pytest.mark.parametrize("path", [_tier(p) for p in SHIPPED], ids=lambda p: p.stem)
def test_every_shipped_yaml_exports_to_ncnn_with_parity(path, tmp_path):
    model = randomized(path)
    out = lx.export_ncnn(model, tmp_path, SIZE)
    assert out == tmp_path / f"{path.stem}_ncnn_model"
    assert sorted(f.name for f in out.iterdir()) == NCNN_FILES  # no pnnx leftovers
    assert leftovers(tmp_path) == []
    report = lx.read_parity(out)
    assert report.passed and report.n_random == 2
    assert report.box_max_abs_diff <= report.box_tolerance and report.score_max_abs_diff <= report.score_tolerance
    runtime = ExportMeta.load(out)  # the contract lwdet.edge reads
    strides = expected_strides(path)
    n = sum((SIZE // s) ** 2 for s in strides)
    assert runtime.output.shape == [4 + 3, n] and runtime.strides == strides and runtime.version == 1
    assert runtime.names == ["0", "1", "2"] and runtime.imgsz == [SIZE, SIZE] and runtime.fp16 is False
    assert (runtime.input.blob, runtime.output.blob) == ("in0", "out0")
    from lwdet.edge import NcnnDetector  # the torch-free runtime runs it: raw output, then decode + NMS

    det = NcnnDetector(out, threads=1, conf=0.0)
    try:
        raw = det.infer(np.random.default_rng(0).random((3, SIZE, SIZE), dtype=np.float32))
        assert raw.shape == (4 + 3, n) and np.isfinite(raw).all()
        assert len(det.predict(np.full((SIZE + 10, SIZE - 6, 3), 127, np.uint8))) > 0
    finally:
        det.close()


def test_randomized_models_are_not_constant():
    with torch.no_grad():
        y = randomized(BASELINE)(torch.rand(1, 3, SIZE, SIZE))[0]
    assert y[0, :4].std(dim=1).min() > 1.0  # boxes differ across anchors by pixels
    assert 0.05 < float(y[0, 4:].mean()) < 0.95 and float(y[0, 4:].std()) > 0.05


@pytest.mark.parametrize("path", [BASELINE, ASPP], ids=lambda p: p.stem)
def test_onnx_export_matches_pytorch_in_onnxruntime(path, tmp_path):
    out = lx.export_onnx(randomized(path), tmp_path, SIZE)
    assert out == tmp_path / f"{path.stem}.onnx"
    assert sorted(f.name for f in tmp_path.iterdir()) == [out.name, f"{out.name}.parity.json"]
    report = lx.read_parity(out)
    assert report.passed and report.format == "onnx"
    import onnx

    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["task"] == "detect" and props["imgsz"] == f"[{SIZE}, {SIZE}]" and props["batch"] == "1"


# -------------------------------------------------------------------------------------------------- atomicity
@pytest.fixture(scope="module")
def small():
    return randomized(SMALL)


def test_failure_mid_export_leaves_no_folder(small, tmp_path, monkeypatch):
    def broken_pnnx(folder, im, half):
        (folder / "model.ncnn.param").write_text("7767517\n")  # half-written output
        raise lx.ExportError("pnnx crashed")

    monkeypatch.setattr(lx_ncnn, "_run_pnnx", broken_pnnx)
    with pytest.raises(lx.ExportError, match="pnnx crashed"):
        lx.export_ncnn(small, tmp_path, SIZE)
    assert list(tmp_path.iterdir()) == []


def test_existing_export_is_refused_kept_on_failure_and_swapped_on_success(small, tmp_path, monkeypatch):
    out = lx.export_ncnn(small, tmp_path, SIZE)
    before = digest(out)
    with pytest.raises(FileExistsError, match="overwrite"):
        lx.export_ncnn(small, tmp_path, SIZE)

    with monkeypatch.context() as m:  # the new export fails its parity check: the old one stays as it was
        m.setattr(lx_parity, "TOLERANCES", {False: lx.Tolerance(box_rel=-1.0, score=-1.0)})
        with pytest.raises(lx.ParityError, match="fails the parity check") as e:
            lx.export_ncnn(small, tmp_path, SIZE, overwrite=True)
    assert e.value.report.path == str(out) and e.value.report.box_max_abs_diff < 1e-2
    assert digest(out) == before and leftovers(tmp_path) == []

    assert lx.export_ncnn(small, tmp_path, SIZE, overwrite=True) == out
    after = digest(out)
    assert after["model.ncnn.bin"] == before["model.ncnn.bin"] and after["lwdet.json"] != before["lwdet.json"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "fallback"])
def test_move_into_place_swaps_folders_or_refuses(renameat2, tmp_path, monkeypatch):
    if not renameat2:  # systems without renameat2 (macOS, old kernels): rename aside, then in
        monkeypatch.setattr(lx_files, "_renameat2", lambda *args: False)
    src, dst = tmp_path / ".new", tmp_path / "m_ncnn_model"
    for folder, text in ((src, "new"), (dst, "old")):
        folder.mkdir()
        (folder / "f").write_text(text)
    with pytest.raises(FileExistsError):
        lx_files._move_into_place(src, dst, overwrite=False)
    assert (dst / "f").read_text() == "old" and src.exists()
    lx_files._move_into_place(src, dst, overwrite=True)
    assert (dst / "f").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["m_ncnn_model"]


def test_failed_onnx_parity_writes_nothing(small, tmp_path, monkeypatch):
    monkeypatch.setattr(lx_parity, "TOLERANCES", {False: lx.Tolerance(box_rel=-1.0, score=-1.0)})
    with pytest.raises(lx.ParityError):
        lx.export_onnx(small, tmp_path, SIZE)
    assert list(tmp_path.iterdir()) == []


def test_library_rejects_bad_sizes_and_missing_out_dir(small, tmp_path):
    with pytest.raises(ValueError, match="multiple of 32"):
        lx.export_ncnn(small, tmp_path, 100)
    with pytest.raises(ValueError, match="out_dir"):
        lx.export_onnx(small, None, SIZE)
    with pytest.raises(FileNotFoundError, match="weights not found"):
        lx.export_ncnn(tmp_path / "nope.pt", tmp_path, SIZE)


# --------------------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing/best.pt"], "weights not found"),
        (["{tmp}"], "weights/best.pt does not exist"),
        (["{tmp}/best.pt", "--imgsz", "100"], "multiple of 32"),
        (["{tmp}/best.pt", "--data", "{tmp}/none.yaml"], "data YAML not found"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    (tmp_path / "best.pt").write_bytes(b"")
    try:
        status = cli.main([a.format(tmp=tmp_path) for a in argv])
    except SystemExit as e:  # argparse's own parse-time checks (--imgsz)
        status = e.code
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{tmp}/best.pt", "--int8"], "--int8 needs --calib"),
        (["{tmp}/best.pt", "--calib", "{tmp}/few"], "--calib needs --int8"),
        (["{tmp}/best.pt", "--int8", "--calib", "{tmp}/few", "--format", "onnx"], "exports ncnn only"),
        (["{tmp}/best.pt", "--int8", "--calib", "{tmp}/few", "--half"], "pick one"),
        (["{tmp}/best.pt", "--int8", "--calib", "{tmp}/few"], "3 image(s); int8 calibration needs at least 16"),
        (["{tmp}/best.pt", "--int8", "--calib", "{tmp}/none"], "not a folder of images or a data YAML"),
        (["{tmp}/best.pt", "--int8", "--calib", "{tmp}/few", "--no-map"], "needs the mAP check"),
    ],
)
def test_cli_bad_int8_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    import cv2

    (tmp_path / "best.pt").write_bytes(b"")
    (tmp_path / "few").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "few" / f"{i}.jpg"), np.full((32, 32, 3), 40 * i, np.uint8))
    status = cli.main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "best_int8_ncnn_model").exists()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One 1-epoch run shared by the end-to-end tests."""
    project = tmp_path_factory.mktemp("runs")
    cmd = [
        sys.executable,
        "train.py",
        "--backbone",
        "shufflenetv2_050",
        "--epochs",
        "1",
        "--imgsz",
        str(SIZE),
        "--batch",
        "16",
        "--no-plots",
        "--project",
        str(project),
        "--name",
        "r",
    ]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return project / "r"


@pytest.mark.train
def test_cli_exports_a_run_to_all_formats_with_map_parity(trained_run):
    cmd = [sys.executable, "export.py", str(trained_run), "--format", "all", "--imgsz", str(SIZE)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    weights = trained_run / "weights"
    ncnn, onnx = weights / "best_ncnn_model", weights / "best.onnx"
    assert str(ncnn) in r.stdout and str(onnx) in r.stdout
    for report in (json.loads((ncnn / "parity.json").read_text()), json.loads(Path(f"{onnx}.parity.json").read_text())):
        assert report["passed"] and report["n_images"] == 4
        assert report["map_torch"] is not None and report["map_export"] is not None
        assert abs(report["map_torch"] - report["map_export"]) <= lx.MAP_TOLERANCE
        assert report["map_check"] == (lx.VACUOUS if report["map_torch"] == 0 else "compared")
    runtime = json.loads((ncnn / "lwdet.json").read_text())
    data = yaml.safe_load((trained_run / "data.yaml").read_text())
    assert runtime["names"] == [data["names"][i] for i in range(len(data["names"]))]
    assert runtime["model"] == "yolov5n-shufflenetv2_050"
    assert runtime["source"]["sha256"] == hashlib.sha256((weights / "best.pt").read_bytes()).hexdigest()
    meta = yaml.safe_load((ncnn / "metadata.yaml").read_text())
    assert meta["imgsz"] == [SIZE, SIZE] and meta["names"] == data["names"] and meta["task"] == "detect"

    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)  # exists: refused before any work
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.train
def test_cli_parity_failure_exits_1_and_writes_nothing(trained_run, monkeypatch, capsys):
    out = trained_run / "weights" / "best_ncnn_model"
    before = digest(out) if out.exists() else None  # the end-to-end test may have exported it already
    monkeypatch.setattr(lx_parity, "TOLERANCES", {False: lx.Tolerance(box_rel=-1.0, score=-1.0)})
    counts = count_loads(monkeypatch)
    status = cli.main([str(trained_run), "--format", "ncnn", "--imgsz", str(SIZE), "--no-map", "--overwrite"])
    assert counts == {"load": 1, "check": 1}  # was 1 load, 2 checks (the CLI vetted, then the loader again)
    captured = capsys.readouterr()
    assert status == 1 and "fails the parity check" in captured.err and "nothing was written" in captured.err
    assert "boxes max|d|" in captured.out  # the table still shows the numbers
    assert (digest(out) if out.exists() else None) == before and leftovers(out.parent) == []


@pytest.mark.train
def test_map_check_of_a_model_that_detects_nothing_says_it_is_vacuous(trained_run, tmp_path, caplog):
    model, _ = lx.load_model(trained_run / "weights" / "best.pt")
    for seq in model.model[-1].cv3:  # class logits -50: no score above the validator's conf, mAP 0 in every format
        seq[-1].bias.data.fill_(-50.0)
    with caplog.at_level("WARNING", logger="lwdet.export.parity"):
        out = lx.export_onnx(model, tmp_path, SIZE, data=trained_run / "data.yaml")
    report = lx.read_parity(out)
    assert report.passed and report.map_torch == 0 and report.map_export == 0 and report.map_check == lx.VACUOUS
    assert json.loads(lx.parity_file(out).read_text())["map_check"] == "vacuous: no detections"
    assert "0 against 0 proves nothing" in caplog.text


@pytest.mark.train
@pytest.mark.parametrize("fmt", ["ncnn", "onnx"])
def test_fp16_export_of_a_trained_run_passes_the_looser_check(fmt, trained_run, tmp_path):
    # trained weights: random ones are too sensitive for fp16 to say anything (see randomized)
    out = lx.EXPORTERS[fmt](
        trained_run / "weights" / "best.pt", tmp_path, SIZE, half=True, data=trained_run / "data.yaml", map_check=False
    )
    report = lx.read_parity(out)
    assert report.passed and report.half and report.n_images == 4 and report.map_torch is None
    assert report.box_tolerance == lx.TOLERANCES[True].box_rel * SIZE
    if fmt == "ncnn":
        runtime = json.loads((out / "lwdet.json").read_text())
        assert runtime["fp16"] is True and runtime["ncnn_options"]["use_fp16_storage"] is True
        assert yaml.safe_load((out / "metadata.yaml").read_text())["args"]["quantize"] == 16


def count_loads(monkeypatch) -> dict:
    """Count weights-file loads and allow-list checks (issue 34 point 5: one load per ``lwdet export``)."""
    from lwdet import checkpoints

    counts = {"load": 0, "check": 0}
    load, check = checkpoints.load_weights, checkpoints.check_checkpoint

    def counted_load(*a, **k):
        counts["load"] += 1
        return load(*a, **k)

    def counted_check(*a, **k):
        counts["check"] += 1
        return check(*a, **k)

    monkeypatch.setattr(checkpoints, "load_weights", counted_load)
    monkeypatch.setattr(checkpoints, "check_checkpoint", counted_check)
    return counts


@pytest.mark.train
def test_cli_int8_export_is_a_complete_proven_export(trained_run, capsys, monkeypatch):
    from lwdet.edge.runner import NcnnDetector, read_export_meta
    from lwdet.export import val_map

    data = trained_run / "data.yaml"
    argv = [str(trained_run), "--int8", "--calib", str(data), "--calib-images", "16", "--imgsz", str(SIZE)]
    counts = count_loads(monkeypatch)
    status = cli.main(argv)
    assert counts == {"load": 1, "check": 1}  # was 2 loads, 3 checks: the int8 export and its fp32 stage each loaded
    out = trained_run / "weights" / "best_int8_ncnn_model"
    err = capsys.readouterr().err
    if status == 1:  # refused: the numbers are in the one error line, and nothing was written
        assert "int8 mAP50-95" in err and "fp32 export" in err and not out.exists()
        return
    assert status == 0, err
    report = json.loads((out / "parity.json").read_text())
    i8 = report["int8"]
    assert report["passed"] and i8["map_int8"] >= i8["target"] and i8["calib_images"] == 16
    assert i8["target"] == pytest.approx(i8["map_fp32"] * (1 - 0.01))
    assert i8["bin_bytes_int8"] < 0.5 * i8["bin_bytes_fp32"]
    lines = [ln.split() for ln in (out / "model.ncnn.param").read_text().splitlines()[2:]]
    marked = {t[1] for t in lines if t[0].startswith("Convolution") and any(p.startswith("8=") for p in t)}
    assert len(marked) == i8["layers_int8"] > 0 and not marked & set(i8["kept_float"])
    meta = read_export_meta(out)
    assert meta.int8["layers_int8"] == i8["layers_int8"] and meta.int8["kept_float"] == i8["kept_float"]
    det = NcnnDetector(out)  # the stock wheel runs it
    assert det.infer(np.zeros((3, SIZE, SIZE), np.float32)).shape == (4 + len(meta.names), det.num_anchors)
    det.close()
    assert val_map(out, data, (SIZE, SIZE)) == pytest.approx(report["map_export"])  # the engine loads it too
    assert cli.main(argv) == 2 and "already exist" in capsys.readouterr().err  # never replaced without --overwrite


@pytest.mark.slow
@pytest.mark.train
def test_int8_of_a_detector_that_detects_is_within_tolerance_or_refused(tmp_path):
    """The proof with something to prove: GhostNet-YOLOv5n, 5 epochs at 128 px (val mAP50-95 ~0.03, not 0)."""
    from lwdet.export import ParityError
    from lwdet.export.int8 import export_ncnn_int8

    cmd = [sys.executable, "train.py", "--backbone", "ghostnet", "--epochs", "5", "--imgsz", "128", "--batch", "16",
           "--no-plots", "--project", str(tmp_path), "--name", "g"]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "g"
    try:
        out = export_ncnn_int8(run / "weights" / "best.pt", imgsz=128, calib=run / "data.yaml", data=run / "data.yaml")
    except ParityError as e:  # refused: with the numbers, and nothing written
        i8 = e.report.int8
        assert i8["map_fp32"] > 0 and all(s["map5095"] < i8["target"] for s in i8["search"])
        assert not (run / "weights" / "best_int8_ncnn_model").exists()
        return
    i8 = json.loads((out / "parity.json").read_text())["int8"]
    assert i8["map_fp32"] > 0.005 and i8["map_int8"] >= i8["target"] == pytest.approx(0.99 * i8["map_fp32"])
    steps = {s["kept"]: s for s in i8["search"]}
    assert steps[len(i8["kept_float"])]["passed"] and all(
        not s["passed"] for k, s in steps.items() if k < len(i8["kept_float"])
    )
