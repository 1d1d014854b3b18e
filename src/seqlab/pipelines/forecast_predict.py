"""Forecasts as tables: `Forecaster.predict` and the series a forecaster reads (its training series, or
another file or Python data with the same columns). `PredictMixin` is a part of
`seqlab.pipelines.forecast.Forecaster` and uses its forecast, data, series and horizon.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from seqlab.data.timeseries import TimeSeries
from seqlab.errors import UserError
from seqlab.forecast.backtest import Forecasts
from seqlab.forecast.conformal import parse_quantiles, quantile_name
from seqlab.forecast.series import READ_KEYS, load_series, series_from_object

LEVELS = (0.8, 0.95)


class PredictMixin:
    """Forecaster.predict, rows, series_for and training_series."""

    def training_series(self) -> TimeSeries:
        """The series this model was trained on: stored in the checkpoint, or (checkpoints written before
        that) re-read from the file named in its data settings."""
        if self.series is None:
            self.series = load_series({k: self.data.get(k) for k in READ_KEYS})
        return self.series

    def series_for(self, series=None) -> tuple[TimeSeries, bool]:
        """(the series to forecast, whether it is the training series): the training one when `series` is
        None; else a path or Python data read with the training settings, checked to have its columns."""
        if series is None:
            return self.training_series(), True
        d = {k: self.data.get(k) for k in READ_KEYS}
        if isinstance(series, (str, Path)):
            d["data"] = str(series)
            s = load_series(d)
        else:
            s = series_from_object(series, d, self.data.get("freq"))
        if s.targets != self.data["targets"] or s.covariate_names != self.data["covariates"]:
            raise UserError(f"{s.source} has columns {s.targets + s.covariate_names}, but the model was trained "
                            f"on {self.data['targets'] + self.data['covariates']}")
        return s, isinstance(series, (str, Path)) and str(series) == self.data["data"]

    def rows(self, s: TimeSeries, origin: int, fc: Forecasts, horizon: int | None = None, labels: bool = True) \
            -> list[dict]:
        """One record per step and target of the forecast `fc` (from one origin): time, target, forecast,
        lo80, hi80, lo95, hi95, the quantiles fc holds (q10, q50, q90, ...) and, where the series has it, the
        actual value."""
        H = self.horizon if horizon is None else horizon
        times = [s.label(origin + i) for i in range(H)] if labels else list(s.times(origin, H))
        known = min(H, s.n - origin)
        rows = []
        for i in range(H):
            for j, name in enumerate(s.targets):
                r = {"time": times[i], "target": name, "forecast": float(fc.mean[0, i, j])}
                for lv, (lo, hi) in sorted(fc.intervals.items()):
                    r[f"lo{round(lv * 100)}"], r[f"hi{round(lv * 100)}"] = float(lo[0, i, j]), float(hi[0, i, j])
                for tau, q in sorted(fc.quantiles.items()):
                    r[quantile_name(tau)] = float(q[0, i, j])
                if i < known:
                    r["actual"] = float(s.values[origin + i, j])
                rows.append(r)
        return rows

    def predict(self, horizon: int | None = None, series=None, origin=None, levels=LEVELS,
                quantiles=()) -> pd.DataFrame:
        """Forecast the next `horizon` steps (at most the trained horizon; default all of it) after the end
        of the training series (or of `series`: a path or Python data with the same columns), or from
        `origin` (a time, or a step number without times) using only the history before it.

        A DataFrame, one row per step and target: time, target, forecast, lo80, hi80, lo95, hi95 (conformal
        or Gaussian intervals), a column per quantile level in `quantiles` (e.g. (0.1, 0.5, 0.9): q10, q50,
        q90) and actual where the series has it."""
        if horizon is None:
            horizon = self.horizon
        if not 1 <= int(horizon) <= self.horizon:
            raise UserError(f"horizon {horizon}: this model forecasts 1 to {self.horizon} steps at once; "
                            f"retrain with horizon={horizon} for more")
        s, _ = self.series_for(series)
        at = s.n if origin is None else s.locate(str(origin))
        fc = self.forecast(s, np.array([at]), levels, quantiles=parse_quantiles(quantiles))
        return pd.DataFrame(self.rows(s, at, fc, int(horizon), labels=False))
