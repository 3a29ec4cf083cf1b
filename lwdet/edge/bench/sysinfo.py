"""What a row was measured on and with: process memory from /proc (peak reset per model), SoC temperature, and
the device's board, CPU, clocks, OS and library versions. Sizes in MB (``lwdet.units``: 10**6 bytes)."""

from __future__ import annotations

import os
import platform
import resource
import sys
from pathlib import Path

import ncnn
import numpy as np

from lwdet.edge.boards import CPU_PARTS
from lwdet.units import MB, kib_to_mb

DEVICE_FIELDS = (
    "board",
    "cpu",
    "arch",
    "cores",
    "mem_total_mb",
    "cpu_max_mhz",
    "governor",
    "os",
    "python",
    "ncnn",
    "numpy",
    "opencv",
)


def _proc_status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return kib_to_mb(int(line.split()[1]))  # /proc's "kB" are KiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_memory() -> bool:
    """Reset the process's peak resident size (Linux >= 4.0); False where it cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_mb() -> float | None:
    """Resident size now, MB (10**6 bytes)."""
    return _proc_status_mb("VmRSS")


def peak_memory_mb() -> float:
    """Peak resident size, MB (since the last reset where /proc allows it, else since the process began)."""
    peak = _proc_status_mb("VmHWM")
    if peak is None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = rss / MB if sys.platform == "darwin" else kib_to_mb(rss)  # bytes on macOS, KiB on Linux
    return peak


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def _cpu_name(cpuinfo: str) -> str:
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if fields.get("model name"):
        return fields["model name"]
    part = fields.get("CPU part", "").lower()  # ARM cores name themselves only by part number
    if part:
        return CPU_PARTS.get(part, f"ARM CPU part {part}")
    return platform.processor() or "unknown"


def soc_temp_c() -> float | None:
    """SoC temperature in deg C where Linux exposes it (a hot Pi throttles: compare rows' temperatures)."""
    raw = _read("/sys/class/thermal/thermal_zone0/temp")
    try:
        return int(raw) / 1000 if raw else None
    except ValueError:
        return None


def device_info() -> dict:
    """What the numbers were measured on: board, CPU, cores, memory, clocks, OS and library versions."""
    meminfo = _read("/proc/meminfo") or ""
    mem_kb = next((int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal:")), None)
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    cv2 = sys.modules.get("cv2")
    return {
        "board": _read("/proc/device-tree/model") or "",
        "cpu": _cpu_name(_read("/proc/cpuinfo") or ""),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "mem_total_mb": round(kib_to_mb(mem_kb)) if mem_kb else None,
        "cpu_max_mhz": int(max_khz) // 1000 if max_khz and max_khz.isdigit() else None,
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "",
        "os": platform.platform(),
        "python": platform.python_version(),
        "ncnn": ncnn.__version__,
        "numpy": np.__version__,
        "opencv": getattr(cv2, "__version__", ""),
    }
