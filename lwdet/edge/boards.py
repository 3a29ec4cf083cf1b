"""Which CPU the runtime is on, and the fp16 default each board gets for an export (torch-free; runs on a Pi).

ncnn's defaults compute in fp16 wherever the CPU has fp16 arithmetic (ARMv8.2 ``asimdhp``: the Pi 5's Cortex-A76),
and only convert storage elsewhere (the Pi 4's Cortex-A72, x86). Measured under emulation on a trained fp32 export
(``tools/pi_emulated.sh``, table in deploy/raspberry-pi/README.md): on a Cortex-A72 ncnn's defaults give the same raw
output as x86; on a Cortex-A76 they move boxes far beyond the export's parity tolerance. So an fp32 export runs with
fp16 off on a CPU with fp16 arithmetic, and with ncnn's defaults everywhere else; an fp16 export (``--half``) keeps
ncnn's defaults, which is what its parity proof used. ``--fp16 on|off`` overrides it.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path

import ncnn

LOGGER = logging.getLogger(__name__)

CPU_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd41": "Cortex-A78",
}
BOARDS = {"Cortex-A72": "Raspberry Pi 4", "Cortex-A76": "Raspberry Pi 5", "Cortex-A53": "Raspberry Pi 3 / Zero 2"}
FP16_CHOICES = {"on": True, "off": False, "auto": None}


def cpu_part(cpuinfo: str | None = None) -> str | None:
    """The ARM core's name from /proc/cpuinfo's ``CPU part`` (None off ARM, or for a part not in ``CPU_PARTS``)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "CPU part":
            return CPU_PARTS.get(value.strip().lower())
    return None


def fp16_arithmetic() -> bool:
    """Whether ncnn sees fp16 arithmetic on this CPU (ARMv8.2 asimdhp; from the kernel's hwcaps, so it also follows
    qemu-user's ``QEMU_CPU``, where /proc/cpuinfo shows the host's)."""
    return bool(ncnn.cpu_support_arm_asimdhp())


def default_fp16(export_fp16: bool = False, asimdhp: bool | None = None) -> bool | None:
    """ncnn's fp16 setting for an export on this CPU: False (fp16 off) for an fp32 export where the CPU has fp16
    arithmetic, None (ncnn's defaults) otherwise. ``asimdhp`` None: ask ncnn."""
    if export_fp16:
        return None
    asimdhp = fp16_arithmetic() if asimdhp is None else asimdhp
    return False if asimdhp else None


def parse_fp16(text: str) -> bool | None:
    """``on`` / ``off`` / ``auto`` (the board's default) -> True / False / None, for a ``--fp16`` flag."""
    try:
        return FP16_CHOICES[text.strip().lower()]
    except KeyError:
        raise ValueError(f"--fp16: expected on, off or auto, got {text!r}") from None


def describe(fp16: bool | None) -> str:
    """One line for logs: the CPU and what fp16 setting ncnn runs with."""
    part = cpu_part() or platform.machine()
    setting = {True: "fp16 on", False: "fp16 off", None: "ncnn's default fp16"}[fp16]
    return f"{BOARDS.get(part, part)} ({part}, asimdhp={fp16_arithmetic()}): {setting}"
