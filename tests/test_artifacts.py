"""lwdet.artifacts (file names, ExportMeta, resolve_source, check_imgsz) and lwdet.units: torch-free contracts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lwdet.artifacts import (
    EXPORT_META_VERSION,
    Blob,
    ExportMeta,
    check_imgsz,
    export_siblings,
    parity_file,
    resolve_source,
)
from lwdet.errors import ConfigError
from lwdet.units import MB, kib_to_mb, mb

ROOT = Path(__file__).resolve().parents[1]


def meta(**kw) -> ExportMeta:
    return ExportMeta(
        format="ncnn",
        model="m",
        names=["a", "b"],
        imgsz=[64, 96],
        input=Blob("in0", [1, 3, 64, 96]),
        output=Blob("out0", [6, 126]),
        **kw,
    )


def test_export_meta_round_trips_through_json(tmp_path):
    m = meta(fp16=True, strides=[16, 32], source={"weights": "best.pt"})
    file = m.save(tmp_path)
    assert file == tmp_path / "lwdet.json" and next(iter(json.loads(file.read_text()))) == "version"
    back = ExportMeta.load(tmp_path)
    assert back == m and back.version == EXPORT_META_VERSION and back.input.blob == "in0"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(version=99), "lwdet.json: unknown version 99"),
        (lambda d: d.pop("version"), "lwdet.json: missing key 'version'"),
        (lambda d: d.pop("imgsz"), "lwdet.json: missing key 'imgsz'"),
        (lambda d: d.update(colour="red"), "lwdet.json: unknown key 'colour'"),
        (lambda d: d.update(imgsz=[64]), "key 'imgsz' must be [H, W]"),
    ],
)
def test_export_meta_refuses_a_bad_file_with_one_line_naming_file_and_key(change, message, tmp_path):
    d = meta().to_dict()
    change(d)
    (tmp_path / "lwdet.json").write_text(json.dumps(d))
    with pytest.raises(ConfigError) as e:
        ExportMeta.load(tmp_path)
    assert message in str(e.value) and str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "lwdet.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ExportMeta.load(tmp_path)


def test_resolve_source_run_folder_weights_and_exports(tmp_path):
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    for f in ("weights/best.pt", "args.yaml", "data.yaml"):
        (run / f).write_text("x")
    best = run / "weights" / "best.pt"
    assert resolve_source(run) == (best, run, None, run / "data.yaml")
    assert resolve_source(best).run == run and resolve_source(best).data == run / "data.yaml"
    export = run / "weights" / "best_ncnn_model"
    export.mkdir()
    assert resolve_source(export) == (best, run, export, run / "data.yaml")
    onnx = run / "weights" / "best.onnx"
    onnx.write_text("x")
    assert resolve_source(onnx).weights == best
    renamed = tmp_path / "copy_ncnn_model"  # lwdet.json names the weights it came from
    renamed.mkdir()
    meta(source={"weights": "w.pt"}).save(renamed)
    (tmp_path / "w.pt").write_text("x")
    assert resolve_source(renamed).weights == tmp_path / "w.pt"
    assert export_siblings(export) == {"pt": best, "onnx": onnx}


@pytest.mark.parametrize(
    "path, message",
    [
        ("missing.pt", "weights not found"),
        ("empty_dir", "weights/best.pt does not exist"),
        ("orphan_ncnn_model", "the weights it was exported from are not there"),
        ("notes.txt", "neither a run folder, a .pt file nor an export"),
    ],
)
def test_resolve_source_errors(path, message, tmp_path):
    for d in ("empty_dir", "orphan_ncnn_model"):
        (tmp_path / d).mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=message):
        resolve_source(tmp_path / path)


def test_an_export_without_its_weights_resolves_when_weights_are_optional(tmp_path):
    (tmp_path / "orphan_ncnn_model").mkdir()
    src = resolve_source(tmp_path / "orphan_ncnn_model", need_weights=False)
    assert src.weights is None and src.export == tmp_path / "orphan_ncnn_model"


def test_resolve_source_checks_the_data_yaml(tmp_path):
    (tmp_path / "w.pt").write_text("x")
    with pytest.raises(FileNotFoundError, match="data YAML not found"):
        resolve_source(tmp_path / "w.pt", tmp_path / "none.yaml")


def test_check_imgsz_and_parity_file():
    assert check_imgsz(64) == (64, 64) and check_imgsz([64, 96]) == (64, 96) and check_imgsz(48, 16) == (48, 48)
    for bad in (0, 100, -32, (64,), "64", 64.0, True, (64, 65)):
        with pytest.raises(ValueError, match="positive multiple of 32"):
            check_imgsz(bad)
    assert parity_file("a/b_ncnn_model") == Path("a/b_ncnn_model/parity.json")
    assert parity_file("a/b.onnx") == Path("a/b.onnx.parity.json")


def test_one_unit_rule():
    assert MB == 10**6 and mb(2_500_000) == 2.5 and kib_to_mb(1000) == 1.024


def test_artifacts_import_without_torch_or_yaml():
    blocker = (
        "import sys\nclass B:\n    def find_spec(self, name, *a):\n"
        "        if name.split('.')[0] in ('torch', 'ultralytics', 'yaml'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, B())\nimport lwdet.artifacts, lwdet.units\nprint('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
