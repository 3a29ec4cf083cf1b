"""An ncnn model as data: the .param's layers and each layer's weight blobs from the .bin, and writing both back.

The layout follows ncnn's developer guide ("param and model file structure") and each layer's ``load_model``: a
weight blob read with type 0 starts with a 4-byte tag (0: float32; 0x01306B47: float16; 0x000D4B38: int8, padded to
4 bytes), a blob read with type 1 is bare float32. Only the layer types below carry weights in lwdet's exports; a
graph with any other weighted layer is refused by name rather than misread.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = "7767517"
TAG_FP32, TAG_FP16, TAG_INT8 = 0, 0x01306B47, 0x000D4B38
QUANTIZABLE = ("Convolution", "ConvolutionDepthWise", "InnerProduct")  # the layers ncnn runs in int8
# layer types without weights in the .bin (everything pnnx writes for lwdet's detectors, and their relatives)
WEIGHTLESS = frozenset(
    "AbsVal BinaryOp Cast Clip Concat Crop Dequantize Dropout ELU Eltwise Exp Flatten GELU HardSigmoid HardSwish "
    "Input Interp LRN Log Mish Noop Packing Padding Permute Pooling Power Quantize ReLU Reduction Requantize Reshape "
    "SELU Sigmoid Slice Softmax Split Squeeze Swish TanH Tile UnaryOp ExpandDims Flip MatMul Einsum Expand "
    "GridSample Fold Unfold CopyTo Shrink Threshold ShuffleChannel PixelShuffle Reorg".split()
)


class GraphError(ValueError):
    """A .param/.bin pair lwdet cannot read or quantize; the message names the file and the layer."""


@dataclass
class Blob:
    """One weight blob as stored: its tag (type-0 blobs) and values as float32, or raw int8 for int8 blobs."""

    values: np.ndarray
    tagged: bool  # type 0 (tagged) or type 1 (bare float32)
    tag: int = TAG_FP32

    def to_bytes(self) -> bytes:
        if not self.tagged:
            return np.ascontiguousarray(self.values, dtype="<f4").tobytes()
        if self.tag == TAG_INT8:
            data = np.ascontiguousarray(self.values, dtype=np.int8).tobytes()
        elif self.tag == TAG_FP16:
            data = np.ascontiguousarray(self.values, dtype="<f2").tobytes()
        else:
            data = np.ascontiguousarray(self.values, dtype="<f4").tobytes()
        return struct.pack("<I", self.tag) + data + b"\0" * (-len(data) % 4)


@dataclass
class Layer:
    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, str]  # ncnn's ``id=value`` pairs as written (arrays keep their ``-23300+id`` form)
    blobs: list[Blob] = field(default_factory=list)

    def int_param(self, key: int, default: int = 0) -> int:
        return int(self.params.get(str(key), default))

    @property
    def quantized(self) -> bool:
        return self.type in QUANTIZABLE and self.int_param(8) != 0

    def line(self) -> str:
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        io = " ".join([*self.bottoms, *self.tops])
        return f"{self.type:<24} {self.name:<24} {len(self.bottoms)} {len(self.tops)} {io}" + (
            f" {params}" if params else ""
        )


@dataclass
class Graph:
    layers: list[Layer]
    blob_count: int

    def by_name(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def quantizable(self) -> list[Layer]:
        """Layers ncnn can run in int8, with static weights, in graph order."""
        return [lay for lay in self.layers if lay.type in QUANTIZABLE and lay.int_param(19) == 0]

    def write(self, param: str | Path, model: str | Path) -> None:
        lines = [MAGIC, f"{len(self.layers)} {self.blob_count}", *(lay.line() for lay in self.layers)]
        Path(param).write_text("\n".join(lines) + "\n", encoding="utf-8")
        with open(model, "wb") as f:
            for lay in self.layers:
                for b in lay.blobs:
                    f.write(b.to_bytes())


def _blob_sizes(lay: Layer, where: str) -> list[tuple[int, bool]]:
    """(elements, tagged) of every weight blob ``lay`` reads, in ncnn's ``load_model`` order."""
    p = lay.int_param
    if lay.type in ("Convolution", "ConvolutionDepthWise", "InnerProduct"):
        if p(19):  # dynamic weight: given as a second input, nothing in the .bin
            return []
        wsize, bias = (p(6), p(5)) if lay.type != "InnerProduct" else (p(2), p(1))
        sizes = [(wsize, True)] + ([(p(0), False)] if bias else [])
        if lay.quantized:
            raise GraphError(
                f"{where}: layer {lay.name} ({lay.type}) is int8 already (8={p(8)}); quantize an fp32 export"
            )
        return sizes
    if lay.type == "MemoryData":
        dims = [d for d in (p(0), p(1), p(11), p(2)) if d]
        return [(int(np.prod(dims)), False)] if dims else []
    if lay.type in WEIGHTLESS:
        return []
    raise GraphError(f"{where}: layer {lay.name} is a {lay.type}, whose weights lwdet cannot read (known: "
                     f"{', '.join(QUANTIZABLE)}, MemoryData and weightless layers)")  # fmt: skip


def _read_blob(buf: memoryview, pos: int, n: int, tagged: bool, where: str) -> tuple[Blob, int]:
    if not tagged:
        return Blob(np.frombuffer(buf, "<f4", n, pos).astype(np.float32), False), pos + 4 * n
    (tag,) = struct.unpack_from("<I", buf, pos)
    pos += 4
    if tag == TAG_FP32:
        return Blob(np.frombuffer(buf, "<f4", n, pos).astype(np.float32), True, TAG_FP32), pos + 4 * n
    if tag == TAG_FP16:
        size = 2 * n + (-2 * n) % 4
        return Blob(np.frombuffer(buf, "<f2", n, pos).astype(np.float32), True, TAG_FP16), pos + size
    if tag == TAG_INT8:
        raise GraphError(f"{where}: int8 weights at byte {pos - 4}; quantize an fp32 export")
    raise GraphError(f"{where}: weight tag {tag:#010x} at byte {pos - 4} is not float32 or float16")


def read_graph(param: str | Path, model: str | Path) -> Graph:
    """Parse a text .param and walk its .bin (values as float32; a blob keeps its storage tag for writing back)."""
    param, model = Path(param), Path(model)
    lines = [ln for ln in param.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines or lines[0].strip() != MAGIC:
        raise GraphError(f"{param}: not a text ncnn .param (first line must be {MAGIC})")
    n_layers, n_blobs = (int(v) for v in lines[1].split()[:2])
    layers = []
    for i, ln in enumerate(lines[2:], start=3):
        tok = ln.split()
        nb, nt = int(tok[2]), int(tok[3])
        io = tok[4 : 4 + nb + nt]
        params = dict(t.split("=", 1) for t in tok[4 + nb + nt :])
        layers.append(Layer(tok[0], tok[1], io[:nb], io[nb:], params))
        if len(io) != nb + nt:
            raise GraphError(f"{param} line {i}: layer {tok[1]} lists fewer blobs than it declares")
    if len(layers) != n_layers:
        raise GraphError(f"{param}: header says {n_layers} layers, found {len(layers)}")
    buf = memoryview(model.read_bytes())
    pos = 0
    for lay in layers:
        where = f"{model} (layer {lay.name})"
        for n, tagged in _blob_sizes(lay, f"{param}"):
            try:
                blob, pos = _read_blob(buf, pos, n, tagged, where)
            except (ValueError, struct.error):  # numpy / struct: fewer bytes left than the layer reads
                raise GraphError(f"{where}: the .bin ends at byte {len(buf)}; it does not match {param.name}") from None
            lay.blobs.append(blob)
    if pos != len(buf):
        raise GraphError(f"{model}: {len(buf) - pos} bytes left after the last layer; it does not match {param.name}")
    return Graph(layers, n_blobs)
