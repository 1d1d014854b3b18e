"""Classical baselines every forecaster is measured against, each fitted on the history before an origin.

    naive           the last value, repeated
    seasonal_naive  the value one season earlier (lag `season`; equals naive when season is 1)
    ets             Holt-Winters exponential smoothing (statsmodels): damped additive trend, and additive or
                    multiplicative seasonality chosen by AICc (multiplicative only for positive series)
    arima           seasonal ARIMA(1,1,1)(0,1,1)[m] (the "airline" model) for seasons up to 52; for longer
                    seasons (daily data with a yearly cycle) ARIMA(1,0,1) with a constant and 3 Fourier
                    pairs of the season as regressors; ARIMA(1,1,1) without a season. On log values when
                    the forecaster was trained with --log. Gives 80%/95% intervals.
    theta           the Theta method (Assimakopoulos & Nikolopoulos 2000; the M3 winner): simple exponential
                    smoothing with drift on the series deseasonalised by a classical multiplicative (additive
                    for non-positive series) decomposition when the 90% seasonality test says so (statsmodels'
                    ThetaModel). Gives 80%/95% intervals.
    autoets, autoarima, autotheta   statsforecast's AutoETS, AutoARIMA and AutoTheta (model selection by
                    AICc / the M4 Theta variants), where statsforecast is installed: it pins pandas<3, so it is
                    not a dependency of seqlab; `pip install --no-deps statsforecast==2.1.1 coreforecast
                    utilsforecast` adds it without replacing pandas (its models do not need the rest).

Each function takes history (time,) of one column and returns (mean (horizon,), {level: (lo, hi)}).
A fit that fails (too short, numerically broken) falls back to the seasonal naive forecast.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import warnings
from pathlib import Path

import numpy as np

from seqlab.extras import require

BASELINES = ("naive", "seasonal_naive", "ets", "arima", "theta")  # what `eval` runs by default
STATSFORECAST = ("autoets", "autoarima", "autotheta")  # where statsforecast is installed


@functools.cache
def _openblas_libs() -> list:
    """(get, set) thread-count functions of the OpenBLAS copies numpy and scipy ship (none found: [])."""
    found = []
    for pkg in ("numpy", "scipy"):
        spec = importlib.util.find_spec(pkg)
        libs = Path(spec.origin).parent.parent / f"{pkg}.libs" if spec and spec.origin else None
        for path in sorted(libs.glob("*openblas*.so*")) if libs and libs.is_dir() else []:
            try:
                lib = ctypes.CDLL(str(path))
            except OSError:
                continue
            for suffix in ("64_", "", "_"):
                get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
                put = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
                if get and put:
                    found.append((get, put))
                    break
    return found


def one_blas_thread(fit):
    """Run a statsmodels fit with a single-threaded OpenBLAS. Such fits are many tiny matrix operations,
    and a multi-threaded OpenBLAS spends its time waking threads: on a busy 2-core machine an ARIMA
    fit took 5 s of CPU with 2 threads and 0.05 s with one."""

    @functools.wraps(fit)
    def wrapped(*args, **kw):
        libs = _openblas_libs()
        before = [get() for get, _ in libs]
        for _, put in libs:
            put(1)
        try:
            return fit(*args, **kw)
        finally:
            for (_, put), n in zip(libs, before):
                put(n)

    return wrapped


MIN_HISTORY = 5  # fewer values than this: ETS, ARIMA and Theta give the seasonal naive forecast instead


def fitted(fit):
    """A baseline fitted by statsmodels or statsforecast: run with one OpenBLAS thread (one_blas_thread),
    and the seasonal naive forecast (no intervals) on a history too short to fit (fewer than MIN_HISTORY
    values: a calibration refit early in a short series), where those libraries raise or return nonsense."""
    one_thread = one_blas_thread(fit)

    @functools.wraps(fit)
    def wrapped(y, horizon, season=1, *args, **kw):
        if len(y) < MIN_HISTORY:
            return seasonal_naive(y, horizon, season)
        return one_thread(y, horizon, season, *args, **kw)

    return wrapped


def naive(y: np.ndarray, horizon: int, season: int = 1, log: bool = False):
    return np.repeat(y[-1], horizon), {}


def seasonal_naive(y: np.ndarray, horizon: int, season: int = 1, log: bool = False):
    m = season if 1 < season <= len(y) else 1
    return y[len(y) - m + np.arange(horizon) % m], {}


@fitted
def ets(y: np.ndarray, horizon: int, season: int = 1, log: bool = False):
    ExponentialSmoothing = require("statsmodels.tsa.holtwinters", "the ETS baseline").ExponentialSmoothing

    seasonal = season > 1 and len(y) >= 2 * season + 2
    kinds = (["add", "mul"] if (y > 0).all() else ["add"]) if seasonal else [None]
    best = None
    for kind in kinds:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = ExponentialSmoothing(y, trend="add", damped_trend=True, seasonal=kind,
                                             seasonal_periods=season if kind else None,
                                             initialization_method="estimated" if season <= 24 else "heuristic")
                fit = model.fit()
            f = np.asarray(fit.forecast(horizon))
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(f).all() and (best is None or fit.aicc < best[0]):
            best = (fit.aicc, f)
    return (best[1], {}) if best else seasonal_naive(y, horizon, season)


def fourier(t: np.ndarray, season: int, pairs: int = 3) -> np.ndarray:
    """(len(t), 2 * pairs) sines and cosines of the first `pairs` harmonics of the season."""
    k = np.arange(1, pairs + 1)[None, :]
    w = 2 * np.pi * t[:, None] * k / season
    return np.concatenate([np.sin(w), np.cos(w)], 1)


@fitted
def arima(y: np.ndarray, horizon: int, season: int = 1, log: bool = False, levels=(0.8, 0.95)):
    SARIMAX = require("statsmodels.tsa.statespace.sarimax", "the ARIMA baseline").SARIMAX

    v = np.log(y) if log and (y > 0).all() else y
    back = np.exp if v is not y else (lambda a: a)
    exog = future = None
    if 1 < season <= 52 and len(y) >= 3 * season:
        kw = {"order": (1, 1, 1), "seasonal_order": (0, 1, 1, season)}
    elif season > 52 and len(y) >= 2 * season:
        t = np.arange(len(y) + horizon)
        exog, future = fourier(t[: len(y)], season), fourier(t[len(y):], season)
        kw = {"order": (1, 0, 1), "trend": "c"}
    else:
        kw = {"order": (1, 1, 1)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = SARIMAX(v, exog=exog, **kw).fit(disp=False)
            pred = fit.get_forecast(horizon, exog=future)
            mean = np.asarray(pred.predicted_mean)
            bands = {lv: np.asarray(pred.conf_int(alpha=1 - lv)).T for lv in levels}
    except (ValueError, np.linalg.LinAlgError):
        return seasonal_naive(y, horizon, season)
    if not np.isfinite(mean).all():
        return seasonal_naive(y, horizon, season)
    return back(mean), {lv: (back(lo), back(hi)) for lv, (lo, hi) in bands.items()}


@fitted
def theta(y: np.ndarray, horizon: int, season: int = 1, log: bool = False, levels=(0.8, 0.95)):
    ThetaModel = require("statsmodels.tsa.forecasting.theta", "the Theta baseline").ThetaModel

    seasonal = season > 1 and len(y) >= 2 * season + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ThetaModel(np.asarray(y, dtype=float), period=season if seasonal else 1,
                             deseasonalize=seasonal, method="auto" if seasonal else "additive").fit()
            mean = np.asarray(fit.forecast(horizon))
            bands = {lv: np.asarray(fit.prediction_intervals(horizon, alpha=1 - lv)).T for lv in levels}
    except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
        return seasonal_naive(y, horizon, season)
    if not np.isfinite(mean).all():
        return seasonal_naive(y, horizon, season)
    return mean, {lv: (lo, hi) for lv, (lo, hi) in bands.items()}


def _statsforecast(name: str):
    try:
        import statsforecast.models as sfm
    except ImportError:
        from seqlab.errors import UserError

        raise UserError(f"the {name} baseline needs statsforecast: pip install --no-deps statsforecast==2.1.1 "
                        "coreforecast utilsforecast (it pins pandas<3; its models run with seqlab's pandas), "
                        "or use the statsmodels baselines ets, arima, theta") from None
    return {"autoets": sfm.AutoETS, "autoarima": sfm.AutoARIMA, "autotheta": sfm.AutoTheta}[name]


def statsforecast_baseline(name: str):
    """A baseline function running statsforecast's model `name` (autoets, autoarima, autotheta)."""

    def fit(y: np.ndarray, horizon: int, season: int = 1, log: bool = False, levels=(0.8, 0.95)):
        model = _statsforecast(name)
        m = season if 1 < season <= (52 if name == "autoarima" else 400) and len(y) >= 2 * season + 1 else 1
        pct = [round(100 * lv) for lv in levels]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = model(season_length=m).forecast(y=np.asarray(y, dtype=float), h=horizon, level=pct)
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
            return seasonal_naive(y, horizon, season)
        mean = np.asarray(out["mean"], dtype=float)
        if not np.isfinite(mean).all():
            return seasonal_naive(y, horizon, season)
        return mean, {lv: (np.asarray(out[f"lo-{p}"]), np.asarray(out[f"hi-{p}"])) for lv, p in zip(levels, pct)}

    fit.__name__ = name
    return fitted(fit)


FUNCTIONS = {"naive": naive, "seasonal_naive": seasonal_naive, "ets": ets, "arima": arima, "theta": theta,
             **{k: statsforecast_baseline(k) for k in STATSFORECAST}}
