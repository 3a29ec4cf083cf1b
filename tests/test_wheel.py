"""The wheel as a new user gets it: built from this checkout, installed into a fresh environment, run from an empty
folder outside the checkout (so neither the checkout nor an editable install can stand in for the package)."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.train, pytest.mark.export]


def _run(cmd, cwd, env=None, timeout=900):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, ROOT], cwd=out)
    (whl,) = out.glob("lwdet-*.whl")
    return whl


def test_wheel_holds_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    cfg = {n for n in names if n.startswith("lwdet/cfg/")}
    shipped = {f"lwdet/cfg/models/{p.name}" for p in (ROOT / "lwdet/cfg/models").glob("*.yaml")}
    assert shipped and shipped <= cfg
    for name in (
        "lwdet/cfg/datasets/fmnist-det.yaml",
        "lwdet/cfg/studies/study-cpu.yaml",
        "lwdet/data/assets/fashion_items.npz",
        "lwdet/cli/train.py",
        "lwdet/__main__.py",
    ):
        assert name in names, name
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "lwdet = lwdet.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not any(n.startswith(("tests/", "models/", "datasets/", "configs/")) for n in names)


@pytest.fixture(scope="module")
def user(wheel, tmp_path_factory):
    """(env, empty working folder): a fresh venv with only the wheel installed (--no-deps); the dependencies come
    from this interpreter's site-packages through a .pth line, which does not run that folder's own .pth files
    (so an editable install of lwdet there stays out)."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv)
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv).stdout.strip())
    (site / "_deps_of_the_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", wheel], cwd=venv)
    work = tmp_path_factory.mktemp("user")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LWDET_DATASETS")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1")
    where = _run(["lwdet", "--version"], cwd=work, env=env)
    assert where.stdout.startswith("lwdet ")
    file = _run([py, "-c", "import lwdet; print(lwdet.__file__)"], cwd=work, env=env).stdout.strip()
    assert Path(file).is_relative_to(venv) and not Path(file).is_relative_to(ROOT), file
    return env, work


TINY = """# the embedded set, tiny: 16 train / 8 val images
path: tiny
train: images/train
val: images/val
names: [t_shirt, trouser, dress, sneaker, bag]
lwdet_synth: {n_train: 16, n_val: 8, seed: 0, min_side: 64, max_side: 96, objects: [1, 3], scale: [16, 48]}
"""


def test_shipped_data_yaml_builds_into_the_working_folder(user):
    env, work = user
    code = (
        "from lwdet.data import DEFAULT_DATA, _load_yaml, dataset_root; "
        "print(DEFAULT_DATA); print(dataset_root(DEFAULT_DATA, _load_yaml(DEFAULT_DATA)))"
    )
    shipped, root = _run(["python", "-c", code], cwd=work, env=env).stdout.split()
    assert Path(shipped).is_file() and Path(shipped).parts[-4:] == ("lwdet", "cfg", "datasets", "fmnist-det.yaml")
    assert Path(root) == work / "datasets" / "fmnist-det"  # generated data never goes into site-packages


def test_train_export_bench_from_an_empty_folder(user):
    env, work = user
    (work / "tiny.yaml").write_text(TINY)
    _run(
        [
            "lwdet",
            "train",
            "--backbone",
            "ghostnet",
            "--epochs",
            "1",
            "--imgsz",
            "64",
            "--batch",
            "8",
            "--no-plots",
            "--project",
            "P",
            "--name",
            "N",
            "--data",
            "tiny.yaml",
            "--workers",
            "0",
        ],
        cwd=work,
        env=env,
    )
    run = work / "P" / "N"
    assert (run / "weights" / "best.pt").is_file() and (run / "results.csv").is_file()
    r = _run(["lwdet", "export", "P/N", "--format", "ncnn", "--imgsz", "64"], cwd=work, env=env)
    export = run / "weights" / "best_ncnn_model"
    assert (export / "model.ncnn.param").is_file() and str(export) in r.stdout
    r = _run(["lwdet", "bench", "--model", export, "--loops", "3", "--warmup", "1"], cwd=work, env=env)
    assert "best_ncnn_model" in r.stdout or "yolov5n-ghostnet_100" in r.stdout, r.stdout
    assert sorted(p.name for p in work.iterdir()) == ["P", "tiny", "tiny.yaml"]  # nothing else written here
