"""Forecast combination: the network's forecast averaged with classical models fitted on the same history.

Averaging forecasts of different kinds is the most reliable gain in the forecasting competitions (M3,
M4: the winners combined or hybridised statistical and learned models). On short series, where one
recurrent network sees few windows, seqlab averages its forecast with ETS, ARIMA and Theta (statsmodels,
refitted at every origin on the steps before it, exactly as the baselines of a backtest) by default:

    combined = (rnn + ets + arima + theta) / 4     in the model's scaled units (log units for a log series)

    parse(value)                       "ets,arima,theta" -> ("ets", "arima", "theta"); "none" -> ()
    choose(value, steps)               the default: the three below COMBINE_BELOW training steps, when
                                       statsmodels is installed; () otherwise (and why)
    classical(values, origins, ...)    (methods, origins, horizon, targets) forecasts in the series' units
    average(mean, other, scaler)       the equal-weight average in scaled units, skipping a member where its
                                       forecast is not finite or, for a log series, not positive
"""

from __future__ import annotations

import importlib.util

import numpy as np

from seqlab.errors import UserError

COMBINE_BELOW = 2000  # training steps under which the classical fits are cheap and the network needs the help
CLASSICAL = ("ets", "arima", "theta")
MAX_CALIBRATION_ORIGINS = 12  # per conformal fold when combining: the classical models refit at each origin


def parse(value: str | None) -> tuple[str, ...] | None:
    """None (choose from the data), () for 'none', or the named methods (any of CLASSICAL)."""
    if value is None or value == "auto":
        return None
    names = tuple(v for v in value.replace(" ", "").split(",") if v and v != "none")
    bad = [n for n in names if n not in CLASSICAL]
    if bad:
        raise UserError(f"--combine: unknown method {bad[0]!r}; give some of {','.join(CLASSICAL)}, or none")
    return names


def choose(value: str | None, steps: int) -> tuple[tuple[str, ...], str]:
    """(methods, reason) for the combination setting `value` on a training part of `steps` steps."""
    given = parse(value)
    if given is not None:
        return given, (f"combined with {', '.join(given)}" if given else "the network alone")
    if steps >= COMBINE_BELOW:
        return (), f"the network alone ({steps} training steps)"
    if importlib.util.find_spec("statsmodels") is None:
        return (), "the network alone (pip install statsmodels to combine it with ETS, ARIMA and Theta)"
    return CLASSICAL, f"combined with ETS, ARIMA and Theta ({steps} training steps)"


def classical(values: np.ndarray, origins: np.ndarray, horizon: int, season: int, log: bool,
              methods: tuple[str, ...]) -> np.ndarray:
    """(len(methods), origins, horizon, targets) forecasts of each method, refitted at every origin on
    values[:origin] (time, targets)."""
    from seqlab.forecast.backtest import baseline_forecasts

    return np.stack([baseline_forecasts(m, values, origins, horizon, season, log).mean for m in methods])


def average(mean: np.ndarray, other: np.ndarray, scaler) -> np.ndarray:
    """The network's scaled forecast `mean` (origins, horizon, targets) averaged with the classical forecasts
    `other` (methods, origins, horizon, targets, in the series' units) after `scaler.transform`. A classical
    value that is not finite, or not positive on a log scale (a damped trend run below zero), is left out of
    that point's average instead of pulling it to log(0)."""
    ok = np.isfinite(other) & ((other > 0) if scaler.log else True)
    z = np.where(ok, scaler.transform(np.where(ok, other, 1.0)), np.nan)
    return np.nanmean(np.concatenate([mean[None], z]), 0)
