"""Rolling-origin backtests: forecast from many origins, each using only the history before it.

    origins   o_1 < o_2 < ... : each forecast reads steps [0, o) and is scored on [o, o + horizon)
    stride    steps between origins (horizon: windows that do not overlap; 1: every origin)

The trained forecaster is not refitted: it reads the `lookback` steps before each origin. The
baselines are refitted at every origin on all the history before it (their usual, stronger protocol).
`last_point` scores only the horizon-th step of each forecast (darts' last_points_only).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from seqlab.errors import UserError
from seqlab.forecast import baselines
from seqlab.metrics.forecast import coverage, point_metrics


@dataclass
class Forecasts:
    """mean (origins, horizon, targets), intervals {level: (lo, hi)} and quantiles {tau: q} of the same shape."""

    mean: np.ndarray
    intervals: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    quantiles: dict[float, np.ndarray] = field(default_factory=dict)


def rolling_origins(n: int, horizon: int, folds: int | None, stride: int, first: int | None = None,
                    earliest: int = 0, label: Callable[[int], str] = str) -> np.ndarray:
    """Origins for a backtest on a series of n observed steps.

    With `first`: every stride-th origin from `first` while the whole horizon is observed. Otherwise the
    last `folds` origins, the latest ending at the last observed step. Origins before `earliest` (the
    model's training part) are refused: testing there would score data the model was trained on.
    `label` names a step in the error message (e.g. TimeSeries.label)."""
    if stride < 1:
        raise UserError("--stride must be at least 1")
    if first is not None:
        origins = np.arange(first, n - horizon + 1, stride)
    else:
        if folds is None or folds < 1:
            raise UserError("--backtest must be at least 1")
        origins = np.arange(n - horizon - stride * (folds - 1), n - horizon + 1, stride)
    if len(origins) == 0 or origins[0] < max(earliest, 1):
        fit = max(0, (n - horizon - earliest) // stride + 1)
        start = int(origins[0]) if len(origins) else first
        raise UserError(f"the backtest would start at {label(start)}, but the model was trained on the steps "
                        f"before {label(earliest)}; use --backtest {fit} or fewer, a later --start, or train "
                        "with a larger --test")
    return origins


def baseline_forecasts(name: str, values: np.ndarray, origins: np.ndarray, horizon: int, season: int,
                       log: bool = False) -> Forecasts:
    """Refit baseline `name` at every origin on values[:o] (time, targets), column by column."""
    fn = baselines.FUNCTIONS[name]
    d = values.shape[1]
    mean = np.empty((len(origins), horizon, d))
    bands: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for i, o in enumerate(origins):
        for j in range(d):
            kw = {"log": log} if name == "arima" else {}
            m, iv = fn(values[:o, j], horizon, season, **kw)
            mean[i, :, j] = m
            for lv, (lo, hi) in iv.items():
                if lv not in bands:
                    bands[lv] = (np.full(mean.shape, np.nan), np.full(mean.shape, np.nan))
                bands[lv][0][i, :, j], bands[lv][1][i, :, j] = lo, hi
    return Forecasts(mean, bands)


def score(values: np.ndarray, origins: np.ndarray, fc: Forecasts, scale: np.ndarray,
          last_point: bool = False) -> dict[str, float]:
    """Point metrics (and interval coverage) of forecasts against values (time, targets)."""
    horizon = fc.mean.shape[1]
    y = values[origins[:, None] + np.arange(horizon)[None, :]]
    f = fc.mean
    if last_point:
        y, f = y[:, -1:], f[:, -1:]
    out = point_metrics(y, f, scale)
    for lv, (lo, hi) in sorted(fc.intervals.items()):
        if last_point:
            lo, hi = lo[:, -1:], hi[:, -1:]
        if not np.isnan(lo).any():
            out[f"coverage{round(lv * 100)}"] = coverage(y, lo, hi)
    out["n"] = int(y.size)
    return out


def backtest(values: np.ndarray, origins: np.ndarray, horizon: int, season: int, scale: np.ndarray,
             model: Callable[[np.ndarray], Forecasts] | None = None, methods=baselines.BASELINES,
             log: bool = False, last_point: bool = False) -> dict[str, dict]:
    """{method: metrics} for the trained `model` (called once with all origins) and each baseline; each
    with "seconds": the wall time of its forecasts (a baseline's: all its fits, one per origin)."""
    results = {}
    if model is not None:
        t = time.perf_counter()
        fc = model(origins)
        results["rnn"] = {**score(values, origins, fc, scale, last_point), "seconds": time.perf_counter() - t}
    for name in methods:
        t = time.perf_counter()
        fc = baseline_forecasts(name, values, origins, horizon, season, log)
        results[name] = {**score(values, origins, fc, scale, last_point), "seconds": time.perf_counter() - t}
    return results
