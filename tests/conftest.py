import os
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
# On pytest-xdist workers (make test: one per core) each worker's torch / OpenMP gets its share of the cores, so two
# workers on two cores do not run four threads; set before anything imports torch, inherited by subprocesses.
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def no_torch_env(tmp_path_factory) -> dict:
    """Environment in which ``import torch`` / ``ultralytics`` / ``yaml`` raise ImportError: the Pi has none of them.

    ``tests/`` is on its path too, so a subprocess can import test helpers."""
    block = tmp_path_factory.mktemp("block")
    for name in ("torch", "ultralytics", "yaml"):
        (block / name).mkdir()
        (block / name / "__init__.py").write_text(f"raise ImportError('{name} blocked: lwdet.edge must not need it')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(block), str(ROOT), str(ROOT / "tests")])}


def expected_strides(path) -> list[int]:
    """Detection strides of a shipped model YAML: the two-level PAN (``-p45pan``) detects at P4/P5 only."""
    return [16, 32] if "-p45pan" in path.stem else [8, 16, 32]


# Test tiers (markers registered in pyproject.toml): `make test-fast` leaves out slow, export and train tests.
# Tests are tiered here by what they use, so the tier follows the fixture and no test file has to repeat it.
FIXTURE_MARKS = {
    "exported": ("export",),  # test_edge: a detector exported through pnnx
    "trained_run": ("train", "export"),  # test_export: a trained run, exported
}
TEST_MARKS = {  # (module, test name prefix) -> markers
    ("test_training.py", ""): ("train",),  # every test there starts the engine's trainer
    ("test_export.py", ""): ("export",),  # pnnx / ONNX exports with parity checks (finer tiers: test_export.py)
    ("test_study.py", "test_tiny_study"): ("train", "export", "slow"),
    ("test_study.py", "test_train_only"): ("train", "export", "slow"),
    ("test_study.py", "test_study_leaves_a_run"): ("train", "export", "slow"),
    ("test_parts.py", "test_part_latency"): ("export",),  # pnnx exports three graphs
    ("test_parts.py", "test_cli_prints"): ("export",),
    ("test_checkpoints.py", "test_export_cli"): ("export",),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set()
        for fixture, marks in FIXTURE_MARKS.items():
            if fixture in getattr(item, "fixturenames", ()):
                names.update(marks)
        for (module, prefix), marks in TEST_MARKS.items():
            if item.path.name == module and item.name.startswith(prefix):
                names.update(marks)
        for name in sorted(names - {m.name for m in item.iter_markers()}):
            item.add_marker(getattr(pytest.mark, name))
