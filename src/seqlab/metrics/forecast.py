"""Point and interval accuracy of forecasts.

All functions take arrays of the same shape, e.g. (origins, horizon, targets), and pool every value.
MASE divides the mean absolute error by `scale`: the in-sample mean absolute error of the seasonal
naive forecast (lag = season, or 1 for non-seasonal series) on the training part, one per target
column (Hyndman & Koehler 2006). Below 1 means better than that naive forecast did in-sample.
"""

from __future__ import annotations

import numpy as np


def mae(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.mean(np.abs(y - f)))


def rmse(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - f) ** 2)))


def mape(y: np.ndarray, f: np.ndarray) -> float:
    """Mean absolute percentage error in %; NaN when a true value is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(100 * np.mean(np.abs(y - f) / np.abs(y))) if (y != 0).all() else float("nan")


def smape(y: np.ndarray, f: np.ndarray) -> float:
    """Symmetric MAPE in % (0..200), as in the M4 competition; 0/0 counts as 0."""
    den = np.abs(y) + np.abs(f)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 0, 2 * np.abs(y - f) / den, 0.0)
    return float(100 * np.mean(r))


def mase_scale(train: np.ndarray, season: int) -> np.ndarray:
    """(targets,) in-sample MAE of the seasonal naive forecast on train (time, targets); lag 1 when the
    training part is shorter than two seasons."""
    m = season if season > 1 and len(train) > 2 * season else 1
    scale = np.mean(np.abs(train[m:] - train[:-m]), 0)
    return np.where(scale > 0, scale, 1.0)


def mase(y: np.ndarray, f: np.ndarray, scale: np.ndarray) -> float:
    """Mean absolute scaled error; `scale` (targets,) broadcasts over the last axis."""
    return float(np.mean(np.abs(y - f) / scale))


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of true values inside [lo, hi]."""
    return float(np.mean((y >= lo) & (y <= hi)))


def point_metrics(y: np.ndarray, f: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    return {"mae": mae(y, f), "rmse": rmse(y, f), "smape": smape(y, f), "mape": mape(y, f),
            "mase": mase(y, f, scale)}
