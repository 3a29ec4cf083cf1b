#!/usr/bin/env bash
# Torch-free venv for lwdet's edge runtime (lwdet/edge, bench_edge.py, detect.py) on a Raspberry Pi 4/5.
#
#   bash deploy/raspberry-pi/setup.sh            # venv in deploy/raspberry-pi/.venv
#   bash deploy/raspberry-pi/setup.sh ~/lwdet-venv
#   PYTHON=python3.13 bash deploy/raspberry-pi/setup.sh
#
# Needs Raspberry Pi OS with Python >= 3.11 (Bookworm: 3.11, Trixie: 3.13) and python3-venv. 64-bit (aarch64): the
# three pins below from PyPI. 32-bit (armv7l, Bookworm): ncnn from PyPI, numpy and OpenCV from apt (python3-numpy,
# python3-opencv), in a venv with system site packages.
# Installs exactly three pinned wheels and nothing else (--no-deps: ncnn's own requirements tqdm, requests and
# portalocker serve only its model zoo, which lwdet does not use). Each pin has manylinux aarch64 wheels for
# CPython 3.11 and 3.13 (ncnn and numpy: manylinux_2_28, glibc >= 2.28; opencv: manylinux2014), checked with
#   pip download --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_aarch64 \
#       --platform manylinux2014_aarch64 ncnn==1.0.20261020 numpy==2.4.6 opencv-python-headless==5.0.0.93
# ncnn is the version the exports are made and checked with (setup.cfg's export extra).
set -euo pipefail

NCNN_VERSION=1.0.20261020
NUMPY_VERSION=2.4.6
OPENCV_VERSION=5.0.0.93  # headless: no GUI libraries to pull in; detect.py saves images/videos instead of showing

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-$HERE/.venv}"
PYTHON="${PYTHON:-python3}"

die() { echo "setup.sh: error: $*" >&2; exit 2; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=/path/to/python3)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$("$PYTHON" -V 2>&1) is too old: numpy $NUMPY_VERSION needs Python >= 3.11 (Raspberry Pi OS Bookworm or later)"
arch="$(uname -m)"
case "$arch" in
aarch64) ;;
armv7l)
    # 32-bit Raspberry Pi OS: ncnn publishes manylinux_2_31_armv7l wheels for this pin (cp311, cp313), numpy and
    # OpenCV publish none on PyPI, so they come from Raspberry Pi OS's apt packages through a venv that sees them.
    "$PYTHON" -c 'import numpy, cv2' 2>/dev/null \
        || die "32-bit OS (armv7l): numpy and OpenCV come from apt here: sudo apt install python3-numpy python3-opencv"
    "$PYTHON" -m venv --system-site-packages "$VENV" || die "could not create $VENV (sudo apt install python3-venv)"
    "$VENV/bin/python" -m pip install --no-deps --only-binary=:all: "ncnn==$NCNN_VERSION" \
        || die "no ncnn $NCNN_VERSION wheel for $("$PYTHON" -V) on armv7l (PyPI has cp311 and cp313 manylinux_2_31_armv7l wheels)"
    ;;
armv6l) die "armv6l (Pi Zero / Pi 1): ncnn, numpy and OpenCV publish no wheels for it; use a Pi 3 or later" ;;
*) echo "setup.sh: warning: $arch is not a Raspberry Pi (aarch64); installing the same pins for a dry run" >&2 ;;
esac
if [[ "$arch" != armv7l ]]; then
    "$PYTHON" -m venv "$VENV" || die "could not create $VENV (sudo apt install python3-venv)"
    "$VENV/bin/python" -m pip install --no-deps --only-binary=:all: \
        "ncnn==$NCNN_VERSION" "numpy==$NUMPY_VERSION" "opencv-python-headless==$OPENCV_VERSION"
fi
# lwdet's torch-free files (lwdet/edge, lwdet/cli's bench) from this copy, importable in the venv without installing
# lwdet (that would pull in torch): a .pth line naming the folder that holds lwdet/
"$VENV/bin/python" -c 'import sys, sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()["purelib"], "lwdet-edge.pth").write_text(sys.argv[1] + "\n")' \
    "$(cd "$HERE/../.." && pwd)"
"$VENV/bin/python" - <<'EOF'
import platform, cv2, ncnn, numpy, lwdet.edge
print(f"ok: Python {platform.python_version()} {platform.machine()}, ncnn {ncnn.__version__}, numpy {numpy.__version__}, "
      f"opencv {cv2.__version__}, {ncnn.get_cpu_count()} cores")
EOF
# The Pi camera (detect.py --source picam) goes through picamera2, which Raspberry Pi OS ships as an apt package
# (python3-picamera2, with libcamera's bindings; not on PyPI in a usable form): SYSTEM_SITE_PACKAGES=1 lets this venv
# see apt's packages. The venv's pinned numpy still comes first on sys.path.
if [[ "${SYSTEM_SITE_PACKAGES:-0}" == 1 ]]; then
    sed -i 's/^include-system-site-packages = false$/include-system-site-packages = true/' "$VENV/pyvenv.cfg"
    if "$VENV/bin/python" -c 'import picamera2' 2>/dev/null; then
        echo "ok: picamera2 (the Pi camera: detect.py --source picam)"
    else
        echo "setup.sh: warning: picamera2 is not importable from $VENV: sudo apt install python3-picamera2" \
            "(USB cameras, files and streams work without it)" >&2
    fi
fi
echo "activate with: source $VENV/bin/activate"
