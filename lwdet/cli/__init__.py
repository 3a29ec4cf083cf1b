"""The ``lwdet`` command: ``lwdet <command> [args]`` (also ``python -m lwdet``) runs ``lwdet.cli.<command>.main``.

Each command module is imported only when asked for, so ``lwdet bench`` stays torch-free (it runs on a Pi).
"""

from __future__ import annotations

import importlib
import sys

# command -> one line for `lwdet --help` (the module's own --help says the rest)
COMMANDS = {
    "train": "train a detector (a backbone, neck and head, or a model YAML) on a data YAML",
    "export": "export a run or .pt to ncnn / ONNX and check it against the PyTorch model",
    "bench": "time ncnn exports and peer .param graphs as benchncnn does (torch-free)",
    "profile": "params, multiply-adds, memory-access cost and peak memory of a detector or backbone",
    "parts": "ncnn latency of a detector's backbone, neck and head",
    "data": "import VOC / COCO / CSV datasets into the YOLO layout, or check a dataset",
    "sliced-eval": "mAP of full-size images: sliced (tiled) inference vs whole-image letterbox",
    "study": "train, export and time a list of detectors from a study config, then report",
    "report": "tables and plots from a study's results CSV",
    "search": "hardware-aware search on Ray Tune: the most accurate detector of a space within a latency budget",
}

USAGE = "usage: lwdet {" + ",".join(COMMANDS) + "} ... [-h]"


def _help() -> str:
    import lwdet

    width = max(map(len, COMMANDS))
    lines = [
        USAGE,
        "",
        f"lwdet {lwdet.__version__}: YOLOv5n backbone-swap detectors for edge devices.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "lwdet COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(f"lwdet: error: give a command: {', '.join(COMMANDS)} (lwdet --help says more)", file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(_help())
        return 0
    if argv[0] == "--version":
        import lwdet

        print(f"lwdet {lwdet.__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lwdet: error: unknown command {name!r} (choose from {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    return int(importlib.import_module(f"lwdet.cli.{name.replace('-', '_')}").main(rest) or 0)
