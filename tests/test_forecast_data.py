"""Forecasting data: reading series (and every bad-input error), train-only scaling, windows that
never see the future, metrics and baselines."""

import json

import numpy as np
import pandas as pd
import pytest

from seqlab.cli import main
from seqlab.data.timeseries import Scaler, read_series
from seqlab.data.windows import gather, window_origins
from seqlab.errors import UserError
from seqlab.forecast import baselines, datasets
from seqlab.forecast.backtest import baseline_forecasts, rolling_origins, score
from seqlab.metrics.forecast import mase, mase_scale, smape

QUICK = ["--hidden", "8", "--epochs", "2", "--batch", "16", "--save-every", "0", "--threads", "1"]


def write_monthly(path, values, start="2000-01", crlf=False, covs=None):
    times = pd.date_range(start, periods=len(values), freq="MS").strftime("%Y-%m")
    rows = ['"month","y"' + (',"c"' if covs is not None else "")]
    for i, (t, v) in enumerate(zip(times, values)):
        rows.append(f'"{t}",{v}' + (f",{covs[i]}" if covs is not None else ""))
    path.write_bytes(("\r\n" if crlf else "\n").join(rows).encode())
    return path


def test_reads_crlf_quoted_monthly_series(tmp_path):
    s = read_series(write_monthly(tmp_path / "a.csv", [1, 2.5, 3, 4], crlf=True), "month", "y")
    assert s.freq == "MS" and s.season == 12 and s.n == 4
    np.testing.assert_array_equal(s.values[:, 0], [1, 2.5, 3, 4])
    assert s.label(5) == "2000-06-01" and s.lines == [2, 3, 4, 5]


@pytest.mark.parametrize("rows, message", [
    (["2000-01,1", "2000-02,2", "2000/13/45,3"], r"line 4: cannot read '2000/13/45' .* as a date"),
    (["2000-01,1", "2000-02,abc", "2000-03,3"], r"line 3: 'abc' in column 'y' is not a number"),
    (["2000-01,1", "2000-02,2", "2000-02,3", "2000-03,4"], r"duplicate timestamp 2000-02-01.* line 3 and line 4"),
    (["2000-01,1", "2000-03,2", "2000-02,3", "2000-04,4"], r"line 4: 2000-02-01.* comes before .* sort"),
    (["2000-01,1", "2000-02,2", "2000-04,4"], r"missing timestamp 2000-03-01 \(after line 3\).*--fill interpolate"),
    (["2000-01,1", "2000-02,", "2000-03,3"], r"line 3: no value for 'y'.*--fill interpolate"),
])
def test_bad_series_are_one_clear_error_with_the_line(tmp_path, rows, message):
    import re

    (tmp_path / "bad.csv").write_text("month,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError) as e:
        read_series(tmp_path / "bad.csv", "month", "y")
    assert re.search(message, str(e.value)), str(e.value)


def test_fill_interpolates_gaps_and_empty_cells(tmp_path):
    (tmp_path / "gap.csv").write_text("month,y\n2000-01,1\n2000-02,\n2000-04,4\n2000-05,5\n")
    s = read_series(tmp_path / "gap.csv", "month", "y", fill="interpolate")
    np.testing.assert_allclose(s.values[:, 0], [1, 2, 3, 4, 5])
    assert s.n == 5 and str(s.index[2].date()) == "2000-03-01"


def test_a_column_of_step_numbers_is_the_time_axis_and_years_stay_dates(tmp_path):
    (tmp_path / "steps.csv").write_text("step,y\n" + "".join(f"{i},{10 + i}\n" for i in range(1, 31)))
    s = read_series(tmp_path / "steps.csv", "step", "y")
    assert s.freq is None and s.season == 1 and s.n == 30 and s.first_step == 1
    assert s.label(0) == "1" and s.label(31) == "32" and s.locate("11") == 10  # the file's numbers, not positions
    (tmp_path / "years.csv").write_text("year,y\n" + "".join(f"{1950 + i},{i}\n" for i in range(10)))
    y = read_series(tmp_path / "years.csv", "year", "y")
    assert y.freq == "YS-JAN" and y.label(0) == "1950-01-01"
    (tmp_path / "gap.csv").write_text("t,y\n1,1\n2,2\n4,4\n5,5\n")
    with pytest.raises(UserError, match=r"missing step 3 \(after line 3\).*--fill interpolate"):
        read_series(tmp_path / "gap.csv", "t", "y")
    g = read_series(tmp_path / "gap.csv", "t", "y", fill="interpolate")
    np.testing.assert_allclose(g.values[:, 0], [1, 2, 3, 4, 5])
    for rows, message in ((["1,1", "2,2", "2,3"], r"duplicate step 2 at line 3 and line 4"),
                          (["1,1", "3,2", "2,3"], r"line 4: step 2 comes after step 3.*sort")):
        (tmp_path / "bad.csv").write_text("t,y\n" + "\n".join(rows) + "\n")
        with pytest.raises(UserError, match=message):
            read_series(tmp_path / "bad.csv", "t", "y")


def test_labels_before_year_one_and_within_a_day(tmp_path, capsys):
    """M3 dates some series from 0000-01-01 (strftime fails there); hourly labels keep the hour, so the
    stored test start reads back as the same step."""
    (tmp_path / "y0.csv").write_text("date,y\n" + "".join(f"{i // 12:04d}-{i % 12 + 1:02d}-01,{5 + i % 3}\n"
                                                          for i in range(40)))
    s = read_series(tmp_path / "y0.csv", "date", "y")
    assert s.label(0) == "0000-01-01" and s.label(41) == "0003-06-01"
    run = str(tmp_path / "run")
    assert main(["forecast", "train", "--data", str(tmp_path / "y0.csv"), "--target", "y", "--horizon", "3",
                 "--out", run, "--combine", "none", "--calibration-folds", "0", *QUICK]) == 0
    assert main(["forecast", "eval", "--model", run]) == 0
    hours = pd.date_range("2000-01-01", periods=30, freq="h")
    (tmp_path / "h.csv").write_text("t,y\n" + "".join(f"{t:%Y-%m-%d %H:%M},{i}\n" for i, t in enumerate(hours)))
    h = read_series(tmp_path / "h.csv", "t", "y")
    assert h.label(13) == "2000-01-01 13:00" and h.locate(h.label(13)) == 13


def test_cli_round_trip_on_a_numbered_series(tmp_path, capsys):
    """M3's "other" series number their steps 1..N: train, eval and predict keep the file's numbering."""
    y = 100 + np.sin(np.arange(60) / 3) * 10
    (tmp_path / "s.csv").write_text("step,y\n" + "".join(f"{i + 1},{v:.3f}\n" for i, v in enumerate(y)))
    run = str(tmp_path / "run")
    assert main(["forecast", "train", "--data", str(tmp_path / "s.csv"), "--target", "y", "--horizon", "4",
                 "--out", run, "--combine", "none", "--calibration-folds", "0", *QUICK]) == 0
    assert main(["forecast", "eval", "--model", run]) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", "--model", run, "--output", str(tmp_path / "f.csv")]) == 0
    assert pd.read_csv(tmp_path / "f.csv")["time"].tolist() == [61, 62, 63, 64]


def test_cli_errors_for_short_series_and_bad_dates(tmp_path, capsys):
    short = write_monthly(tmp_path / "short.csv", np.arange(1, 30))
    assert main(["forecast", "train", "--data", str(short), "--lookback", "24", "--horizon", "12",
                 "--out", str(tmp_path / "o"), *QUICK]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqlab: error: ") and "fewer than lookback + horizon = 24 + 12" in err
    assert not (tmp_path / "o").exists()
    (tmp_path / "d.csv").write_text("month,y\n2000-01,1\nlast tuesday,2\n")
    assert main(["forecast", "train", "--data", str(tmp_path / "d.csv"), "--out", str(tmp_path / "o"), *QUICK]) == 2
    assert "line 3: cannot read 'last tuesday'" in capsys.readouterr().err


def test_scaling_statistics_come_from_the_training_part_only(tmp_path):
    values = np.concatenate([np.sin(np.arange(100) / 3) + 10, np.full(20, 1000.0)])  # a wild test part
    out = tmp_path / "run"
    assert main(["forecast", "train", "--data", str(write_monthly(tmp_path / "s.csv", values)), "--test", "20",
                 "--horizon", "4", "--lookback", "12", "--out", str(out), *QUICK]) == 0
    data = json.loads((out / "best" / "config.json").read_text())["data"]
    assert data["test_start"] == 100
    assert data["scaler"]["mean"][0] == pytest.approx(values[:100].mean())
    assert data["scaler"]["std"][0] == pytest.approx(values[:100].std())
    fitted = Scaler.fit(values[:100, None])
    assert fitted.mean == pytest.approx(data["scaler"]["mean"])


def test_windows_read_only_the_past():
    """Inputs of a window end at step o - 1 and its targets start at o; training targets stay before
    the dev part. A window that also read step o (a one-step leak) fails the first assertion."""
    series = np.arange(200, dtype=float)[:, None]  # the value is the step number
    lookback, horizon, dev_start = 24, 6, 150
    origins = window_origins(0, dev_start, lookback, horizon)
    x, y = gather(series, origins, -lookback, lookback), gather(series, origins, 0, horizon)
    assert (x[:, -1, 0] == origins - 1).all() and (y[:, 0, 0] == origins).all()
    assert x.max(axis=(1, 2)).tolist() == (origins - 1).tolist()
    assert y.max() == dev_start - 1 and x.min() == 0


def test_the_training_windows_of_the_cli_end_before_the_dev_part(tmp_path):
    from seqlab.pipelines.forecast import Forecaster as ForecastPipeline
    from seqlab.pipelines.forecast import load_series, windows

    values = np.arange(1, 121, dtype=float)
    out = tmp_path / "run"
    assert main(["forecast", "train", "--data", str(write_monthly(tmp_path / "s.csv", values)), "--test", "24",
                 "--dev", "12", "--horizon", "6", "--lookback", "12", "--window-norm", "none",
                 "--out", str(out), *QUICK]) == 0
    pipe = ForecastPipeline.load(out)
    s = load_series({**pipe.data, "data": str(tmp_path / "s.csv")})
    dev_start = pipe.data["dev_start"]
    x, _, y = windows(pipe, s, window_origins(0, dev_start, 12, 6), dev_start)
    y_raw = pipe.scaler.inverse(y.double().numpy())
    x_raw = pipe.scaler.inverse(x[..., :1].double().numpy())
    assert y_raw.max() == pytest.approx(values[dev_start - 1]) and dev_start == 84
    np.testing.assert_allclose(x_raw[:, -1, 0] + 1, y_raw[:, 0, 0], atol=1e-4)  # the last input is the step before
    with pytest.raises(IndexError):  # windows cannot reach steps at or after `end`
        windows(pipe, s, np.array([dev_start - 3]), dev_start)


def test_baselines_and_metrics_on_known_values():
    y = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    assert baselines.naive(y, 3)[0].tolist() == [8, 8, 8]
    assert baselines.seasonal_naive(y, 5, season=4)[0].tolist() == [5, 6, 7, 8, 5]
    assert mase_scale(y[:, None], 1).tolist() == [1.0]
    assert mase(np.array([[3.0]]), np.array([[1.0]]), np.array([2.0])) == 1.0
    assert smape(np.array([1.0, 0.0]), np.array([3.0, 0.0])) == pytest.approx(50.0)
    t = np.arange(120)
    season = 10 + np.sin(2 * np.pi * t / 12) + 0.01 * t
    mean, bands = baselines.arima(season[:96], 12, 12)
    assert np.abs(mean - season[96:108]).max() < 0.1 and (bands[0.95][0] < bands[0.8][0]).all()
    assert np.abs(baselines.ets(season[:96], 12, 12)[0] - season[96:108]).max() < 0.1


def test_baseline_backtests_ignore_the_future():
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=(80, 1)), 0) + 50
    origins = rolling_origins(80, 4, 3, 4, earliest=60)
    assert origins.tolist() == [68, 72, 76]
    changed = values.copy()
    changed[70:] += 100  # after the first origin's history
    for name in baselines.BASELINES:
        a = baseline_forecasts(name, values, origins[:1], 4, 12).mean
        b = baseline_forecasts(name, changed, origins[:1], 4, 12).mean
        np.testing.assert_array_equal(a, b)
    fc = baseline_forecasts("naive", values, origins, 4, 12)
    m = score(values, origins, fc, mase_scale(values[:60], 1))
    assert m["n"] == 12 and m["mase"] > 0
    with pytest.raises(UserError, match="--backtest 5 or fewer"):
        rolling_origins(80, 4, 10, 4, earliest=60)


def test_statsmodels_series_load_offline():
    nile = datasets.load("statsmodels:nile")
    assert nile.n == 100 and nile.season == 1 and nile.freq.startswith("YS")
    co2 = datasets.load("statsmodels:co2")
    assert co2.freq == "MS" and not np.isnan(co2.values).any()
    macro = datasets.load("statsmodels:macrodata", "realgdp,realcons")
    assert macro.values.shape == (203, 2) and macro.season == 4
    with pytest.raises(UserError, match="unknown dataset"):
        datasets.load("statsmodels:nope")
