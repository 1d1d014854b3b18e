"""Forecast combination: the network's forecast averaged with classical models fitted on the same history.

Averaging forecasts of different kinds is the most reliable gain in the forecasting competitions (M3,
M4: the winners combined or hybridised statistical and learned models). On short series, where one
recurrent network sees few windows, seqlab averages its forecast with ETS, ARIMA and Theta (statsmodels,
refitted at every origin on the steps before it, exactly as the baselines of a backtest) by default:

    combined = (rnn + ets + arima + theta) / 4     in the model's scaled units (log units for a log series)

less the classical model that forecast worst over the last VALIDATION_HORIZONS horizons of the training
part (each refitted on the steps before its origin, as in the backtest): pooling the better models
instead of all of them (Kourentzes, Barrow & Petropoulos 2019, "Another look at forecast selection and
combination") kept the average on the series that one model misfits (Theta on a quarterly trend, ARIMA
on a short monthly series), where the equal average followed it.

    parse(value)                       "ets,arima,theta" -> ("ets", "arima", "theta"); "none" -> ()
    choose(value, steps, ...)          the default: below COMBINE_BELOW training steps, when statsmodels
                                       is installed, the two of the three with the lowest validation error
                                       (all three when the training part holds under 2 validation
                                       horizons); () otherwise (and why)
    validation_errors(values, ...)     each method's MAE on the last horizons of the training part
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
VALIDATION_HORIZONS = 6  # the last horizons of the training part that rank the classical models
NAMES = {"ets": "ETS", "arima": "ARIMA", "theta": "Theta"}


def parse(value: str | None) -> tuple[str, ...] | None:
    """None (choose from the data), () for 'none', or the named methods (any of CLASSICAL)."""
    if value is None or value == "auto":
        return None
    names = tuple(v for v in value.replace(" ", "").split(",") if v and v != "none")
    bad = [n for n in names if n not in CLASSICAL]
    if bad:
        raise UserError(f"--combine: unknown method {bad[0]!r}; give some of {','.join(CLASSICAL)}, or none")
    return names


def choose(value: str | None, steps: int, values: np.ndarray | None = None, horizon: int = 1, season: int = 1,
           log: bool = False) -> tuple[tuple[str, ...], str]:
    """(methods, reason) for the combination setting `value` on a training part of `steps` steps; with the
    training part's `values` (time, targets), the default keeps the two methods of lowest validation error."""
    given = parse(value)
    if given is not None:
        return given, (f"combined with {', '.join(given)}" if given else "the network alone")
    if steps >= COMBINE_BELOW:
        return (), f"the network alone ({steps} training steps)"
    if importlib.util.find_spec("statsmodels") is None:
        return (), "the network alone (pip install statsmodels to combine it with ETS, ARIMA and Theta)"
    errors = validation_errors(values, horizon, season, log) if values is not None else {}
    if not errors:
        return CLASSICAL, f"combined with ETS, ARIMA and Theta ({steps} training steps)"
    kept = tuple(sorted(CLASSICAL, key=lambda m: (errors[m], CLASSICAL.index(m)))[:2])
    kept = tuple(m for m in CLASSICAL if m in kept)
    scores = ", ".join(f"{NAMES[m]} {errors[m]:.3g}" for m in CLASSICAL)
    return kept, (f"combined with {' and '.join(NAMES[m] for m in kept)} ({steps} training steps; the two of "
                  f"three with the lowest MAE on the training part's last horizons: {scores})")


def validation_errors(values: np.ndarray, horizon: int, season: int, log: bool) -> dict[str, float]:
    """{method: mean absolute error} of each classical method refitted at the origins len - k * horizon
    (k = 1 .. VALIDATION_HORIZONS) of the training part `values` (time, targets), each forecasting the
    horizon after it; {} when fewer than 2 such origins leave 2 seasons (and 10 steps) of history before
    them. A method whose forecasts are not finite scores infinity."""
    n = len(values)
    earliest = max(2 * max(season, 1) + 2, 10)
    origins = np.array([n - k * horizon for k in range(VALIDATION_HORIZONS, 0, -1) if n - k * horizon >= earliest])
    if len(origins) < 2:
        return {}
    y = values[origins[:, None] + np.arange(horizon)[None, :]]  # (origins, horizon, targets)
    out = {}
    for m, f in zip(CLASSICAL, classical(values, origins, horizon, season, log, CLASSICAL)):
        err = np.abs(f - y)
        out[m] = float(err.mean()) if np.isfinite(err).all() else float("inf")
    return out


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
