"""Forecasting defaults chosen from the data, so a series nobody tuned for gets sensible settings.

Every choice reads the training part only (the steps before the test part), is recorded in the run's
config and printed at the start of training; a setting the user gives always wins.

    is_seasonal(y, m)        the M4 / Theta seasonality test on the first differences: their
                             autocorrelation at lag m is significant at 90%
                             (|r_m| > 1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n))
    amplitude_grows(y, m)    positive series whose seasonal swing grows with its level (a log helps)
    season_anchors(y, m, h)  the seasonal naive forecast beats the naive one on the training part (else a
                             trend dominates the season: normalise windows by their last value)
    choose(...)              -> Choices: season, network, log_scale, window_norm, calendar, ensemble, reasons

The network: 'scaled' for a short positive series of one target without covariates (the recipe of
the M3 global model on one series: divided by its classical seasonal indices, each window scaled by
its mean, 3 GRUs, cosine schedule, no dev part; see seqlab.pipelines.forecast), else 'standard'
(standardised series, calendar features, season-aware window norm, early stopping on a dev part).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ENSEMBLE_BELOW = 2000  # training steps under which a deep ensemble of 5 is cheap and steadies the forecast
SCALED_BELOW = 2000  # training steps under which the 'scaled' network is the default
NETWORKS = ("scaled", "standard")


def acf(y: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations r_1 .. r_max_lag of a 1-d series (biased estimator, as statsmodels)."""
    z = np.asarray(y, dtype=float) - np.mean(y)
    denom = float(z @ z)
    if denom == 0:
        return np.zeros(max_lag)
    return np.array([float(z[k:] @ z[:-k]) / denom for k in range(1, max_lag + 1)])


def is_seasonal(y: np.ndarray, m: int) -> bool:
    """The 90% seasonality test of the M4 competition's benchmarks (and statsforecast's Theta), applied
    to the first differences: on the levels, a persistent series (daily temperatures, sunspots) has a
    large autocorrelation at every lag and passes for seasonal at any period. Needs 3 seasons of data."""
    y = np.diff(np.asarray(y, dtype=float))
    if m < 2 or len(y) < 3 * m:
        return False
    r = acf(y, m)
    limit = 1.645 * np.sqrt((1 + 2 * float(np.sum(r[:-1] ** 2))) / len(y))
    return bool(abs(r[-1]) > limit)


def amplitude_grows(y: np.ndarray, m: int) -> bool:
    """True for a positive series whose seasonal swing grows with its level: over full seasons, the
    range of each season rises with its mean (rank correlation >= 0.6) and the level varies by 30% or more.
    Without a season, the same on blocks of 12 steps for a trend whose noise scales with it."""
    y = np.asarray(y, dtype=float)
    if not len(y) or np.min(y) <= 0:
        return False
    block = m if m > 1 else 12
    k = len(y) // block
    if k < 4:
        return False
    blocks = y[len(y) - k * block:].reshape(k, block)
    level, swing = blocks.mean(1), np.ptp(blocks, 1)
    if level.max() < 1.3 * level.min() or np.ptp(swing) == 0:
        return False
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    return bool(np.corrcoef(rank(level), rank(swing))[0, 1] >= 0.6)


def season_anchors(y: np.ndarray, m: int, horizon: int) -> bool:
    """True when the seasonal naive forecast has a smaller absolute error than the naive one over
    `horizon` steps from every origin in the second half of `y` (the training part): the value one
    season back is then the better anchor for season-aware window normalisation."""
    y = np.asarray(y, dtype=float)
    origins = np.arange(max(m, len(y) // 2), len(y) - horizon + 1)
    if m < 2 or not len(origins):
        return m > 1
    steps = np.arange(horizon)
    future = y[origins[:, None] + steps]
    naive = np.abs(future - y[origins - 1][:, None]).sum()
    seasonal = np.abs(future - y[origins[:, None] - m + steps % m]).sum()
    return bool(seasonal <= naive)


@dataclass
class Choices:
    season: int
    network: str
    log_scale: bool
    window_norm: str
    calendar: bool
    ensemble: int
    reasons: list[str] = field(default_factory=list)

    def line(self) -> str:
        return "defaults from the data: " + "; ".join(self.reasons)


def choose_network(train: np.ndarray, plain: bool, window_norm=None, calendar=None) -> tuple[str, str | None]:
    """(network, why): 'scaled' for a `plain` series (one target, no covariates, the direct decoder)
    whose training part is positive and shorter than SCALED_BELOW, unless the window norm or calendar
    features the user set are the standard network's; else 'standard'."""
    if not plain or window_norm not in (None, "last") or calendar:
        return "standard", None
    if len(train) >= SCALED_BELOW:
        return "standard", None
    if not len(train) or np.min(train) <= 0:
        return "standard", "network standard (the series is not positive: windows are not scaled by their mean)"
    return "scaled", (f"network scaled (a short positive series, {len(train)} training steps: the season divided out, "
                      "each window by its mean)")


def choose(train: np.ndarray, season: int, *, log_scale=None, window_norm=None, calendar=None, ensemble=None,
           season_given: bool = False, lookback: int | None = None, horizon: int | None = None,
           network: str | None = None, plain: bool = False) -> Choices:
    """Fill the settings left None from the training part `train` (n,) of the first target.
    `season`: the period from the frequency (or the user's --season when `season_given`); `horizon`
    (when given) lets the window norm check that the season, not the trend, is the better anchor;
    `plain`: one target, no covariates and the direct decoder (what the 'scaled' network forecasts)."""
    reasons = []
    if network is None:
        network, why = choose_network(train, plain, window_norm, calendar)
        if why:
            reasons.append(why)
    if season > 1 and not season_given:
        if not is_seasonal(train, season):
            reasons.append(f"no season (the differences' autocorrelation at lag {season} is not significant)")
            season = 1
        else:
            reasons.append(f"season {season} (significant autocorrelation at lag {season})")
    if log_scale is None:
        log_scale = amplitude_grows(train, season)
        if log_scale:
            reasons.append("log scale (positive, the seasonal swing grows with the level)")
    if network == "scaled":  # the series is deseasonalised, not given calendar features; 3 members
        window_norm = window_norm or "last"
        calendar = bool(calendar)
        if ensemble is None:
            ensemble = 3
            reasons.append("ensemble 3 (the median of 3 GRUs)")
    if window_norm is None:
        window_norm = "season" if season > 1 and (lookback is None or lookback >= season) else "last"
        if window_norm == "season" and horizon and not season_anchors(train, season, horizon):
            window_norm = "last"
            reasons.append("window norm last (on the training part the naive forecast beats the seasonal naive)")
        else:
            reasons.append(f"window norm {window_norm}")
    if calendar is None:
        calendar = season > 1
        if calendar:
            reasons.append("calendar features")
    if ensemble is None:
        ensemble = 5 if len(train) < ENSEMBLE_BELOW else 1
        reasons.append(f"ensemble {ensemble} ({len(train)} training steps)")
    return Choices(season, network, bool(log_scale), window_norm, bool(calendar), int(ensemble), reasons)
