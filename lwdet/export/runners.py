"""Run an export for the parity check: ncnn through its python binding, ONNX through onnxruntime (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lwdet.artifacts import NCNN_FILES, NCNN_SUFFIX
from lwdet.export.prepare import ExportError


def ncnn_options(half: bool) -> dict:
    """The ncnn Net options an export is checked with, saved in lwdet.json for the runtime to set the same.

    ncnn's defaults compute in fp16 wherever the CPU can (fp16 storage on x86 with F16C, storage and arithmetic on
    ARMv8.2 such as the Pi 5), whatever precision the weights were stored in. An fp32 export is checked, and should
    run, with fp16 off; an fp16 export with ncnn's defaults.
    """
    return {"use_fp16_packed": half, "use_fp16_storage": half, "use_fp16_arithmetic": half, "use_bf16_storage": False}


class _NcnnRunner:
    """Run an ncnn folder with the ncnn python binding, on the CPU, with ``ncnn_options(half)``."""

    def __init__(self, folder: Path, half: bool = False):
        import ncnn

        self.ncnn, self.net = ncnn, ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        for k, v in ncnn_options(half).items():
            setattr(self.net.opt, k, v)
        param, weights = (str(folder / f) for f in NCNN_FILES)
        if self.net.load_param(param) != 0 or self.net.load_model(weights) != 0:
            raise ExportError(f"ncnn {ncnn.__version__} cannot load {param}{self._unknown_layers(folder)}")
        if len(self.net.input_names()) != 1 or len(self.net.output_names()) != 1:
            raise ExportError(
                f"{param}: expected one input and one output, got {self.net.input_names()} -> {self.net.output_names()}"
            )
        self.input_name, self.output_name = self.net.input_names()[0], self.net.output_names()[0]

    @staticmethod
    def _unknown_layers(folder: Path) -> str:
        lines = (folder / NCNN_FILES[0]).read_text().splitlines()[2:]
        kinds = sorted({line.split()[0] for line in lines if line.startswith("pnnx.")})
        return f" (layers ncnn does not have: {', '.join(kinds)})" if kinds else ""

    def __call__(self, x: np.ndarray) -> np.ndarray:  # (1, 3, H, W) -> (1, 4+nc, N)
        with self.net.create_extractor() as ex:
            ex.input(self.input_name, self.ncnn.Mat(np.ascontiguousarray(x[0], dtype=np.float32)))
            ret, out = ex.extract(self.output_name)
        if ret != 0:
            raise ExportError(f"ncnn failed to compute '{self.output_name}' (status {ret})")
        return np.array(out)[None]


class _OnnxRunner:
    def __init__(self, file: Path):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x.astype(np.float32)})[0]


def export_format(path: str | Path) -> str:
    """'ncnn' for a ``*_ncnn_model`` folder, 'onnx' for a ``.onnx`` file."""
    path = Path(path)
    if path.name.endswith(NCNN_SUFFIX):
        return "ncnn"
    if path.suffix == ".onnx":
        return "onnx"
    raise ValueError(f"{path}: not an export lwdet knows (a *{NCNN_SUFFIX} folder or a .onnx file)")
