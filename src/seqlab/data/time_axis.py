"""The time axis of a series: dates or numbered steps, its frequency and season, and the checks that
it is regular (no duplicate, out-of-order or missing step unless the gaps are to be filled).

    check_time_axis(dates)   -> (frequency, positions on the regular grid)   'MS', [0, 1, 2, ...]
    step_numbers(cells)      -> the integers of a column that numbers its steps, or None for dates
    check_steps(steps)       -> positions on the grid first..last
    season_of('MS') == 12
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from seqlab.errors import UserError


def time_label(t: pd.Timestamp) -> str:
    """'2000-03-01', or '2000-03-01 14:30' off midnight: readable, and read back by pandas. Built from the
    fields, as Timestamp.strftime fails before year 1 (M3's nominal dates start at 0000-01-01)."""
    day = f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
    return day + (f" {t.hour:02d}:{t.minute:02d}" if t.hour or t.minute else "") \
        + (f":{t.second:02d}" if t.second else "")


def step_numbers(col: list[str]) -> np.ndarray | None:
    """The integers of a time column that numbers its steps (1, 2, 3, ...: series without a calendar), or
    None when it holds dates. Whole numbers that all look like years (1000-2999) or YYYYMMDD dates are
    dates, as pandas reads them."""
    cells = [c.strip() for c in col]
    if not cells or not all(c.lstrip("-").isdigit() for c in cells):
        return None
    v = np.array([int(c) for c in cells], dtype=np.int64)
    years = all(len(c) == 4 for c in cells) and bool(((v >= 1000) & (v < 3000)).all())
    dates = all(len(c) == 8 for c in cells)
    return None if years or dates else v


def _candidate_freq(idx: pd.DatetimeIndex) -> str | None:
    """The regular frequency an index with gaps was meant to have (pd.infer_freq gives up on gaps)."""
    days = float(np.min((idx[1:] - idx[:-1]) / pd.Timedelta(days=1)))  # gaps only make steps longer
    starts = bool((idx.day == 1).all())
    ends = bool(idx.is_month_end.all())
    if days < 1:
        return f"{max(1, round(days * 1440))}min"
    if days < 1.5:
        return "D"
    if 6.5 < days < 7.5:
        return f"W-{idx[0].day_name()[:3].upper()}"
    if 27 < days < 32:
        return "MS" if starts else "ME" if ends else None
    if 88 < days < 93:
        return "QS" if starts else "QE" if ends else None
    if 364 < days < 367:
        return "YS" if starts else "YE" if ends else None
    return None


def infer_freq(idx: pd.DatetimeIndex) -> str | None:
    """pandas' inferred frequency as a string (e.g. 'MS'), or None for an irregular index."""
    with warnings.catch_warnings():  # pandas 3 warns that it will return an offset object one day
        warnings.simplefilter("ignore")
        f = pd.infer_freq(idx)
    return getattr(f, "freqstr", f)


def season_of(freq: str | None) -> int:
    """The usual seasonal period of a frequency: monthly 12, quarterly 4, weekly 52, daily 7, hourly 24."""
    if not freq:
        return 1
    f = freq.upper().split("-")[0].lstrip("0123456789")
    for prefix, m in (("MS", 12), ("ME", 12), ("M", 12), ("QS", 4), ("QE", 4), ("Q", 4), ("W", 52),
                      ("BH", 8), ("B", 5), ("D", 7), ("H", 24), ("YS", 1), ("YE", 1), ("Y", 1), ("A", 1)):
        if f.startswith(prefix):
            return m
    return 1


def _where(lines: list[int] | None):
    """Row i as the user can find it: its file line, or its step without a file."""
    return (lambda i: f"line {lines[i]}") if lines else (lambda i: f"step {i}")


def _check_order(d: np.ndarray, source: str, duplicate, before) -> None:
    """A UserError for the first repeated (d == 0) or backward (d < 0) step of the differences `d` between
    consecutive rows; `duplicate(i)` and `before(i)` say it for rows i, i + 1."""
    for bad, say in ((d == 0, duplicate), (d < 0, before)):
        if bad.any():
            raise UserError(f"{source}: {say(int(np.flatnonzero(bad)[0]))}")


def check_time_axis(idx: pd.DatetimeIndex, lines: list[int] | None, source: str, fill: str) -> tuple[str, np.ndarray]:
    """(frequency, positions of the observed rows on the regular grid); errors for bad time axes."""
    where = _where(lines)
    _check_order(np.diff(idx.asi8), source,
                 lambda i: f"duplicate timestamp {idx[i + 1]} at {where(i)} and {where(i + 1)}; "
                           "keep one row per time step (aggregate the duplicates)",
                 lambda i: f"{where(i + 1)}: {idx[i + 1]} comes before {idx[i]} on the row above; "
                           "sort the file by time")
    if len(idx) < 3:
        raise UserError(f"{source}: only {len(idx)} time steps; a series needs many more")
    freq = infer_freq(idx)
    if freq is not None:
        return freq, np.arange(len(idx))
    freq = _candidate_freq(idx)
    grid = pd.date_range(idx[0], idx[-1], freq=freq) if freq else None
    if grid is None or not idx.isin(grid).all():
        raise UserError(f"{source}: the timestamps are not evenly spaced (no regular frequency found); "
                        "resample the series to a fixed step first")
    missing = grid.difference(idx)
    if fill == "none":
        i = int(idx.searchsorted(missing[0])) - 1
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise UserError(f"{source}: missing timestamp {time_label(missing[0])}"
                        f" (after {where(i)}){more} in a {freq} series; add the rows or pass --fill interpolate")
    return freq, grid.get_indexer(idx)


def check_steps(steps: np.ndarray, lines: list[int] | None, source: str, fill: str) -> np.ndarray:
    """Positions of rows numbered `steps` (rows,) on the grid first..last; errors as check_time_axis's."""
    where = _where(lines)
    d = np.diff(steps)
    _check_order(d, source,
                 lambda i: f"duplicate step {steps[i + 1]} at {where(i)} and {where(i + 1)}; "
                           "keep one row per time step",
                 lambda i: f"{where(i + 1)}: step {steps[i + 1]} comes after step {steps[i]}; "
                           "sort the file by its step column")
    if (d > 1).any() and fill == "none":
        i = int(np.flatnonzero(d > 1)[0])
        more = int((d - 1).sum()) - 1
        raise UserError(f"{source}: missing step {steps[i] + 1} (after {where(i)})"
                        + (f" and {more} more" if more else "") + "; add the rows or pass --fill interpolate")
    return steps - steps[0]
