"""Classical multiplicative seasonal indices, as the M3 competition's methods (Theta among them) use
them: a series is divided by its indices before it is forecast and the forecast multiplied back.

    idx = seasonal_indices(y, 12)       # (12,): mean 1; all ones when the series shows no season
    y / idx[np.arange(len(y)) % 12]     # position k of the season is step k, 12 + k, ... of the series

A series counts as seasonal when its autocorrelation at the seasonal lag is significant at 90%
(|r_m| > 1.645 * sqrt((1 + 2 * sum_{k<m} r_k^2) / n)), it has at least three seasons and it is
positive; the indices are the mean ratios of the series to its centred moving average.
"""

from __future__ import annotations

import numpy as np


def is_seasonal(y: np.ndarray, m: int) -> bool:
    """The 90% autocorrelation test at lag m (and at least 3 seasons of positive values)."""
    n = len(y)
    if m < 2 or n < 3 * m or (y <= 0).any():
        return False
    yc = y - y.mean()
    den = float((yc**2).sum())
    if den <= 0:
        return False
    r = np.array([(yc[k:] * yc[:-k]).sum() / den for k in range(1, m + 1)])
    return bool(abs(r[-1]) > 1.645 * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / n))


def seasonal_indices(y: np.ndarray, m: int) -> np.ndarray:
    """(m,) multiplicative indices of y (time,), mean 1; ones when y is not seasonal (see is_seasonal)."""
    y = np.asarray(y, dtype=np.float64)
    if not is_seasonal(y, m):
        return np.ones(max(m, 1))
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    cma = np.convolve(y, w, mode="valid")
    off = (len(w) - 1) // 2
    ratio = y[off : off + len(cma)] / cma
    pos = np.arange(off, off + len(cma)) % m
    idx = np.bincount(pos, ratio, minlength=m) / np.maximum(np.bincount(pos, minlength=m), 1)
    idx = np.where(idx > 0, idx, 1.0)
    return idx / idx.mean()


def factors(indices: np.ndarray, series: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """indices (series, m) -> the factor of each (series[i], steps[i, j]): shape of steps."""
    m = indices.shape[1]
    return indices[series.reshape(-1, *([1] * (steps.ndim - 1))), steps % m]
