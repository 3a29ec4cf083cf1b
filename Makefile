# Two commands do all set-up: `make demo` (train on the embedded dataset) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lwdet-installed
FAST := not slow and not export and not train

.PHONY: demo test test-all test-fast lint format venv clean-demo pi-check

venv: $(STAMP)

# constraints.txt pins every transitive version that was tested (torch 2.14.1 / torchvision 0.29.1 on x86-64).
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(PY) train.py --backbone ghostnet --epochs 10 --imgsz 160 --project runs/demo

# Tests run on JOBS pytest-xdist workers (one per core by default; JOBS=0: in this process), a test file per worker so
# a file's shared fixtures (a trained run, an export) are built once.
JOBS ?= auto
XDIST := -n $(JOBS) --dist loadfile

# what CI runs (.ci/run): lint, format check, then every tier but `slow` (the full export cross product, the
# engine-detector trainings, the wheel install): docs/testing.md
test: lint
	$(PY) -m pytest -q $(XDIST) -m "not slow" --durations=15

# everything, `slow` included (about 3x as long on 2 cores)
test-all: lint
	$(PY) -m pytest -q $(XDIST)

# the edit loop: no training, no export, nothing over ~20 s
test-fast: $(STAMP)
	$(PY) -m pytest -q $(XDIST) -m "$(FAST)"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean-demo:
	rm -rf runs/demo

# The Raspberry Pi path under qemu (root): setup.sh, bench_edge.py, detect.py and per-board numerics on an x86 export.
# make pi-check EXPORT=runs/demo/.../best_ncnn_model VAL=datasets/fmnist-det/images/val
pi-check:
	tools/pi_emulated.sh $(EXPORT) $(VAL) $(or $(OUT),/tmp/lwdet-pi-check)
