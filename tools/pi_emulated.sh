#!/usr/bin/env bash
# The Raspberry Pi path, run on an x86 machine under emulation: a Debian bookworm arm64 root filesystem (debootstrap)
# run through qemu-user-static, where deploy/raspberry-pi/setup.sh, bench_edge.py and detect.py run on an export made
# on x86, and the export's numerics are measured under each board's CPU model (QEMU_CPU=cortex-a72: Pi 4,
# cortex-a76: Pi 5) with ncnn's defaults and with fp16 off.
#
#   sudo tools/pi_emulated.sh EXPORT_DIR [VAL_IMAGES_DIR] [OUT_DIR]      # or: make pi-check EXPORT=... VAL=...
#
# EXPORT_DIR: an ncnn export folder from export.py (<stem>_ncnn_model/). VAL_IMAGES_DIR: the run's val images
# (default: none, only setup/bench/detect run; LWDET_PI_N_IMAGES=N: the first N only). OUT_DIR (default /tmp/lwdet-pi-check): per-run raw outputs and
# detections; `tools/pi_numerics.py report OUT_DIR ...` turns them into the per-board table.
# Needs root (apt, binfmt_misc, chroot). The root filesystem is cached in $LWDET_PI_CACHE (default
# /var/cache/lwdet/pi-rootfs): the first run takes ~5 min of debootstrap, later runs start in seconds.
# Emulated timings are NOT latencies (qemu translates every instruction): nothing this prints is a Pi's speed.
set -euo pipefail

ARCH="${LWDET_PI_ARCH:-arm64}"            # arm64 (64-bit Raspberry Pi OS) or armhf (32-bit)
CPUS="${LWDET_PI_CPUS:-cortex-a72 cortex-a76}"
CACHE="${LWDET_PI_CACHE:-/var/cache/lwdet/pi-rootfs}"
ROOTFS="$CACHE/bookworm-$ARCH"
MIRROR="${LWDET_PI_MIRROR:-http://deb.debian.org/debian}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST_PY="${PYTHON:-$REPO/.venv/bin/python}"
[[ -x "$HOST_PY" ]] || HOST_PY=python3

die() { echo "pi_emulated.sh: error: $*" >&2; exit 2; }
log() { echo "[pi-check $(date -u +%T)] $*" >&2; }

[[ $# -ge 1 ]] || die "usage: $0 EXPORT_DIR [VAL_IMAGES_DIR] [OUT_DIR]"
EXPORT="$(realpath "$1")"; VAL="${2:+$(realpath "$2")}"; OUT="$(realpath -m "${3:-/tmp/lwdet-pi-check}")"
[[ -f "$EXPORT/model.ncnn.param" ]] || die "$EXPORT: not an ncnn export folder (no model.ncnn.param)"
[[ -z "$VAL" || -d "$VAL" ]] || die "$VAL: not a folder of val images"
[[ $(id -u) -eq 0 ]] || die "needs root (apt-get, binfmt_misc, chroot): run with sudo"
case "$ARCH" in arm64) QEMU=qemu-aarch64 ;; armhf) QEMU=qemu-arm ;; *) die "LWDET_PI_ARCH: arm64 or armhf, got $ARCH" ;; esac

# 1. qemu-user-static, binfmt_misc, debootstrap
missing=()
for pkg in qemu-user-static binfmt-support debootstrap; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[[ -e /proc/sys/fs/binfmt_misc/$QEMU ]] || update-binfmts --enable "$QEMU" || die "cannot enable $QEMU in binfmt_misc"

# 2. the root filesystem, cached (built in a temporary folder and renamed, so a broken build is never reused)
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"; flock 9
if [[ ! -x "$ROOTFS/usr/bin/python3" ]]; then
    log "debootstrap bookworm $ARCH into $ROOTFS (~5 min, once)"
    rm -rf "$ROOTFS.tmp"
    extra=python3,python3-venv,python3-pip,ca-certificates
    [[ $ARCH == armhf ]] && extra+=,python3-numpy,python3-opencv  # 32-bit: numpy/OpenCV from apt, as on Pi OS
    debootstrap --arch="$ARCH" --variant=minbase --include="$extra" bookworm "$ROOTFS.tmp" "$MIRROR" \
        > "$CACHE/debootstrap-$ARCH.log" 2>&1 || die "debootstrap failed, see $CACHE/debootstrap-$ARCH.log"
    mv "$ROOTFS.tmp" "$ROOTFS"
fi

# 3. the repo's tracked files and the export, copied in (the venv lives outside the copy, so it survives it)
HOME_PI="$ROOTFS/home/pi"
rm -rf "$HOME_PI/lwdet" "$HOME_PI/export" "$HOME_PI/val" "$HOME_PI/out"
mkdir -p "$HOME_PI/lwdet" "$HOME_PI/out"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | (cd "$REPO" && tar --null -T - -cf - 2>/dev/null) | tar -xf - -C "$HOME_PI/lwdet"
cp -r "$EXPORT" "$HOME_PI/export"
if [[ -n "$VAL" ]]; then  # LWDET_PI_N_IMAGES: the first N val images only (emulation runs ~10-50x slower)
    mkdir -p "$HOME_PI/val"
    find "$VAL" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.bmp' \) | sort \
        | awk -v n="${LWDET_PI_N_IMAGES:-100000}" "NR <= n" | xargs -r cp -t "$HOME_PI/val"  # awk reads all: no SIGPIPE under pipefail
fi
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# the host's CA bundle for pip: a host behind a TLS-inspecting proxy trusts its CA; a real Pi needs nothing
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/lwdet-host-ca.crt"
cleanup() { for m in dev/pts dev proc; do mountpoint -q "$ROOTFS/$m" && umount -l "$ROOTFS/$m"; done; }
trap cleanup EXIT
mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
mountpoint -q "$ROOTFS/dev" || mount --bind /dev "$ROOTFS/dev"
in_pi() { chroot "$ROOTFS" env -i HOME=/home/pi PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 ${1:+QEMU_CPU=$1} \
          PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/lwdet-host-ca.crt bash -c "cd /home/pi/lwdet && $2"; }

# 4. setup.sh exactly as on a Pi (the venv outside the repo copy; pip's cache in the rootfs keeps reruns fast)
t0=$SECONDS
in_pi "" "bash deploy/raspberry-pi/setup.sh /home/pi/lwdet-venv" || die "setup.sh failed inside the $ARCH rootfs"
log "setup.sh: $((SECONDS - t0)) s"
PY=/home/pi/lwdet-venv/bin/python

# 5. per board CPU model: bench_edge.py and detect.py run (timings printed are emulated, not latencies), then numerics
if [[ -n "$VAL" ]]; then
    "$HOST_PY" "$REPO/tools/pi_numerics.py" inputs "$EXPORT" "$HOME_PI/val" "$HOME_PI/out/inputs.npy"
    "$HOST_PY" "$REPO/tools/pi_numerics.py" measure "$EXPORT" "$HOME_PI/out/inputs.npy" "$HOME_PI/val" \
        "$HOME_PI/out/x86" --fp16 off
fi
for cpu in $CPUS; do
    t0=$SECONDS
    in_pi "$cpu" "$PY bench_edge.py --model /home/pi/export --threads 1 --loops 2 --warmup 1 > /home/pi/out/bench-$cpu.txt" \
        || die "bench_edge.py failed under QEMU_CPU=$cpu"
    sed 's/^/    (emulated, not a latency) /' "$HOME_PI/out/bench-$cpu.txt" >&2
    if [[ -n "$VAL" ]]; then
        in_pi "$cpu" "$PY deploy/raspberry-pi/detect.py --model /home/pi/export --source /home/pi/val --max-frames 2 \
            --save /home/pi/out/detect-$cpu" >/dev/null || die "detect.py failed under QEMU_CPU=$cpu"
        for fp16 in on off; do
            in_pi "$cpu" "$PY tools/pi_numerics.py measure /home/pi/export /home/pi/out/inputs.npy /home/pi/val \
                /home/pi/out/$cpu-fp16-$fp16 --fp16 $fp16" || die "numerics failed under QEMU_CPU=$cpu, fp16 $fp16"
        done
    fi
    log "$cpu: bench, detect and numerics passed in $((SECONDS - t0)) s (emulated)"
done
mkdir -p "$OUT"
cp -r "$HOME_PI/out/." "$OUT/"
log "done: results in $OUT"
