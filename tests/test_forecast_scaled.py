"""The 'scaled' forecasting network (the default for short positive series): window scaling, the members'
median, the choice from the data, seasonal indices by calendar position, its units in the pipeline."""

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.errors import UserError
from seqlab.forecast.auto import choose, choose_network
from seqlab.models.encoder import EncoderConfig
from seqlab.models.forecaster import Forecaster, ForecasterConfig
from seqlab.pipelines import Forecaster as ForecastPipeline

QUIET = {"log": lambda s: None}
FAST = {"hidden": 8, "epochs": 3, "threads": 1, "save_every": 0}


def _net(**kw) -> Forecaster:
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=0, input_dim=1, hidden=8, cell="gru")
    return Forecaster(ForecasterConfig(enc, 1, 0, 4, ensemble=3, input_scale="window", point="median", **kw)).eval()


def _seasonal(n: int, start: str = "2000-01", seed: int = 0) -> pd.Series:
    t = np.arange(n)
    y = (100 + 0.8 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)) + np.random.default_rng(seed).normal(0, 1, n)
    return pd.Series(y, index=pd.date_range(start, periods=n, freq="MS"))


@pytest.mark.parametrize("norm", ["last", "mean", "none"])
def test_window_scaling_forecasts_a_series_times_c_as_c_times_its_forecast(norm):
    net = _net(window_norm=norm)
    x = torch.rand(5, 10, 1) + 0.5
    y = torch.rand(5, 4, 1) + 0.5
    with torch.no_grad():
        a, b = net(x), net(1000 * x)
    torch.testing.assert_close(b.mean, 1000 * a.mean, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(b.scale, 1000 * a.scale, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(b.window, 1000 * a.window)
    # the loss is taken in each window's units: the same for the series times 1000
    torch.testing.assert_close(net.loss(b, 1000 * y), net.loss(a, y), rtol=1e-4, atol=1e-4)
    # without window scaling the loss grows with the units (the Gaussian's log scale)
    plain = Forecaster(ForecasterConfig(net.cfg.encoder, 1, 0, 4, window_norm=norm)).eval()
    with torch.no_grad():
        assert float(plain.loss(plain(1000 * x), 1000 * y)) > float(plain.loss(plain(x), y)) + 1


def test_median_point_is_the_members_median_and_intervals_keep_the_mixture():
    net = _net()
    out = net(torch.rand(6, 10, 1) + 1)
    torch.testing.assert_close(out.mean, out.members_mean.median(0).values)
    mean_net = Forecaster(ForecasterConfig(net.cfg.encoder, 1, 0, 4, ensemble=3, input_scale="window"))
    mean_net.load_state_dict(net.state_dict())
    same = mean_net.eval()(torch.rand(6, 10, 1) + 1)
    torch.testing.assert_close(same.mean, same.members_mean.mean(0))
    with pytest.raises(ValueError, match="input_scale"):
        Forecaster(ForecasterConfig(net.cfg.encoder, 1, 0, 4, input_scale="global"))


def test_the_network_is_chosen_from_the_data_and_a_given_setting_wins():
    y = _seasonal(120).to_numpy()
    assert choose_network(y, True)[0] == "scaled"
    net, why = choose_network(y - 200, True)
    assert net == "standard" and "not positive" in why
    assert choose_network(np.tile(y, 20), True)[0] == "standard"  # 2,400 steps: long
    assert choose_network(y, False)[0] == "standard"  # covariates, several targets or seq2seq
    assert choose_network(y, True, window_norm="season")[0] == "standard"
    assert choose_network(y, True, calendar=True)[0] == "standard"
    c = choose(y, 12, plain=True, horizon=12)
    assert (c.network, c.window_norm, c.calendar, c.ensemble) == ("scaled", "last", False, 3)
    assert "network scaled" in c.line() and "ensemble 3" in c.line()
    s = choose(y, 12, plain=True, horizon=12, network="standard")
    assert (s.network, s.window_norm, s.calendar, s.ensemble) == ("standard", "season", True, 5)
    assert choose(y, 12, plain=True, network="scaled", ensemble=5).ensemble == 5


def test_fit_defaults_of_the_scaled_network_and_what_the_user_sets():
    fc = ForecastPipeline.fit(_seasonal(120), horizon=6, hidden=8, epochs=2, threads=1, save_every=0, **QUIET)
    d, cfg = fc.data, fc.model.cfg
    assert d["network"] == "scaled" and cfg.input_scale == "window" and cfg.point == "median"
    assert (cfg.encoder.cell, cfg.ensemble, cfg.window_norm, d["calendar"]) == ("gru", 3, "last", False)
    assert d["dev_start"] == d["test_start"] and len(d["seasonal"]) == 12
    assert (fc.train_config.lr, fc.train_config.schedule) == (5e-3, "cosine")
    given = ForecastPipeline.fit(_seasonal(120), horizon=6, hidden=8, epochs=2, threads=1, save_every=0, cell="lstm",
                                 lr=1e-3, schedule="constant", dev=12, **QUIET)
    assert given.data["network"] == "scaled" and given.model.cfg.encoder.cell == "lstm"
    assert (given.train_config.lr, given.train_config.schedule) == (1e-3, "constant")
    assert given.data["test_start"] - given.data["dev_start"] == 12
    std = ForecastPipeline.fit(_seasonal(120), horizon=6, network="standard", **FAST, **QUIET)
    assert std.model.cfg.encoder.cell == "lstm" and std.model.cfg.input_scale == "none" and "seasonal" not in std.data
    assert (std.train_config.lr, std.train_config.schedule) == (2e-3, "constant")
    two = pd.DataFrame({"a": _seasonal(120).to_numpy(), "b": _seasonal(120, seed=1).to_numpy()},
                       index=pd.date_range("2000-01", periods=120, freq="MS"))
    with pytest.raises(UserError, match="--network scaled forecasts one target"):
        ForecastPipeline.fit(two, target="a,b", horizon=6, network="scaled", **FAST, **QUIET)
    assert ForecastPipeline.fit(two, target="a,b", horizon=6, **FAST, **QUIET).data["network"] == "standard"
    assert ForecastPipeline.fit(_seasonal(120) - 300, horizon=6, **FAST, **QUIET).data["network"] == "standard"


def test_seasonal_indices_follow_the_calendar_not_the_first_row(tmp_path):
    """Indices stored by month of the year; a copy of the series that starts 5 months later is forecast
    the same from the same month."""
    y = _seasonal(120, start="2000-06")
    fc = ForecastPipeline.fit(y, horizon=6, combine="none", **FAST, **QUIET)
    idx = np.asarray(fc.data["seasonal"])  # idx[k]: month k + 1
    assert idx.argmax() in (7, 8, 9) and idx.argmin() in (1, 2, 3)  # the sine peaks in September, dips in March
    later = y.iloc[5:]
    a = fc.predict(origin="2008-03-01")
    b = fc.predict(series=later, origin="2008-03-01")
    np.testing.assert_allclose(a.forecast, b.forecast, rtol=1e-5)
    fc.save(tmp_path / "m")
    np.testing.assert_allclose(ForecastPipeline.load(tmp_path / "m").predict().forecast, fc.predict().forecast,
                               rtol=1e-6)


def test_gaussian_intervals_of_the_scaled_network_on_a_log_series():
    y = _seasonal(120)
    fc = ForecastPipeline.fit(y, horizon=6, intervals="gaussian", log_scale=True, combine="none", **FAST, **QUIET)
    assert fc.data["network"] == "scaled" and fc.scaler.log
    p = fc.predict(quantiles=(0.1, 0.9))
    assert np.isfinite(p[["lo95", "lo80", "forecast", "hi80", "hi95"]].to_numpy()).all()
    assert (p.lo95 < p.lo80).all() and (p.lo80 < p.forecast).all() and (p.forecast < p.hi80).all()
    assert (p.hi80 < p.hi95).all() and (p.q10 < p.forecast).all()
    m = fc.evaluate()
    assert 0 <= m["coverage80"] <= 1 and np.isfinite(m["mase"])
