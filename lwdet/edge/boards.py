"""Which CPU the runtime is on, and the fp16 setting each board gets for an export (torch-free; runs on a Pi).

ncnn's defaults store weights and activations in fp16 wherever the CPU converts fp16 (the Pi 4's Cortex-A72 and the
Pi 5's Cortex-A76) and also compute in fp16 where it has fp16 arithmetic (ARMv8.2 ``asimdhp``: the Pi 5). That is
what ncnn's published Pi timings, the engine's ncnn backend and the peers' demos run. The runtime's default on a board
follows what was measured on that board for this export (``tools/pi_numerics.py report --record`` writes the
emulated check into lwdet.json's ``board_numerics``): fp16 on (the faster setting) when its recorded mAP50-95 is
within the export's mAP tolerance of the same board's fp16-off run (else of the x86 run, the parity-proven
numerics; an int8 export's ARM kernels can differ from x86's, which fp16 is not to blame for), off when it is not;
with nothing recorded for the board, ncnn's defaults and one warning line that its numerics are unchecked. Off ARM
(x86, where exports are made) ncnn's defaults, unchanged. ``--fp16 on|off`` overrides it all.
"""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path
from typing import NamedTuple

import ncnn

from lwdet.artifacts import MAP_TOLERANCE  # when a record states none

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
REFERENCE_RUN = "x86"  # the board check's fp32 run every board is compared with (lwdet.pi_numerics.REFERENCE)


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
    return emulated_part()


def emulated_part() -> str | None:
    """The core qemu-user emulates (``QEMU_CPU=cortex-a76``), whose /proc/cpuinfo is the host's; None when unset."""
    name = os.environ.get("QEMU_CPU", "").strip().lower()
    return next((p for p in CPU_PARTS.values() if p.lower() == name), None)


def on_arm() -> bool:
    return platform.machine().lower().startswith(("aarch64", "arm")) or cpu_part() is not None


def _run_part(run: dict) -> str | None:
    """The core a recorded run was measured on: its ``cpu_part``, else the ``QEMU_CPU`` its tag starts with
    (tools/pi_emulated.sh names runs ``cortex-a76-fp16-on``; records made before cpu_part saw QEMU_CPU lack it)."""
    if run.get("cpu_part"):
        return run["cpu_part"]
    tag = str(run.get("run", "")).lower()
    return next((p for p in CPU_PARTS.values() if tag.startswith(p.lower() + "-")), None)


class Fp16Default(NamedTuple):
    """The runtime's fp16 setting for an export on a board: True / False, or None (ncnn's defaults)."""

    fp16: bool | None
    checked: bool  # False: nothing recorded for this board, the numerics there are unchecked
    why: str


def board_default(numerics: dict | None, part: str | None, arm: bool) -> Fp16Default:
    """fp16 on a board by the recorded mAP (module docstring): ``numerics`` is lwdet.json's ``board_numerics``,
    ``part`` the core (``cpu_part()``), ``arm`` whether this is an ARM board at all."""
    if not arm:
        return Fp16Default(None, True, "ncnn's defaults (not an ARM board)")
    board = f"{BOARDS.get(part, part)} ({part})" if part else f"this {platform.machine()} CPU (core not known)"
    runs = (numerics or {}).get("runs", [])
    x86 = next((r for r in runs if r.get("run") == REFERENCE_RUN and r.get("map50_95") is not None), None)
    mine = [r for r in runs if part and _run_part(r) == part and r.get("map50_95") is not None]
    on = next((r for r in mine if r.get("fp16_used") is True), None)
    off = next((r for r in mine if r.get("fp16_used") is False), None)
    ref = off or x86  # fp16's own cost: against fp16 off on this board (int8 kernels differ from x86's), else x86
    if on is None or ref is None:
        return Fp16Default(None, False, f"numerics on {board} unchecked for this export: ncnn's defaults "
                           f"(tools/pi_emulated.sh + pi_numerics.py report --record checks them)")  # fmt: skip
    tol = float((numerics or {}).get("map_tolerance") or MAP_TOLERANCE)
    ref_map, fp16_map = float(ref["map50_95"]), float(on["map50_95"])
    ok = abs(fp16_map - ref_map) <= tol
    why = (f"fp16 {'on' if ok else 'off'} on {board}: recorded fp16 mAP50-95 {fp16_map:.4f} vs "
           f"{'fp16 off there' if off else 'x86'} {ref_map:.4f}, |diff| {abs(fp16_map - ref_map):.4f} "
           f"{'<=' if ok else '>'} {tol}")  # fmt: skip
    if off and x86 and abs(float(off["map50_95"]) - float(x86["map50_95"])) > tol:
        why += f"; this board's fp16-off mAP50-95 {float(off['map50_95']):.4f} differs from x86's {float(x86['map50_95']):.4f}"
    return Fp16Default(ok, True, why)


def fp16_arithmetic() -> bool:
    """Whether ncnn sees fp16 arithmetic on this CPU (ARMv8.2 asimdhp; from the kernel's hwcaps, so it also follows
    qemu-user's ``QEMU_CPU``, where /proc/cpuinfo shows the host's)."""
    return bool(ncnn.cpu_support_arm_asimdhp())


def default_fp16(numerics: dict | None = None, part: str | None = None, arm: bool | None = None) -> bool | None:
    """``board_default(...).fp16`` for this CPU (``part`` / ``arm`` None: ask the system)."""
    part = cpu_part() if part is None else part
    return board_default(numerics, part, on_arm() if arm is None else arm).fp16


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
