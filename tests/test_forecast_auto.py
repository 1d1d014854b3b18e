"""Forecasting defaults chosen from the data (seqlab.forecast.auto), and that a given setting wins."""

import numpy as np
import pandas as pd

from seqlab.forecast.auto import acf, amplitude_grows, choose, is_seasonal
from seqlab.pipelines import Forecaster

T = np.arange(144)
RNG = np.random.default_rng(0)
ADDITIVE = 100 + 0.5 * T + 10 * np.sin(2 * np.pi * T / 12) + RNG.normal(0, 1, 144)
MULTIPLICATIVE = (100 + 2 * T) * (1 + 0.3 * np.sin(2 * np.pi * T / 12)) + RNG.normal(0, 1, 144)
NOISE = 50 + RNG.normal(0, 1, 144)


def test_acf_matches_statsmodels():
    from statsmodels.tsa.stattools import acf as sm_acf

    np.testing.assert_allclose(acf(MULTIPLICATIVE, 14), sm_acf(MULTIPLICATIVE, nlags=14, fft=False)[1:], atol=1e-12)


def test_seasonality_test_finds_seasons_and_rejects_noise_and_persistence():
    assert is_seasonal(ADDITIVE, 12) and is_seasonal(MULTIPLICATIVE, 12)
    assert not is_seasonal(NOISE, 12)
    walk = np.cumsum(RNG.normal(0, 1, 600))  # persistent: its levels' autocorrelation is high at every lag
    from seqlab.forecast.auto import acf as levels_acf

    assert levels_acf(walk, 12)[-1] > 0.5 and not is_seasonal(walk, 12)
    assert not is_seasonal(ADDITIVE[:30], 12)  # fewer than 3 seasons: no test, no season


def test_log_only_where_the_swing_grows_with_the_level():
    assert amplitude_grows(MULTIPLICATIVE, 12)
    assert not amplitude_grows(ADDITIVE, 12) and not amplitude_grows(NOISE, 12)
    assert not amplitude_grows(MULTIPLICATIVE - 500, 12)  # not positive


def test_choices_and_given_settings_win():
    c = choose(MULTIPLICATIVE, 12, lookback=36)
    assert (c.season, c.log_scale, c.window_norm, c.calendar, c.ensemble) == (12, True, "season", True, 5)
    n = choose(NOISE, 12)
    assert (n.season, n.log_scale, n.window_norm, n.calendar) == (1, False, "last", False)
    assert "no season" in n.line()
    given = choose(NOISE, 12, season_given=True, log_scale=False, window_norm="mean", calendar=False, ensemble=2)
    assert (given.season, given.window_norm, given.ensemble) == (12, "mean", 2)


def test_fit_records_and_prints_what_it_chose():
    y = pd.Series(MULTIPLICATIVE, index=pd.date_range("2000-01", periods=144, freq="MS"))
    lines = []
    fc = Forecaster.fit(y, horizon=12, hidden=8, epochs=1, threads=1, save_every=0, network="standard",
                        log=lines.append)
    assert fc.data["log_scale"] and fc.data["window_norm"] == "season" and fc.data["calendar"]
    assert fc.data["ensemble"] == 5 and fc.model.cfg.ensemble == 5 and fc.model.cfg.window_norm == "season"
    assert fc.data["network"] == "standard" and fc.model.cfg.encoder.cell == "lstm" and fc.data["dev_start"] < 115
    assert any(line.startswith("defaults from the data: season 12") for line in lines)
    fixed = Forecaster.fit(y, horizon=12, hidden=8, epochs=1, threads=1, save_every=0, window_norm="last",
                           ensemble=1, log_scale=False, calendar=False, log=lambda s: None)
    assert fixed.model.cfg.window_norm == "last" and fixed.model.cfg.ensemble == 1 and not fixed.data["calendar"]
