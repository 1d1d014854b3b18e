"""Many series at once (a panel): read from a long CSV (one row per series and time, an id column) or a
wide CSV (a time column and one column per series), cut in time, and cut into windows across all
series in one vectorised gather.

    long:  series,date,value[,static...]       read_panel(path, id_col="series", time_col="date", target="value")
    wide:  date,A,B,C                          read_panel(path, wide=True)   (each column's own non-empty span)

A series keeps its own start; every series of a panel has the same frequency (inferred from the
longest one, or steps numbered 0, 1, ... with no time column / a numeric one). Static covariates are
columns constant within each series (numbers used as they are, anything else one-hot encoded).

Windows: origin o of series s reads steps [o - lookback, o) and predicts [o, o + horizon). Origins
with fewer than `lookback` past steps are allowed down to `min_history` past steps: the missing
start is padded with the series' first value and marked in `observed` (0 = padding).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from seqlab.data.timeseries import infer_freq, season_of
from seqlab.errors import UserError


@dataclass
class Panel:
    """ids (series,); values: one (time,) array per series; starts: each series' first time label (a
    date, or a step number when `freq` is None); static (series, k) with static_names; season."""

    ids: list[str]
    values: list[np.ndarray]
    starts: list[str]
    freq: str | None = None
    season: int = 1
    static: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    static_names: list[str] = field(default_factory=list)
    source: str = "the panel"

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(v) for v in self.values], dtype=np.int64)

    def times(self, i: int, start: int, steps: int) -> list[str]:
        """Labels of steps [start, start + steps) of series i (past its end too: the forecast's times)."""
        if self.freq is None:
            first = int(float(self.starts[i]))
            return [str(first + start + k) for k in range(steps)]
        idx = pd.date_range(self.starts[i], periods=start + steps, freq=self.freq)[start:]
        return [t.strftime("%Y-%m-%d %H:%M:%S" if (idx.hour != 0).any() or (idx.minute != 0).any() else "%Y-%m-%d")
                for t in idx]

    def head(self, ends: np.ndarray) -> Panel:
        """The panel cut to the first ends[i] steps of each series."""
        return replace(self, values=[v[: int(e)] for v, e in zip(self.values, ends)])

    def to_json(self) -> dict:
        return {"ids": self.ids, "values": [v.tolist() for v in self.values], "starts": self.starts,
                "freq": self.freq, "season": self.season, "static": self.static.tolist(),
                "static_names": self.static_names, "source": self.source}

    @classmethod
    def from_json(cls, d: dict) -> Panel:
        static = np.asarray(d["static"], dtype=np.float64).reshape(len(d["ids"]), len(d["static_names"]))
        return cls(d["ids"], [np.asarray(v, dtype=np.float64) for v in d["values"]], d["starts"], d["freq"],
                   d["season"], static, d["static_names"], d["source"])


def _names(spec) -> list[str]:
    if spec is None:
        return []
    return [s.strip() for s in spec.split(",") if s.strip()] if isinstance(spec, str) else [str(s) for s in spec]


def _column(df: pd.DataFrame, spec: str, what: str, source: str) -> str:
    """A column named `spec` (or its 0-based index)."""
    if spec in df.columns:
        return spec
    if spec.isdigit() and int(spec) < len(df.columns):
        return df.columns[int(spec)]
    raise UserError(f"{source}: no column {spec!r} ({what}); the columns are {', '.join(map(str, df.columns))}")


def _frame(data, delimiter: str | None, encoding: str) -> tuple[pd.DataFrame, str]:
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True), "the panel"
    path = Path(data)
    if not path.is_file():
        raise UserError(f"{path}: no such file; give a CSV/TSV panel with --data")
    sep = delimiter or ("\t" if path.suffix in (".tsv", ".tab") else ",")
    try:
        return pd.read_csv(path, sep=sep, encoding=encoding, dtype=str, keep_default_na=False), str(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise UserError(f"{path}: cannot read it as a table ({str(e).splitlines()[0]}); check --delimiter "
                        "and --encoding") from None


def _numbers(col: pd.Series, what: str, source: str, rows: np.ndarray) -> np.ndarray:
    """Numbers of a column; empty cells NaN; anything else non-numeric is a UserError naming its line."""
    s = col.replace("", np.nan) if col.dtype == object else col
    v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(v) & s.notna().to_numpy())
    if len(bad):
        raise UserError(f"{source}: line {rows[bad[0]] + 2}: {col.iloc[bad[0]]!r} in column {what!r} is not a "
                        "number; fix that cell")
    return v


def _time_axis(times: pd.Series, time_format: str | None, source: str):
    """(parsed times: DatetimeIndex-like Series or None for numbered steps)."""
    as_num = pd.to_numeric(times, errors="coerce")
    if as_num.notna().all():
        return None
    t = pd.to_datetime(times, errors="coerce", format=time_format)
    if t.isna().any():
        i = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise UserError(f"{source}: line {i + 2}: cannot read {times.iloc[i]!r} as a date; fix it or give "
                        "--time-format")
    return t


def read_panel(data, id_col: str | None = None, time_col: str | None = None, target: str | None = None,
               static_cols=None, wide: bool = False, no_time: bool = False, season: int | None = None,
               freq: str | None = None, time_format: str | None = None, delimiter: str | None = None,
               encoding: str = "utf-8") -> Panel:
    """A Panel from a long (`id_col`) or `wide` CSV path or DataFrame. `target`: the value column of a
    long panel (default: the first column that is not the id, the time or a static one); of a wide one,
    the series columns to keep (default: all but the time column)."""
    df, source = _frame(data, delimiter, encoding)
    if wide == (id_col is not None):
        raise UserError(f"{source}: give either --id-col (a long panel: one row per series and time) or --wide "
                        "(one column per series)")
    if not len(df):
        raise UserError(f"{source}: the panel has no rows")
    tcol = None if no_time else _column(df, time_col, "--time-col", source) if time_col is not None else None
    if wide:
        if _names(static_cols):
            raise UserError(f"{source}: --static-cols needs a long panel (--id-col); a wide one has no place "
                            "for them")
        if tcol is None and not no_time:
            tcol = df.columns[0]
        cols = [_column(df, c, "--target", source) for c in _names(target)] or [c for c in df.columns if c != tcol]
        df = df.reset_index(drop=True)
        long = pd.DataFrame({"__id": np.repeat(cols, len(df)),
                             "__t": np.tile(df[tcol].to_numpy() if tcol else np.arange(len(df)).astype(str),
                                            len(cols)),
                             "__y": np.concatenate([df[c].to_numpy() for c in cols]),
                             "__row": np.tile(np.arange(len(df)), len(cols))})
        long = long[long.__y.astype(str).str.strip() != ""]  # each column's own span
        statics: list[str] = []
    else:
        icol = _column(df, id_col, "--id-col", source)
        statics = [_column(df, c, "--static-cols", source) for c in _names(static_cols)]
        if tcol is None and not no_time:
            tcol = next((c for c in df.columns if c != icol and c not in statics), None)
        rest = [c for c in df.columns if c not in (icol, tcol, *statics)]
        ycol = _column(df, target, "--target", source) if target else (rest[0] if rest else None)
        if ycol is None:
            raise UserError(f"{source}: no value column left after the id, time and static columns; give --target")
        long = pd.DataFrame({"__id": df[icol].astype(str).to_numpy(),
                             "__t": df[tcol].to_numpy() if tcol else np.zeros(len(df), dtype=str),
                             "__y": df[ycol].to_numpy(), "__row": np.arange(len(df))})
        for c in statics:
            long[c] = df[c].to_numpy()
    rows = long["__row"].to_numpy()
    y = _numbers(long["__y"].reset_index(drop=True), "the target", source, rows)
    times = None if tcol is None else _time_axis(pd.Series(long["__t"].to_numpy()), time_format, source)
    order = list(dict.fromkeys(long["__id"]))
    codes = pd.Categorical(long["__id"], categories=order).codes
    step = pd.Series(codes).groupby(codes).cumcount().to_numpy()
    if times is not None:  # sort each series by time, checked evenly spaced
        keys = np.lexsort((times.to_numpy(), codes))
    elif tcol is not None:
        keys = np.lexsort((pd.to_numeric(long["__t"]).to_numpy(), codes))
    else:
        keys = np.lexsort((step, codes))
    codes, y, rows = codes[keys], y[keys], rows[keys]
    bounds = np.searchsorted(codes, np.arange(len(order) + 1))
    values = [y[bounds[i] : bounds[i + 1]] for i in range(len(order))]
    for i, v in enumerate(values):
        if np.isnan(v).any():
            j = int(np.flatnonzero(np.isnan(v))[0])
            raise UserError(f"{source}: line {rows[bounds[i] + j] + 2}: series {order[i]!r} has an empty value; "
                            "fill it (or drop the row: gaps inside a series are not allowed)")
    if times is not None:
        t = pd.DatetimeIndex(times.to_numpy()[keys])
        longest = int(np.argmax(np.diff(bounds)))
        freq = freq or infer_freq(t[bounds[longest] : bounds[longest + 1]])
        if freq is None:
            raise UserError(f"{source}: cannot tell the frequency of series {order[longest]!r}; its times must be "
                            "evenly spaced")
        starts = []
        for i in range(len(order)):
            ti = t[bounds[i] : bounds[i + 1]]
            if ti.has_duplicates:
                raise UserError(f"{source}: series {order[i]!r} has two rows for "
                                f"{ti[ti.duplicated()][0].date()}; keep one")
            want = pd.date_range(ti[0], periods=len(ti), freq=freq)
            if not (want == ti).all():
                k = int(np.flatnonzero(want != ti)[0])
                raise UserError(f"{source}: series {order[i]!r} is not evenly spaced ({freq}) at {ti[k].date()} "
                                f"(expected {want[k].date()}); fill its gaps or drop it")
            starts.append(str(ti[0].date()) if (ti.hour == 0).all() else str(ti[0]))
    else:
        nums = (pd.to_numeric(long["__t"]).to_numpy()[keys] if tcol is not None else rows if wide else step[keys])
        starts = [str(int(nums[bounds[i]])) for i in range(len(order))]
        freq = None
    static, names = _static(long.iloc[keys], statics, bounds, order, source)
    s = season if season is not None else season_of(freq)
    return Panel(order, values, starts, freq, s, static, names, source)


def _static(long: pd.DataFrame, cols: list[str], bounds: np.ndarray, ids: list[str], source: str):
    """(series, k) static covariates: a number column as it is, any other one-hot; constant per series."""
    parts, names = [], []
    first = bounds[:-1]
    for c in cols:
        col = long[c].astype(str).to_numpy()
        for i in range(len(ids)):
            if (col[bounds[i] : bounds[i + 1]] != col[first[i]]).any():
                raise UserError(f"{source}: static column {c!r} changes within series {ids[i]!r}; a static "
                                "covariate has one value per series")
        v = pd.to_numeric(pd.Series(col[first]), errors="coerce")
        if v.notna().all():
            parts.append(v.to_numpy(dtype=np.float64)[:, None])
            names.append(c)
        else:
            cats = sorted(set(col[first]))
            parts.append((col[first][:, None] == np.array(cats)[None, :]).astype(np.float64))
            names += [f"{c}={k}" for k in cats]
    return (np.concatenate(parts, 1) if parts else np.zeros((len(ids), 0))), names


def steps_between(first: str, later: str, freq: str | None) -> int | None:
    """Steps from time label `first` to `later` of a panel's frequency (None when `later` is earlier or
    off the grid)."""
    if freq is None:
        k = int(float(later)) - int(float(first))
    else:
        idx = pd.date_range(first, later, freq=freq)
        k = len(idx) - 1 if len(idx) and idx[-1] == pd.Timestamp(later) else -1
    return k if k >= 0 else None


def align_static(panel: Panel, names: list[str]) -> Panel:
    """`panel` with its static covariates in the columns `names` (a model's): one-hot columns of categories
    this panel lacks are 0; a column the model does not know is a UserError."""
    if panel.static_names == names:
        return panel
    extra = [n for n in panel.static_names if n not in names]
    plain = {n.split("=")[0] for n in names}
    if extra or not {n.split("=")[0] for n in panel.static_names} >= plain:
        what = f"has the static column {extra[0]!r}" if extra else "lacks some of them"
        raise UserError(f"{panel.source}: the model was trained with the static covariates {', '.join(names)}, but "
                        f"this panel {what}; give the same --static-cols with the same categories")
    col = {n: i for i, n in enumerate(panel.static_names)}
    static = np.zeros((len(panel.ids), len(names)))
    for j, n in enumerate(names):
        if n in col:
            static[:, j] = panel.static[:, col[n]]
    return replace(panel, static=static, static_names=list(names))


# ---- windows across series -----------------------------------------------------------------------
def panel_origins(lengths: np.ndarray, ends: np.ndarray, first: np.ndarray, horizon: int) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """(series (windows,), origin (windows,)): every origin o with first[s] <= o <= ends[s] - horizon."""
    counts = np.maximum(0, ends - horizon - first + 1)
    series = np.repeat(np.arange(len(lengths)), counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    origin = np.repeat(first, counts) + np.arange(counts.sum()) - start
    return series, origin.astype(np.int64)


def gather_windows(panel: Panel, series: np.ndarray, origin: np.ndarray, lookback: int, horizon: int):
    """x (windows, lookback), observed (windows, lookback) 0/1, y (windows, horizon) (NaN past a series'
    end), all from one flat array of the panel: no loop over series."""
    flat = np.concatenate(panel.values + [np.array([np.nan])])
    lengths = panel.lengths
    offset = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    past = origin[:, None] + np.arange(-lookback, 0)[None, :]
    observed = past >= 0
    x = flat[offset[series][:, None] + np.clip(past, 0, None)]
    x = np.where(observed, x, flat[offset[series]][:, None])  # padding: the series' first value
    fut = origin[:, None] + np.arange(horizon)[None, :]
    inside = fut < lengths[series][:, None]
    y = np.where(inside, flat[offset[series][:, None] + np.where(inside, fut, 0)], np.nan)
    return x, observed.astype(np.float64), y
