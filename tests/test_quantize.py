"""lwdet.quantize: ncnn's int8 format written in Python, run by the stock ncnn wheel; thresholds; the keep-float search."""

import numpy as np
import pytest

from lwdet.quantize import (
    FloatNet,
    Graph,
    GraphError,
    Layer,
    blob_scales,
    collect_stats,
    int8_graph,
    keep_float_search,
    rank_layers,
    read_graph,
)
from lwdet.quantize.graph import TAG_FP16, Blob
from lwdet.quantize.thresholds import BINS, threshold


def _conv(name, bottom, top, cin, cout, k=3, dw=False, act=1, rng=None):
    """A Convolution / ConvolutionDepthWise layer with seeded weights and bias, ReLU fused (9=1)."""
    wsize = cout * (1 if dw else cin) * k * k
    params = {"0": str(cout), "1": str(k), "4": str(k // 2), "5": "1", "6": str(wsize), "9": str(act)}
    if dw:
        params["7"] = str(cout)
    w = rng.normal(0, 1 / np.sqrt((1 if dw else cin) * k * k), wsize).astype(np.float32)
    b = rng.normal(0, 0.1, cout).astype(np.float32)
    kind = "ConvolutionDepthWise" if dw else "Convolution"
    return Layer(kind, name, [bottom], [top], params, [Blob(w, True), Blob(b, False)])


def tiny_graph(seed=0, fp16_last=False) -> Graph:
    """in0 (3, 24, 24) -> conv 3x3 -> depthwise 3x3 -> conv 1x1 (no activation) -> out0."""
    rng = np.random.default_rng(seed)
    layers = [
        Layer("Input", "in0", [], ["in0"], {"0": "24", "1": "24", "2": "3"}),
        _conv("conv_0", "in0", "1", 3, 16, rng=rng),
        _conv("convdw_1", "1", "2", 16, 16, dw=True, rng=rng),
        _conv("conv_2", "2", "out0", 16, 8, k=1, act=0, rng=rng),
    ]
    if fp16_last:
        layers[-1].blobs[0] = Blob(layers[-1].blobs[0].values.astype(np.float16).astype(np.float32), True, TAG_FP16)
    return Graph(layers, 4)


def _inputs(n, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.random((3, 24, 24), dtype=np.float32) for _ in range(n)]


def _run(param, model, x):
    net = FloatNet(param, model)
    try:
        return net.run(x, ["out0"])[0]
    finally:
        net.close()


def _scales(g, tmp_path, method="max", n=24):
    g.write(tmp_path / "f.param", tmp_path / "f.bin")
    xs = _inputs(n)
    blobs = sorted({lay.bottoms[0] for lay in g.quantizable()})
    stats = collect_stats(tmp_path / "f.param", tmp_path / "f.bin", list(range(n)), lambda i: xs[i], blobs)
    return blob_scales(g, stats, method)


@pytest.mark.parametrize("fp16_last", [False, True])
def test_graph_round_trips_byte_for_byte(tmp_path, fp16_last):
    g = tiny_graph(fp16_last=fp16_last)
    g.write(tmp_path / "a.param", tmp_path / "a.bin")
    back = read_graph(tmp_path / "a.param", tmp_path / "a.bin")
    back.write(tmp_path / "b.param", tmp_path / "b.bin")
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()
    assert [lay.name for lay in back.quantizable()] == ["conv_0", "convdw_1", "conv_2"]
    assert back.layers[-1].blobs[0].tag == (TAG_FP16 if fp16_last else 0)


def test_int8_model_runs_in_the_stock_wheel_close_to_fp32(tmp_path):
    g = tiny_graph()
    scales = _scales(g, tmp_path)
    q = int8_graph(g, scales)
    q.write(tmp_path / "q.param", tmp_path / "q.bin")
    text = (tmp_path / "q.param").read_text()
    assert " 8=2" in next(ln for ln in text.splitlines() if ln.startswith("Convolution ") and "conv_0" in ln)
    assert " 8=1" in next(ln for ln in text.splitlines() if ln.startswith("ConvolutionDepthWise"))
    assert (tmp_path / "q.bin").stat().st_size < 0.5 * (tmp_path / "f.bin").stat().st_size  # int8 weights
    x = _inputs(1, seed=7)[0]
    ref, out = _run(tmp_path / "f.param", tmp_path / "f.bin", x), _run(tmp_path / "q.param", tmp_path / "q.bin", x)
    rel = np.abs(out - ref).max() / np.abs(ref).max()
    assert 0 < rel < 0.05  # int8 really ran (not bit-identical) and stays within a few percent


def test_a_layer_kept_float_stays_float_in_the_param_and_bin(tmp_path):
    g = tiny_graph()
    q = int8_graph(g, _scales(g, tmp_path), keep_float=["convdw_1"])
    q.write(tmp_path / "q.param", tmp_path / "q.bin")
    lines = (tmp_path / "q.param").read_text().splitlines()
    assert " 8=" not in next(ln for ln in lines if "convdw_1" in ln)
    assert " 8=2" in next(ln for ln in lines if "conv_2" in ln)
    assert q.by_name("convdw_1").blobs == g.by_name("convdw_1").blobs  # same float weights
    assert _run(tmp_path / "q.param", tmp_path / "q.bin", _inputs(1)[0]).shape == (8, 24, 24)


def test_an_int8_graph_is_refused_as_input(tmp_path):
    g = tiny_graph()
    int8_graph(g, _scales(g, tmp_path)).write(tmp_path / "q.param", tmp_path / "q.bin")
    with pytest.raises(GraphError, match="conv_0.*int8 already"):
        read_graph(tmp_path / "q.param", tmp_path / "q.bin")


def test_unknown_weighted_layers_and_short_bins_are_refused_by_name(tmp_path):
    g = tiny_graph()
    g.write(tmp_path / "a.param", tmp_path / "a.bin")
    text = (tmp_path / "a.param").read_text().replace("ConvolutionDepthWise", "BatchNorm           ")
    (tmp_path / "b.param").write_text(text)
    with pytest.raises(GraphError, match="convdw_1 is a BatchNorm"):
        read_graph(tmp_path / "b.param", tmp_path / "a.bin")
    (tmp_path / "short.bin").write_bytes((tmp_path / "a.bin").read_bytes()[:-8])
    with pytest.raises(GraphError, match="conv_2.*does not match"):
        read_graph(tmp_path / "a.param", tmp_path / "short.bin")


def test_thresholds_clip_outliers_except_max():
    rng = np.random.default_rng(0)
    x = np.abs(np.concatenate([rng.normal(0, 1, 200_000), [40.0, -60.0]]))  # a Gaussian and two outliers
    absmax = float(x.max())
    hist, _ = np.histogram(x, bins=BINS, range=(0, absmax))
    t = {m: threshold(m, hist, absmax, x.size) for m in ("kl", "aciq", "percentile", "max")}
    assert t["max"] == absmax
    for m in ("kl", "percentile"):
        assert 2.5 < t[m] < 10, (m, t[m])  # near the Gaussian's tail, far below the outlier at 60
    assert t["aciq"] < absmax  # ACIQ estimates the spread from the range itself: it clips, but outliers move it
    with pytest.raises(ValueError, match="kl, aciq, percentile, max"):
        threshold("mse", hist, absmax, x.size)
    assert threshold("kl", np.zeros(BINS), 0.0, 10) == 0.0  # an all-zero blob: scale 1


def test_keep_float_search_finds_the_fewest_sensitive_layers():
    ranked = ["a", "b", "c", "d", "e", "f"]
    need = {"a", "b", "c"}  # the model recovers once these three are float
    calls = []

    def evaluate(kept):
        calls.append(len(kept))
        return 0.30 if need <= set(kept) else 0.10

    kept, search = keep_float_search(lambda: ranked, evaluate, target=0.29, max_kept=6)
    assert kept == ["a", "b", "c"] and [s.kept for s in search.steps] == calls == [0, 1, 2, 4, 3]
    assert [s.passed for s in search.steps] == [False, False, False, True, True]
    kept, search = keep_float_search(lambda: ranked, evaluate, target=0.29, max_kept=2)
    assert kept is None and search.steps[-1].kept == 2  # refused: three would be needed
    kept, _ = keep_float_search(lambda: pytest.fail("ranked only when needed"), lambda k: 0.3, 0.29, 3)
    assert kept == []


def test_rank_layers_puts_a_badly_scaled_layer_first(tmp_path):
    g = tiny_graph()
    scales = _scales(g, tmp_path)
    scales["convdw_1"] *= 40  # clips its input hard: the worst layer by far
    order = rank_layers(g, scales, _inputs(2), tmp_path, side=24)
    assert order[0][0] == "convdw_1" and order[0][1] > 5 * order[1][1]
