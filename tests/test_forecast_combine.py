"""The forecaster's default combination with classical models (seqlab.forecast.combine)."""

import numpy as np
import pandas as pd
import pytest

from seqlab.errors import UserError
from seqlab.forecast import combine
from seqlab.forecast.backtest import baseline_forecasts
from seqlab.pipelines import Forecaster

pytest.importorskip("statsmodels")
T = np.arange(96)
Y = pd.Series((100 + 1.5 * T) * (1 + 0.2 * np.sin(2 * np.pi * T / 12)) + np.random.default_rng(0).normal(0, 2, 96),
              index=pd.date_range("2000-01", periods=96, freq="MS"))
TINY = dict(horizon=6, hidden=8, epochs=2, threads=1, save_every=0, calibration_folds=1)


@pytest.mark.combine
def test_the_setting_parses_and_the_data_decides_when_none_is_given():
    assert combine.parse(None) is None and combine.parse("auto") is None
    assert combine.parse("none") == () and combine.parse("ets, theta") == ("ets", "theta")
    with pytest.raises(UserError, match="unknown method 'prophet'"):
        combine.parse("ets,prophet")
    assert combine.choose("arima", 10**6)[0] == ("arima",)  # a given setting wins at any length
    assert combine.choose("none", 50) == ((), "the network alone")
    assert combine.choose(None, 100)[0] == combine.CLASSICAL
    methods, why = combine.choose(None, combine.COMBINE_BELOW)
    assert methods == () and str(combine.COMBINE_BELOW) in why


@pytest.mark.combine
def test_a_short_series_is_pooled_by_default_with_the_median_and_says_so():
    lines = []
    fc = Forecaster.fit(Y, log=lines.append, **TINY)
    assert fc.data["combine"] == list(combine.CLASSICAL) and fc.data["combine_rule"] == "median"
    assert any("the median of the network, ETS, ARIMA and Theta (77 training steps)" in x for x in lines), lines
    s, _ = fc.series_for(None)
    origins = np.array([80, 84, 90])
    pooled = fc.raw(s, origins)[0]
    fc.data["combine"] = []
    net = fc.raw(s, origins)[0]
    other = [fc.scaler.transform(baseline_forecasts(m, s.values, origins, 6, fc.data["season"], fc.scaler.log).mean)
             for m in combine.CLASSICAL]
    members = np.stack([net, *other])
    np.testing.assert_allclose(pooled, np.median(members, 0), rtol=1e-9, atol=1e-9)
    middle = np.sort(members, 0)[1:3].mean(0)  # of four: the mean of the middle two, never the extremes
    np.testing.assert_allclose(pooled, middle, rtol=1e-9, atol=1e-9)
    assert np.abs(pooled - members.mean(0)).max() > 1e-6  # not the mean
    fc.data.update(combine=list(combine.CLASSICAL))
    del fc.data["combine_rule"]  # a checkpoint from before the rule was stored: the mean, as it was trained
    np.testing.assert_allclose(fc.raw(s, origins)[0], members.mean(0), rtol=1e-9, atol=1e-9)
    alone = Forecaster.fit(Y, combine="none", log=lambda s: None, **TINY)
    assert alone.data["combine"] == []


def test_the_combined_forecast_is_the_average_in_the_scaled_units(tmp_path):
    fc = Forecaster.fit(Y, combine="theta", log=lambda s: None, **TINY)
    s, _ = fc.series_for(None)
    origins = np.array([80, 84, 90])
    both = fc.raw(s, origins)[0]
    fc.data["combine"] = []
    net = fc.raw(s, origins)[0]
    theta = baseline_forecasts("theta", s.values, origins, 6, fc.data["season"], fc.scaler.log).mean
    np.testing.assert_allclose(both, (net + fc.scaler.transform(theta)) / 2, rtol=1e-9, atol=1e-9)
    assert np.abs(both - net).max() > 1e-3  # the two differ: the average is not the network's forecast
    fc.data["combine"] = ["theta"]
    fc.save(tmp_path / "m")
    again = Forecaster.load(tmp_path / "m")
    assert again.data["combine"] == ["theta"]
    pd.testing.assert_frame_equal(again.predict(), fc.predict())
    assert fc.conformal is not None and "refit" in fc.conformal.source  # calibrated on combined refits


def test_a_classical_value_that_cannot_be_averaged_is_left_out():
    from seqlab.data.timeseries import Scaler

    scaler = Scaler.fit(np.array([[1.0], [10.0], [100.0]]), log=True)
    net = scaler.transform(np.array([[[20.0], [30.0]]]))  # (origins 1, horizon 2, targets 1)
    other = np.array([[[[20.0], [-5.0]]], [[[np.nan], [30.0]]]])  # ETS ran below zero, ARIMA failed at step 1
    for rule in ("median", "mean"):
        got = scaler.inverse(combine.pool(net, other, scaler, rule))
        np.testing.assert_allclose(got[0, :, 0], [20.0, 30.0])  # only the usable values are pooled
    plain = Scaler.fit(np.array([[1.0], [10.0], [100.0]]), log=False)
    z = plain.transform(np.array([[[20.0], [30.0]]]))
    got = plain.inverse(combine.pool(z, other, plain, "mean"))
    np.testing.assert_allclose(got[0, :, 0], [20.0, (30.0 - 5.0 + 30.0) / 3])  # negatives are fine unlogged
    got = plain.inverse(combine.pool(z, other, plain))
    np.testing.assert_allclose(got[0, :, 0], [20.0, 30.0])  # the median of 30, -5, 30


def test_eval_says_the_forecast_is_combined(tmp_path, capsys):
    from seqlab.cli import main

    csv = tmp_path / "y.csv"
    Y.rename_axis("month").rename("value").to_csv(csv)
    out = tmp_path / "run"
    assert main(["forecast", "train", "--data", str(csv), "--horizon", "6", "--hidden", "8", "--epochs", "2",
                 "--calibration-folds", "1", "--combine", "theta", "--threads", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["forecast", "eval", "--model", str(out), "--baselines", ""]) == 0
    assert "rnn: the median of the network's forecast and theta" in capsys.readouterr().out


@pytest.mark.combine
def test_the_validation_errors_score_refits_on_the_training_parts_last_horizons():
    values = Y.to_numpy()[:77, None]
    errors = combine.validation_errors(values, 6, 12, False)
    origins = np.array([77 - 6 * k for k in range(6, 0, -1)])  # 41 .. 71: all after 2 seasons + 2 steps
    y = values[origins[:, None] + np.arange(6)[None, :]]
    for m in combine.CLASSICAL:
        f = baseline_forecasts(m, values, origins, 6, 12, False).mean
        assert errors[m] == pytest.approx(np.abs(f - y).mean())
    assert combine.validation_errors(values[:33], 6, 12, False) == {}  # one origin (27) after 26 steps: too few


def test_a_history_too_short_to_fit_gives_the_seasonal_naive_forecast():
    from seqlab.forecast import baselines

    for n in range(1, baselines.MIN_HISTORY):
        y = np.arange(1.0, n + 1)
        for name in ("ets", "arima", "theta"):
            mean, bands = baselines.FUNCTIONS[name](y, 3, 4)
            assert np.array_equal(mean, baselines.seasonal_naive(y, 3, 4)[0]) and bands == {}


@pytest.mark.combine
def test_a_15_step_series_trains_calibrates_and_predicts():
    """9 training steps: the calibration refits start from 1 to 3 values (ARIMA raised there before)."""
    s = pd.Series(np.arange(1.0, 16.0), index=pd.date_range("2000-01", periods=15, freq="MS"))
    fc = Forecaster.fit(s, horizon=6, threads=1, save_every=0, log=lambda *_: None)  # the defaults: scaled
    out = fc.predict()
    cols = ["forecast", "lo80", "hi80", "lo95", "hi95"]
    assert len(out) == 6 and np.isfinite(out[cols].to_numpy(dtype=float)).all()
    assert (out["lo80"] <= out["forecast"]).all() and (out["forecast"] <= out["hi80"]).all()
