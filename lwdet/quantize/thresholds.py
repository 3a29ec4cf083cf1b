"""Activation clipping thresholds from a histogram of |x|: KL (entropy calibration), ACIQ (Gaussian clip),
percentile, or the plain maximum. Each returns a threshold T; the blob's int8 scale is 127 / T.

KL follows the entropy calibration of TensorRT (Migacz, "8-bit Inference with TensorRT", GTC 2017) that ncnn2table's
``kl`` method also implements: the threshold whose 128-level quantized histogram diverges least from the clipped one.
ACIQ: Banner et al., "Post training 4-bit quantization of convolutional networks for rapid-deployment" (NeurIPS 2019),
the Gaussian clip for 8 bits.
"""

from __future__ import annotations

import math

import numpy as np

BINS = 2048  # histogram bins over [0, max|x|]; exact zeros are not counted (ReLU outputs would swamp bin 0)
LEVELS = 128  # int8's positive levels (0..127)
METHODS = ("kl", "aciq", "percentile", "max")
PERCENTILE = 99.99
_ACIQ_ALPHA_8BIT = 3.92403714  # the Gaussian clip multiplier for 8 bits (Banner et al., table 1)


KL_EPS = 1e-4  # added to every bin of both distributions (as ncnn2table), so empty bins do not decide alone


def kl_threshold(hist: np.ndarray, width: float, levels: int = LEVELS) -> float:
    """Threshold minimising KL(P || Q): P the normalised histogram clipped at T (outliers folded into its last bin),
    Q the same bins merged into ``levels`` groups and spread back evenly over each group; ``KL_EPS`` smooths both."""
    hist = np.asarray(hist, dtype=np.float64)
    n = len(hist)
    if hist.sum() == 0 or n <= levels:
        return width * n
    hist = hist / hist.sum()
    tails = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # tails[t] = sum(hist[t:])
    best, best_t = math.inf, n
    for t in range(levels, n):
        p = hist[:t] + KL_EPS
        p[-1] += tails[t]
        edges = np.linspace(0, t, levels + 1).astype(int)
        lengths = np.diff(edges)
        q = np.repeat(np.add.reduceat(hist[:t], edges[:-1]) / lengths, lengths) + KL_EPS
        d = float(np.sum(p * np.log(p / q)))
        if d < best:
            best, best_t = d, t
    return (best_t + 0.5) * width


def aciq_threshold(absmax: float, elements: int, bits: int = 8) -> float:
    """Banner et al.'s Gaussian clip, the standard deviation estimated from the range of ``elements`` samples."""
    if bits != 8:
        raise ValueError("ACIQ: only 8 bits")
    gaussian_const = (0.5 * 0.35) * (1 + math.sqrt(math.pi * math.log(4)))
    std = (absmax * 2 * gaussian_const) / math.sqrt(2 * math.log(max(elements, 2)))
    return min(absmax, _ACIQ_ALPHA_8BIT * std)


def percentile_threshold(hist: np.ndarray, width: float, pct: float = PERCENTILE) -> float:
    """The upper edge of the bin where the cumulative count reaches ``pct`` percent."""
    c = np.cumsum(np.asarray(hist, dtype=np.float64))
    if c[-1] == 0:
        return width * len(hist)
    i = int(np.searchsorted(c, c[-1] * pct / 100.0))
    return (min(i, len(hist) - 1) + 1) * width


def threshold(method: str, hist: np.ndarray, absmax: float, elements: int) -> float:
    """The clipping threshold of one blob by ``method`` (one of ``METHODS``)."""
    if absmax <= 0:
        return 0.0
    width = absmax / len(hist)
    if method == "kl":
        return kl_threshold(hist, width)
    if method == "aciq":
        return aciq_threshold(absmax, elements)
    if method == "percentile":
        return percentile_threshold(hist, width)
    if method == "max":
        return absmax
    raise ValueError(f"calibration method {method!r}: expected one of {', '.join(METHODS)}")


def scale(t: float) -> float:
    """int8 scale for threshold ``t`` (ncnn's convention: q = round(x * scale)); 1 for an all-zero blob."""
    return 127.0 / t if t > 0 else 1.0
