"""The series a forecaster reads: from a CSV/TSV file or a packaged dataset, from pandas or a list, and
from (to) a checkpoint's vocab.json; and the cut of a series into training and test parts.

    load_series(data)              -> TimeSeries read as config.json's data settings say
    series_from_object(obj, data)  -> TimeSeries from a pandas Series/DataFrame or a list/array
    series_to_json(s) / series_from_json(j, data)   the copy a checkpoint keeps (self-contained)
    split_series(s, horizon, lookback, test)        -> (training part, test start)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from seqlab.data.time_axis import step_numbers
from seqlab.data.timeseries import TimeSeries, build_series, read_series, season_of
from seqlab.data.windows import check_length
from seqlab.errors import UserError
from seqlab.forecast import datasets

OBJECT_SOURCE = "the series"  # data["data"] of a model trained on Python objects
# the data settings that say how to read a series (config.json data; READ_KEYS of the CLI)
READ_KEYS = ("data", "time_col", "targets", "covariates", "delimiter", "encoding", "fill", "time_format", "season")


def load_series(d: dict) -> TimeSeries:
    """The series described by the data settings `d` (a CSV path or statsmodels:<name>)."""
    if datasets.is_package_data(d["data"]):
        return datasets.load(d["data"], d["targets"], d["covariates"], d["season"])
    return read_series(d["data"], d["time_col"], d["targets"] or "1", d["covariates"], d["delimiter"],
                       d["encoding"], d["fill"], d["time_format"], d["season"])


def _names(spec) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [s.strip() for s in spec.split(",") if s.strip()]
    return [str(s) for s in spec]


def series_from_object(obj, d: dict, freq: str | None = None) -> TimeSeries:
    """A TimeSeries from Python data: a pandas Series (a DatetimeIndex gives the times), a DataFrame
    (columns picked by d["targets"] / d["covariates"]; times from its DatetimeIndex or d["time_col"]),
    or a 1-d (or (time, targets)) array or list of numbers, whose steps are numbered (`freq` sets the
    default season). Trailing rows with covariates but no target are the covariates' known future."""
    if isinstance(obj, TimeSeries):
        return obj
    if isinstance(obj, pd.Series):
        obj = obj.to_frame(name=str(obj.name) if obj.name is not None else "y")
    if not isinstance(obj, pd.DataFrame):
        try:
            a = np.asarray(obj, dtype=float)
        except (TypeError, ValueError):
            raise UserError("the series must be a CSV path, a pandas Series or DataFrame, or numbers "
                            f"(a list or array), not {type(obj).__name__}") from None
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2 or not a.size:
            raise UserError(f"the series must be 1-d (time,) or 2-d (time, targets) numbers, not shape {a.shape}")
        given = _names(d.get("targets"))
        cols = given if len(given) == a.shape[1] else ["y"] if a.shape[1] == 1 else \
            [f"y{j + 1}" for j in range(a.shape[1])]
        obj = pd.DataFrame(a, columns=cols)
    df = obj.copy()
    df.columns = [str(c) for c in df.columns]
    index = None
    if isinstance(df.index, pd.PeriodIndex):
        df.index = df.index.to_timestamp()
    if isinstance(df.index, pd.DatetimeIndex):
        index = df.index
    elif d.get("time_col") is not None:
        tc = str(d["time_col"])
        if tc not in df.columns and tc.isdigit() and int(tc) < len(df.columns) and len(df.columns) > 1:
            pos = df.columns[int(tc)]  # "0" (the default): the first column, when it holds times, not numbers
            tc = pos if tc != "0" or not pd.api.types.is_numeric_dtype(df[pos]) else tc
        if tc in df.columns:
            index = None if d.get("time_format") else step_numbers(df[tc].astype(str).tolist())
            if index is None:
                try:
                    index = pd.DatetimeIndex(pd.to_datetime(df[tc], format=d.get("time_format")))
                except (ValueError, TypeError) as e:
                    raise UserError(f"cannot read the column {tc!r} of the series as times ({e})") from None
            df = df.drop(columns=tc)
    cnames = _names(d.get("covariates"))
    tnames = _names(d.get("targets")) or [c for c in df.columns if c not in cnames][:1]
    for c in tnames + cnames:
        if c not in df.columns:
            raise UserError(f"the series has no column {c!r}; its columns are {', '.join(map(repr, df.columns))}")
    try:
        vals = df[tnames].to_numpy(float)
        covs = df[cnames].to_numpy(float) if cnames else np.zeros((len(df), 0))
    except (TypeError, ValueError):
        raise UserError(f"the columns {', '.join(tnames + cnames)} of the series must hold numbers") from None
    n_obs = len(vals)
    if cnames:
        has = ~np.isnan(vals).all(1)
        n_obs = int(np.flatnonzero(has)[-1]) + 1 if has.any() else 0
    if len(vals) < 3:
        raise UserError(f"the series has only {len(vals)} steps; a series needs many more")
    season = d.get("season") or (season_of(freq) if freq and index is None else None)
    s = build_series(index, vals, covs, tnames, cnames, OBJECT_SOURCE, None, d.get("fill") or "none", n_obs,
                     season)
    return replace(s, freq=freq) if index is None and freq else s


def series_to_json(s: TimeSeries) -> dict:
    """The series a checkpoint keeps (vocab.json "series"): raw values by column, covariates, times."""
    out = {"values": {t: s.values[:, j].tolist() for j, t in enumerate(s.targets)},
           "covariates": {c: s.covariates[:, j].tolist() for j, c in enumerate(s.covariate_names)},
           "steps": len(s.index), "start": None, "freq": s.freq}
    if s.first_step:
        out["first_step"] = s.first_step
    if isinstance(s.index, pd.DatetimeIndex):
        out["start"] = s.index[0].isoformat()
        if not pd.date_range(out["start"], periods=len(s.index), freq=s.freq).equals(s.index):
            out["times"] = [t.isoformat() for t in s.index]
    return out


def series_from_json(j: dict, data: dict) -> TimeSeries:
    """The series series_to_json wrote, with the checkpoint's data settings (names, season, source)."""
    try:
        targets, covs = list(data["targets"]), list(data["covariates"])
        values = np.array([j["values"][t] for t in targets], dtype=float).T.reshape(-1, len(targets))
        n = len(values)
        covariates = np.array([j["covariates"][c] for c in covs], dtype=float).T.reshape(-1, len(covs)) \
            if covs else np.zeros((n, 0))
        steps = int(j.get("steps", max(n, len(covariates))))
        if j.get("times"):
            index = pd.DatetimeIndex(pd.to_datetime(j["times"]))
        elif j.get("start"):
            index = pd.date_range(j["start"], periods=steps, freq=j["freq"])
        else:
            first = int(j.get("first_step", 0))
            index = pd.RangeIndex(first, first + steps)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"the series stored in this forecaster's vocab.json is damaged ({type(e).__name__}: {e}); "
                        "retrain, or restore the file") from None
    return TimeSeries(index, values, covariates, targets, covs, j.get("freq"), int(data["season"]),
                      str(data["data"]))


def test_start_of(s: TimeSeries, horizon: int, test: int | None = None, test_start: str | None = None) -> int:
    """The first step of the test part: `test_start` (a time), or `test` steps (default 20%, at least
    one horizon) before the end."""
    if test_start:
        return s.locate(test_start)
    return s.n - (test if test is not None else max(horizon, round(0.2 * s.n)))


def split_series(s: TimeSeries, horizon: int, lookback: int, test: int | None = None,
                 test_start: str | None = None, dev: int | None = None) -> tuple[int, int]:
    """(dev_start, test_start): train on [0, dev_start), select on [dev_start, test_start)."""
    n, h = s.n, horizon
    check_length(n, lookback, h, s.source)
    test_at = test_start_of(s, horizon, test, test_start)
    dev = dev if dev is not None else max(h, round(0.1 * test_at))
    if test_at > n or dev < 0:
        raise UserError("--test and --dev must not be negative")
    if dev and dev < h:
        raise UserError(f"--dev {dev} is shorter than --horizon {h}; use --dev {h} or more, or --dev 0")
    check_length(test_at - dev, lookback, h, s.source,
                 f"before its test part ({s.label(test_at)}) and dev part ({dev} steps) ")
    return test_at - dev, test_at


def _preferred_lookback(season: int, horizon: int, network: str = "standard") -> int:
    if network == "scaled":  # the M3 global model's: two horizons, and at least one season and a step
        return max(2 * horizon, season + 1 if season > 1 else 1)
    return 3 * season if season > 1 else max(2 * horizon, 8)


def auto_lookback(s: TimeSeries, horizon: int, test: int | None = None, test_start: str | None = None,
                  dev: int | None = None, network: str = "standard") -> int:
    """The lookback the data allows: three seasons (without a season, two horizons and at least 8
    steps; the 'scaled' network: two horizons and at least a season and a step), but never so long that
    the training part holds fewer than `horizon` windows (a 72-point monthly series with a 12-step
    horizon trains on 23 steps of history rather than not at all)."""
    dev_start, _ = split_series(s, horizon, 1, test, test_start, dev)
    room = dev_start - horizon - (horizon - 1)  # the lookback that leaves `horizon` training windows
    return max(1, min(_preferred_lookback(s.season, horizon, network), room))


def lookback_reason(s: TimeSeries, horizon: int, lookback: int, network: str = "standard") -> str:
    want = _preferred_lookback(s.season, horizon, network)
    if network == "scaled":
        why = f"2 horizons of {horizon}" + (f", at least a season of {s.season} + 1" if s.season > 1 else "")
    else:
        why = f"3 seasons of {s.season}" if s.season > 1 else f"2 horizons of {horizon}"
    return why if lookback == want else f"{why} would be {want}, but the training part only allows {lookback}"
