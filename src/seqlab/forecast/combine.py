"""Forecast combination: the network's forecast pooled with classical models fitted on the same history.

Combining forecasts of different kinds is the most reliable gain in the forecasting competitions (M3,
M4: the winners combined or hybridised statistical and learned models). On short series, where one
recurrent network sees few windows, seqlab pools its forecast with ETS, ARIMA and Theta (statsmodels,
refitted at every origin on the steps before it, exactly as the baselines of a backtest) by default:

    combined = median(rnn, ets, arima, theta)      in the model's scaled units (log units for a log series)

the mean of the middle two of the four, at every point. The median keeps the network where it is
between the classical forecasts and discards it (or the one classical model) where it runs away
(a network that extrapolates a short trend, Theta on a quarterly trend): on 210 M3 series that no
setting was tuned on (benchmarks/combine_rules.py, two random samples of 105) it gave a geometric mean
MASE / seasonal naive of 0.885 and 0.749, against 0.915 and 0.789 for the earlier rule (the mean of the
network and the two classical models of lowest error on the training part's last horizons, kept as
rule="mean" with `validation_errors` for the benchmarks that reproduce its figures) and 0.896 / 0.769 for
ETS alone. A data["combine_rule"] absent from a checkpoint means the earlier "mean".

    parse(value)                       "ets,arima,theta" -> ("ets", "arima", "theta"); "none" -> ()
    choose(value, steps)               the default: below COMBINE_BELOW training steps, when statsmodels
                                       is installed, all three; () otherwise (and why)
    validation_errors(values, ...)     each method's MAE on the last horizons of the training part
    classical(values, origins, ...)    (methods, origins, horizon, targets) forecasts in the series' units
    pool(mean, other, scaler, rule)    the median (or mean) in scaled units, skipping a member where its
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


def choose(value: str | None, steps: int) -> tuple[tuple[str, ...], str]:
    """(methods, reason) for the combination setting `value` on a training part of `steps` steps."""
    given = parse(value)
    if given is not None:
        return given, (f"combined with {', '.join(NAMES[m] for m in given)} (the median)" if given
                       else "the network alone")
    if steps >= COMBINE_BELOW:
        return (), f"the network alone ({steps} training steps)"
    if importlib.util.find_spec("statsmodels") is None:
        return (), "the network alone (pip install statsmodels to combine it with ETS, ARIMA and Theta)"
    return CLASSICAL, f"the median of the network, ETS, ARIMA and Theta ({steps} training steps)"


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


def pool(mean: np.ndarray, other: np.ndarray, scaler, rule: str = "median") -> np.ndarray:
    """The network's scaled forecast `mean` (origins, horizon, targets) pooled with the classical forecasts
    `other` (methods, origins, horizon, targets, in the series' units) after `scaler.transform`: their
    median at each point (rule "median"; an even count: the mean of the middle two) or their mean ("mean").
    A classical value that is not finite, or not positive on a log scale (a damped trend run below zero),
    is left out of that point instead of pulling it to log(0)."""
    ok = np.isfinite(other) & ((other > 0) if scaler.log else True)
    z = np.where(ok, scaler.transform(np.where(ok, other, 1.0)), np.nan)
    members = np.concatenate([mean[None], z])
    return np.nanmedian(members, 0) if rule == "median" else np.nanmean(members, 0)
