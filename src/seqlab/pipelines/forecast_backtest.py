"""The rolling-origin backtest of a Forecaster: `backtest` (what `seqlab forecast eval` prints) and `evaluate`.

Origins lie inside the test part of the training series (the steps the training never saw); the model and
the baselines (naive, seasonal naive and, on request, ETS, ARIMA, Theta) forecast from each, the
baselines refitted at every origin (seqlab.forecast.backtest). `BacktestMixin` is a part of
`seqlab.pipelines.forecast.Forecaster` and uses its series_for, forecast, scaler, conformal and data.
"""

from __future__ import annotations

from seqlab.errors import UserError
from seqlab.forecast.backtest import backtest as run_backtest
from seqlab.forecast.backtest import rolling_origins
from seqlab.forecast.baselines import BASELINES, FUNCTIONS
from seqlab.metrics.forecast import mase_scale

DEFAULT_ORIGINS = 5  # forecast origins of a default backtest (fewer where the test part holds fewer)


class BacktestMixin:
    """Forecaster.backtest and Forecaster.evaluate."""

    def backtest(self, series=None, backtest: int | None = None, stride: int | None = None, start=None,
                 baselines=BASELINES, last_point: bool = False) -> dict:
        """Rolling-origin backtest (what `seqlab forecast eval` prints): the run's facts and
        {"results": {"rnn": metrics, baseline: metrics, ...}}. On the training series only origins in its
        test part are allowed; `backtest` None takes as many as fit there (one every `stride` steps), at
        most DEFAULT_ORIGINS, so the default always fits the test part the training chose."""
        s, same = self.series_for(series)
        H, season = self.horizon, self.data["season"]
        stride = stride or H
        earliest = self.data["test_start"] if same else self.lookback
        first = s.locate(str(start)) if start is not None else None
        if backtest is None and first is None:
            backtest = max(1, min(DEFAULT_ORIGINS, (s.n - H - max(earliest, 1)) // stride + 1))
        origins = rolling_origins(s.n, H, backtest, stride, first, earliest, s.label)
        scale = mase_scale(s.values[: self.data["test_start"] if same else int(origins[0])], season)
        methods = [m for m in baselines if m]
        unknown = [m for m in methods if m not in FUNCTIONS]
        if unknown:
            raise UserError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(FUNCTIONS)}")
        res = run_backtest(s.values, origins, H, season, scale, lambda o: self.forecast(s, o), methods,
                          self.scaler.log, last_point)
        return {"data": s.source, "origins": len(origins), "first_origin": s.label(int(origins[0])),
                "last_origin": s.label(int(origins[-1])), "horizon": H, "stride": stride, "season": season,
                "scored": "last point" if last_point else "all steps",
                "intervals": "conformal" if self.conformal is not None else self.model.cfg.likelihood, "results": res}

    def evaluate(self, series=None, backtest: int | None = None, stride: int | None = None, start=None,
                 baselines=("naive", "seasonal_naive"), last_point: bool = False) -> dict:
        """Backtest metrics of the model: mae, rmse, smape, mape, mase (and coverage80/95 of its intervals),
        n, origins, and "baselines": {name: metrics} for `baselines` (any of baselines.FUNCTIONS:
        naive, seasonal_naive, ets, arima, theta; autoets, autoarima, autotheta with statsforecast), all
        refitted at every origin. Default: up to DEFAULT_ORIGINS non-overlapping origins of the test part."""
        r = self.backtest(series, backtest, stride, start, baselines, last_point)
        out = dict(r["results"]["rnn"])
        out["origins"] = r["origins"]
        out["baselines"] = {k: v for k, v in r["results"].items() if k != "rnn"}
        return out
