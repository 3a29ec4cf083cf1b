"""ncnn runners: ``NcnnDetector`` for an lwdet export folder, ``NcnnParamNet`` for a bare .param (empty weights).

ncnn's Net pools its own blob and workspace memory; ncnn Mats never leave this module (outputs are copied into
numpy inside the extractor's scope), because a Mat that outlives its Net's pool aborts the process.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import NamedTuple

import ncnn
import numpy as np

from lwdet.artifacts import (
    ENGINE_META,
    EXPORT_META,
    INPUT_LAYOUT,
    NCNN_BIN,
    NCNN_PARAM,
    NCNN_SUFFIX,
    OUTPUT_LAYOUT,
    Blob,
    ExportMeta,
)
from lwdet.edge.boards import board_default, cpu_part, on_arm
from lwdet.edge.postprocess import CONF, IOU, MAX_DET, postprocess
from lwdet.edge.preprocess import preprocess

LOGGER = logging.getLogger(__name__)

PARAM_MAGIC = "7767517"
FILL = 0.01  # benchncnn's input value
# file names: lwdet.artifacts (the one contract for export folders)


class Detection(NamedTuple):
    xyxy: tuple[float, float, float, float]  # original image pixels
    score: float
    class_id: int
    class_name: str


class ParamGraph(NamedTuple):
    """What an ncnn .param declares: its input blob, its output blobs (produced, never consumed), as ncnn reads it."""

    input: str
    outputs: list[str]
    input_shape: tuple[int, int, int] | None  # (w, h, c) from the Input layer's 0=, 1=, 2=, when it states them
    layers: int
    blobs: int


def _input_shape(path: Path, lines: list[str]) -> tuple[int, int, int] | None:
    """(w, h, c) of the Input layer's 0=, 1=, 2=, read from the text: ncnn's python API does not expose layer
    parameters, and a peer's bare .param states its input size only there."""
    for line in lines[2:]:
        tok = line.split()
        if tok and tok[0] == "Input":
            params = dict(p.split("=", 1) for p in tok if "=" in p)
            try:
                return tuple(int(params[k]) for k in "012") if all(k in params for k in "012") else None
            except ValueError:
                raise ValueError(f"{path}: Input layer sizes are not integers: {line.strip()!r}") from None
    return None


def parse_param(path: str | Path) -> ParamGraph:
    """Input and output blob names and counts from ncnn's own loader (``Net.input_names()/output_names()``); the
    Input layer's size from the text (see ``_input_shape``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ncnn .param not found")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != PARAM_MAGIC:
        raise ValueError(f"{path}: not a text ncnn .param (first line must be {PARAM_MAGIC})")
    net = ncnn.Net()
    try:
        if net.load_param(str(path)) != 0:
            raise ValueError(f"{path}: ncnn {ncnn.__version__} cannot load this .param")
        inputs, outputs = list(net.input_names()), list(net.output_names())
        n_layers, n_blobs = len(net.layers()), len(net.blobs())
    finally:
        net.clear()
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected one Input layer, found {len(inputs)}")
    if not outputs:
        raise ValueError(f"{path}: no output blob (every produced blob is consumed)")
    return ParamGraph(inputs[0], outputs, _input_shape(path, lines), n_layers, n_blobs)


def _engine_metadata(path: Path) -> dict:
    """``imgsz`` and ``names`` from the engine's metadata.yaml, without a YAML library (its plain dump layout)."""
    meta, key = {"names": {}, "imgsz": []}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^(\w+):\s*(.*)$", line):
            key, value = m.groups()
            if key == "imgsz" and value.startswith("["):
                meta["imgsz"] = [int(v) for v in re.findall(r"\d+", value)]
        elif key == "imgsz" and (m := re.match(r"^-\s*(\d+)", line.strip())):
            meta["imgsz"].append(int(m.group(1)))
        elif key == "names" and (m := re.match(r"^\s+'?(\d+)'?:\s*(.*)$", line)):
            meta["names"][int(m.group(1))] = m.group(2).strip().strip("'\"")
    names = [meta["names"][i] for i in sorted(meta["names"])]
    if len(meta["imgsz"]) != 2 or not names:
        raise ValueError(
            f"{path}: could not read imgsz and names; export with lwdet's export.py (writes {EXPORT_META})"
        )
    return {"names": names, "imgsz": meta["imgsz"]}


def read_export_meta(folder: str | Path) -> ExportMeta:
    """An export folder's ``ExportMeta``: its lwdet.json, else (an export by the engine itself) built from the
    engine's metadata.yaml and the blob names ncnn reads from the .param."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: ncnn export folder not found")
    for f in (NCNN_PARAM, NCNN_BIN):
        if not (folder / f).is_file():
            raise FileNotFoundError(f"{folder}: no {f}; is this an ncnn export folder (<stem>{NCNN_SUFFIX}/)?")
    if (folder / EXPORT_META).is_file():
        return ExportMeta.load(folder)
    if not (folder / ENGINE_META).is_file():
        raise FileNotFoundError(
            f"{folder}: neither {EXPORT_META} nor {ENGINE_META}; cannot tell the classes and input size"
        )
    meta = _engine_metadata(folder / ENGINE_META)
    graph = parse_param(folder / NCNN_PARAM)
    if len(graph.outputs) != 1:
        raise ValueError(f"{folder / NCNN_PARAM}: expected one output blob, found {graph.outputs}")
    h, w = meta["imgsz"]
    return ExportMeta(
        format="ncnn",
        model=folder.name.removesuffix(NCNN_SUFFIX),
        names=meta["names"],
        imgsz=[h, w],
        input=Blob(graph.input, [1, 3, h, w], INPUT_LAYOUT),
        output=Blob(graph.outputs[0], [], OUTPUT_LAYOUT),
    )


class _NcnnNet:
    """A loaded ncnn Net plus the blob names to feed and fetch; a fresh extractor per run, as benchncnn."""

    input_name: str
    output_names: list[str]

    def __init__(self, param: Path, weights: Path | None, threads: int, fp16: bool | None):
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self.net = ncnn.Net()
        opt = self.net.opt
        opt.num_threads = threads
        opt.lightmode = True
        if fp16 is not None:  # None keeps ncnn's choice: fp16 storage/arithmetic where the CPU has it (ARMv8.2)
            opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = fp16
        if self.net.load_param(str(param)) != 0:
            raise RuntimeError(f"{param}: ncnn could not load this .param")
        ret = self.net.load_model(str(weights)) if weights else self.net.load_model(ncnn.DataReaderFromEmpty())
        if ret != 0:
            raise RuntimeError(f"{weights}: ncnn could not load these weights (do they match {param.name}?)")
        known = {b.name for b in self.net.blobs()}
        unknown = [b for b in (self.input_name, *self.output_names) if b not in known]
        if unknown:  # extracting an unknown blob crashes ncnn; fail here instead
            raise ValueError(f"{param}: blob(s) {unknown} not in the graph; known outputs: {self.net.output_names()}")

    def run(self, mat, fetch: bool = True) -> list[np.ndarray] | None:
        """One inference on an ncnn Mat; returns the outputs as numpy arrays (copies), or None when not ``fetch``."""
        outs = []
        with self.net.create_extractor() as ex:
            ex.input(self.input_name, mat)
            for name in self.output_names:
                ret, out = ex.extract(name)
                if ret != 0:
                    raise RuntimeError(f"ncnn failed to compute blob {name!r} (code {ret})")
                if fetch:
                    outs.append(np.array(out))
                del out
        return outs if fetch else None

    def close(self) -> None:
        self.net.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NcnnDetector(_NcnnNet):
    """An lwdet ncnn export: ``infer`` (raw (4 + nc, N) output) and ``detect`` (boxes in the original image)."""

    def __init__(
        self,
        folder: str | Path,
        threads: int = 1,
        conf: float = CONF,
        iou: float = IOU,
        max_det: int = MAX_DET,
        fp16: bool | None = None,
    ):
        """``fp16``: True / False set ncnn's fp16 storage, packing and arithmetic; None the board's default."""
        self.folder = Path(folder)
        self.meta = read_export_meta(self.folder)
        self.names: list[str] = self.meta.names
        self.imgsz: tuple[int, int] = tuple(self.meta.imgsz)  # (h, w)
        self.strides: list[int] = list(self.meta.strides)
        self.input_name, self.output_names = self.meta.input.blob, [self.meta.output.blob]
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.files = {"param": self.folder / NCNN_PARAM, "bin": self.folder / NCNN_BIN}
        # None: the board's default (lwdet.edge.boards: by the mAP recorded for this board, else ncnn's defaults)
        self.fp16, self.fp16_why = fp16, "asked for"
        if fp16 is None:
            choice = board_default(self.meta.board_numerics, cpu_part(), on_arm())
            if not choice.checked:
                LOGGER.warning("%s: %s", self.folder.name, choice.why)
            elif choice.fp16 is not None:  # a board with a record: say what it chose (off ARM: nothing to say)
                LOGGER.info("%s: %s", self.folder.name, choice.why)
            self.fp16, self.fp16_why = choice.fp16, choice.why
        super().__init__(self.files["param"], self.files["bin"], threads, self.fp16)
        h, w = self.imgsz
        self.num_anchors = sum((h // s) * (w // s) for s in self.strides)

    @property
    def name(self) -> str:
        return self.meta.model

    def to_mat(self, x: np.ndarray):
        """(3, H, W) or (1, 3, H, W) float32 -> ncnn Mat (sharing memory: keep ``x`` alive while it is used)."""
        x = x[0] if x.ndim == 4 else x
        if x.shape != (3, *self.imgsz):
            raise ValueError(
                f"{self.name}: input must be (3, {self.imgsz[0]}, {self.imgsz[1]}), got {x.shape}; "
                f"the export's input size is fixed"
            )
        return ncnn.Mat(np.ascontiguousarray(x, dtype=np.float32))

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Raw head output (4 + nc, N) for a preprocessed (3, H, W) input."""
        x = np.ascontiguousarray(x[0] if x.ndim == 4 else x, dtype=np.float32)
        out = self.run(self.to_mat(x))[0]
        expected = (4 + len(self.names), self.num_anchors)
        if out.shape != expected:
            raise RuntimeError(
                f"{self.name}: output shape {out.shape}, expected {expected} for imgsz {self.imgsz} "
                f"and strides {self.strides}; the export folder's {EXPORT_META} does not match its graph"
            )
        return out

    def predict(
        self,
        image_bgr: np.ndarray,
        conf: float | None = None,
        iou: float | None = None,
        max_det: int | None = None,
        classes: list[int] | None = None,
    ) -> np.ndarray:
        """(n, 6) rows x1, y1, x2, y2, score, class_id in the image's pixels, best first."""
        x, lb = preprocess(image_bgr, self.imgsz)
        return postprocess(
            self.infer(x),
            lb,
            self.conf if conf is None else conf,
            self.iou if iou is None else iou,
            self.max_det if max_det is None else max_det,
            classes,
        )

    def detect(self, image_bgr: np.ndarray, **kwargs) -> list[Detection]:
        """Detections in a BGR image: (xyxy, score, class_id, class_name), best first."""
        return [
            Detection(tuple(float(v) for v in d[:4]), float(d[4]), int(d[5]), self.names[int(d[5])])
            for d in self.predict(image_bgr, **kwargs)
        ]


class NcnnParamNet(_NcnnNet):
    """A bare .param with empty weights, as benchncnn times it: every output extracted from a 0.01-filled input."""

    def __init__(
        self,
        param: str | Path,
        input_shape: tuple[int, int, int] | None = None,
        threads: int = 1,
        fp16: bool | None = None,
    ):
        self.param = Path(param)
        self.graph = parse_param(self.param)
        shape = input_shape or self.graph.input_shape
        if shape is None:
            raise ValueError(f"{self.param}: its Input layer states no size; give the input shape as w,h,c")
        self.input_shape: tuple[int, int, int] = tuple(int(v) for v in shape)  # (w, h, c), ncnn's Mat order
        self.input_name, self.output_names = self.graph.input, list(self.graph.outputs)
        self.files = {"param": self.param}
        super().__init__(self.param, None, threads, fp16)

    @property
    def name(self) -> str:
        return self.param.stem

    def input_mat(self):
        mat = ncnn.Mat(*self.input_shape)
        mat.fill(FILL)
        return mat

    def infer(self, mat=None) -> list[np.ndarray]:
        """Every output for one run (weights are zeros, so values carry no meaning; shapes do)."""
        return self.run(self.input_mat() if mat is None else mat)
