"""Time series for forecasting: a CSV reader that checks the time axis, train-only scaling, windows.

    date,passengers            read_series -> TimeSeries(index (time,), values (time, targets),
    1949-01,112                                          covariates (time + future, covariates))
    ...
A forecaster trained on windows must never see the future. The series is cut at `test_start`:
scaling statistics come from the steps before it only (`Scaler.fit(values[:test_start])`), and
a window at origin `o` reads inputs from steps [o - lookback, o) and targets from [o, o + horizon)
(data/windows.py): the input never includes the first step it is asked to predict.

Problems a user can fix are `UserError`s naming the file line: a date that does not parse, a
value that is not a number, a duplicate or out-of-order timestamp, missing time steps (or pass
fill='interpolate'), a series shorter than lookback + horizon.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from seqlab.data.readers import read_table
from seqlab.data.time_axis import check_steps, check_time_axis, infer_freq, season_of, step_numbers, time_label
from seqlab.errors import UserError

__all__ = ["FILLS", "Scaler", "TimeSeries", "build_series", "calendar_features", "infer_freq",
           "parse_numbers", "read_series", "season_of", "season_position"]

FILLS = ("none", "interpolate", "ffill")


@dataclass
class TimeSeries:
    """A regular series: `values` (n, targets) observed; `covariates` (n + future, k) known ahead.

    index: the time of each of the n + future steps (DatetimeIndex; RangeIndex without a time column, from 0,
        or of a column of step numbers, from its first one).
    lines: the file line of each observed step (None for series that ship with a package).
    """

    index: pd.Index
    values: np.ndarray
    covariates: np.ndarray
    targets: list[str]
    covariate_names: list[str]
    freq: str | None
    season: int
    source: str
    lines: list[int] | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    def head(self, steps: int) -> TimeSeries:
        """The first `steps` observed steps only (no future covariates): what a model may train on."""
        return replace(self, index=self.index[:steps], values=self.values[:steps],
                       covariates=self.covariates[:steps], lines=None if self.lines is None else self.lines[:steps])

    def times(self, start: int, steps: int) -> pd.Index:
        """Times of steps [start, start + steps), extending the index past its end with the frequency."""
        if isinstance(self.index, pd.DatetimeIndex):
            return pd.date_range(self.index[0], periods=start + steps, freq=self.freq)[start:]
        first = self.first_step
        return pd.RangeIndex(first + start, first + start + steps)

    @property
    def first_step(self) -> int:
        """The number of the first step of a series without dates (0 unless its file numbers its steps)."""
        return int(self.index.start) if isinstance(self.index, pd.RangeIndex) else 0

    def label(self, i: int) -> str:
        """A readable time for step i (also past the end of the index)."""
        t = self.times(i, 1)[0]
        return time_label(t) if isinstance(t, pd.Timestamp) else str(t)

    def locate(self, when: str) -> int:
        """Index of the first step at or after `when` (a date, or a step number without a time column)."""
        if isinstance(self.index, pd.DatetimeIndex):
            try:
                t = pd.Timestamp(when)
            except (ValueError, TypeError):
                raise UserError(f"cannot read {when!r} as a date; write it like {self.label(0)}") from None
            i = int(self.index.searchsorted(t))
        else:
            if not str(when).lstrip("-").isdigit():
                raise UserError(f"{self.source} has no dates, so give a step number, not {when!r}")
            i = int(when) - self.first_step
        if not 0 <= i < self.n:
            raise UserError(f"{when} is outside the observed series ({self.label(0)} .. {self.label(self.n - 1)})")
        return i


# ---- reading -----------------------------------------------------------------------------------
def _split_names(spec: str | list[str] | None) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [s.strip() for s in spec.split(",") if s.strip()]
    return list(spec)


def parse_numbers(col: list[str], name: str, lines: list[int], path) -> np.ndarray:
    """Floats of one column; empty cells become NaN, anything else that is not a number is an error."""
    out = pd.to_numeric(pd.Series(col, dtype=object).replace("", np.nan), errors="coerce").to_numpy(float)
    bad = np.flatnonzero(np.isnan(out) & np.array([c != "" for c in col]))
    if len(bad):
        i = bad[0]
        raise UserError(f"{path}: line {lines[i]}: {col[i]!r} in column {name!r} is not a number; "
                        "fix that cell (use a dot as the decimal mark, no units)")
    return out


def _parse_times(col: list[str], name: str, lines: list[int], path, fmt: str | None) -> pd.DatetimeIndex:
    kw = {"format": fmt} if fmt else {}
    try:
        with warnings.catch_warnings():  # "could not infer format": pandas then reads each cell on its own
            warnings.simplefilter("ignore", UserWarning)
            t = pd.to_datetime(pd.Series(col), errors="coerce", **kw)
    except (ValueError, TypeError) as e:  # a bad --time-format
        raise UserError(f"{path}: --time-format {fmt!r} cannot be used ({e})") from None
    bad = np.flatnonzero(t.isna().to_numpy())
    if len(bad):
        i = bad[0]
        hint = f"its format is not {fmt!r}" if fmt else "give its format with --time-format, e.g. %d/%m/%Y"
        raise UserError(f"{path}: line {lines[i]}: cannot read {col[i]!r} in column {name!r} as a date; "
                        f"fix that cell, or {hint}")
    return pd.DatetimeIndex(t)


def _fill(a: np.ndarray, how: str, names: list[str], lines, source: str) -> np.ndarray:
    """Fill NaN in (time, k) columns; with how == 'none' a NaN is an error naming its line."""
    nan = np.isnan(a)
    if not nan.any():
        return a
    if how == "none":
        t, j = (int(v[0]) for v in np.nonzero(nan))
        at = f"line {lines[t]}" if lines else f"step {t}"
        raise UserError(f"{source}: {at}: no value for {names[j]!r}; fill it, or pass --fill interpolate")
    df = pd.DataFrame(a)
    df = df.interpolate(limit_direction="both") if how == "interpolate" else df.ffill().bfill()
    return df.to_numpy(float)


def _on_grid(pos: np.ndarray, values: np.ndarray, covariates: np.ndarray, lines: list[int] | None, n_obs: int):
    """The rows put at their positions `pos` (rows,) on the full regular grid, gaps as NaN rows (filled
    later); a gap step reports the line of the row before it. (values, covariates, lines, n_obs)."""
    if not len(pos) or pos[-1] + 1 == len(pos):
        return values, covariates, lines, n_obs
    n = int(pos[-1]) + 1
    full = np.full((n, values.shape[1]), np.nan)
    full[pos] = values
    fullc = np.full((n, covariates.shape[1]), np.nan)
    fullc[pos] = covariates
    if lines is not None:
        lines = [lines[j] for j in np.searchsorted(pos, np.arange(n), "right") - 1]
    return full, fullc, lines, (int(pos[n_obs - 1]) + 1 if n_obs else 0)


def build_series(index, values: np.ndarray, covariates: np.ndarray, targets: list[str], cov_names: list[str],
                 source: str, lines: list[int] | None = None, fill: str = "none", n_obs: int | None = None,
                 season: int | None = None) -> TimeSeries:
    """Check and regularise a series. `values` and `covariates` are (rows, k) with NaN for gaps; rows past
    `n_obs` are future rows (covariates known, no target)."""
    if fill not in FILLS:
        raise UserError(f"unknown --fill {fill!r}; choose one of {', '.join(FILLS)}")
    n_obs = len(values) if n_obs is None else n_obs
    freq = None
    if isinstance(index, pd.DatetimeIndex):
        freq, pos = check_time_axis(index, lines, source, fill)
        values, covariates, lines, n_obs = _on_grid(pos, values, covariates, lines, n_obs)
        index = pd.DatetimeIndex(index, freq=freq) if len(values) == len(index) else \
            pd.date_range(index[0], index[-1], freq=freq)
    elif isinstance(index, np.ndarray):  # numbered steps (step_numbers)
        pos = check_steps(index, lines, source, fill)
        values, covariates, lines, n_obs = _on_grid(pos, values, covariates, lines, n_obs)
        index = pd.RangeIndex(int(index[0]), int(index[0]) + len(values))
    else:
        index = pd.RangeIndex(len(values))
    obs = values[:n_obs]
    if n_obs == 0 or np.isnan(obs).all():
        raise UserError(f"{source}: no target values to learn from")
    obs = _fill(obs, fill, targets, lines, source)
    covs = _fill(covariates, fill, cov_names, lines, source) if covariates.shape[1] else covariates
    return TimeSeries(index, obs, covs, targets, cov_names, freq, season or season_of(freq), source, lines)


def read_series(path, time_col: str | None, targets: str | list[str], covariates: str | list[str] | None = None,
                delimiter: str | None = None, encoding: str = "utf-8", fill: str = "none",
                time_format: str | None = None, season: int | None = None) -> TimeSeries:
    """Read a CSV/TSV into a TimeSeries. Rows at the end with empty targets but filled covariates are the
    known future (for forecasting with covariates); an empty target elsewhere is a gap (see `fill`)."""
    tnames, cnames = _split_names(targets), _split_names(covariates)
    if not tnames:
        raise UserError("give the column(s) to forecast with --target")
    cols = ([time_col] if time_col else []) + tnames + cnames
    table = read_table(path, cols, delimiter, True, encoding)
    off = 1 if time_col else 0
    names = [table.columns[off + j] for j in range(len(tnames))]  # header names, also for columns given by index
    cov_names = [table.columns[off + len(tnames) + j] for j in range(len(cnames))]
    vals = np.stack([parse_numbers(table.column(off + j), c, table.lines, path) for j, c in enumerate(names)], 1)
    covs = np.stack([parse_numbers(table.column(off + len(tnames) + j), c, table.lines, path)
                     for j, c in enumerate(cov_names)], 1) if cnames else np.zeros((len(vals), 0))
    n_obs = len(vals)
    if cnames:  # trailing rows without targets: the known future of the covariates
        has = ~np.isnan(vals).all(1)
        n_obs = int(np.flatnonzero(has)[-1]) + 1 if has.any() else 0
    index = None
    if time_col:
        index = None if time_format else step_numbers(table.column(0))
        if index is None:
            index = _parse_times(table.column(0), table.columns[0], table.lines, path, time_format)
    return build_series(index, vals, covs, names, cov_names, str(path), table.lines, fill, n_obs, season)


# ---- scaling -----------------------------------------------------------------------------------
@dataclass
class Scaler:
    """Per-column standardisation, optionally of log values: z = (log? y - mean) / std.

    Fit it on the training part only; mean and std are lists (one per column) for JSON."""

    mean: list[float]
    std: list[float]
    log: bool = False

    @classmethod
    def fit(cls, values: np.ndarray, log: bool = False, source: str = "the series") -> Scaler:
        """values (time, k): the training part only."""
        if log and (values <= 0).any():
            raise UserError(f"{source}: --log needs positive values, but the series has values <= 0; drop --log")
        v = np.log(values) if log else values
        std = v.std(0)
        return cls(v.mean(0).tolist(), np.where(std > 1e-12, std, 1.0).tolist(), log)

    def transform(self, values: np.ndarray) -> np.ndarray:
        v = np.log(np.maximum(values, 1e-300)) if self.log else values
        return (v - np.asarray(self.mean)) / np.asarray(self.std)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        v = z * np.asarray(self.std) + np.asarray(self.mean)
        return np.exp(v) if self.log else v

    def transform_sd(self, centre: np.ndarray, sd: np.ndarray) -> np.ndarray:
        """The standard deviation in scaled units of a forecast centred at `centre` with `sd` in the
        series' units: sd / std, and for log values sd / (centre * std) (the delta method)."""
        sd = np.asarray(sd) / np.asarray(self.std)
        return sd / np.maximum(centre, 1e-300) if self.log else sd

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Scaler:
        return cls(**d)


def season_position(index: pd.Index, freq: str | None) -> np.ndarray:
    """(time,) int64: a calendar count of each step (months since year 0 for monthly data, quarters,
    weeks or days since 1970, hours otherwise; the step number without times), so `k % season` is the
    position within the season, the same for a step whichever series or window it is read from."""
    if isinstance(index, pd.RangeIndex):
        return np.asarray(index, dtype=np.int64)
    if not isinstance(index, pd.DatetimeIndex):
        return np.arange(len(index), dtype=np.int64)
    f = (freq or "").upper().lstrip("0123456789")
    if f.startswith("M"):
        k = index.year * 12 + index.month - 1
    elif f.startswith("Q"):
        k = index.year * 4 + index.quarter - 1
    elif f.startswith("W"):
        k = (index - pd.Timestamp("1970-01-01")).days // 7
    elif f.startswith(("D", "B")):
        k = (index - pd.Timestamp("1970-01-01")).days
    else:
        k = (index - pd.Timestamp("1970-01-01")).total_seconds() // 3600
    return np.asarray(k, dtype=np.int64)


def calendar_features(index: pd.Index, freq: str | None, season: int) -> np.ndarray:
    """(time, 2): sine and cosine of the position within the season (month of year for monthly data)."""
    if season <= 1:
        return np.zeros((len(index), 0))
    phase = 2 * np.pi * (season_position(index, freq) % season) / season
    return np.stack([np.sin(phase), np.cos(phase)], 1)
