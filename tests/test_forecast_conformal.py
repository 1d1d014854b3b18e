"""Conformal intervals and quantiles of the forecaster, and the Theta / statsforecast baselines."""

import csv
import json
import sys

import numpy as np
import pandas as pd
import pytest

from seqlab.cli import main
from seqlab.errors import UserError
from seqlab.forecast import baselines
from seqlab.forecast.conformal import (
    ConformalTable,
    calibration_residuals,
    isotonic_increasing,
    parse_quantiles,
    quantile_name,
)
from seqlab.pipelines.forecast import Forecaster

QUIET = {"log": lambda *_: None}


def _noise_residuals(rng, origins: int, sd: np.ndarray) -> np.ndarray:
    return rng.normal(0, 1, (origins, len(sd), 1)) * sd[None, :, None]


@pytest.mark.parametrize("symmetric", [True, False])
def test_conformal_intervals_cover_known_noise_at_the_nominal_rate(symmetric):
    """Residuals with a known sd that grows with the horizon: intervals from 400 calibration origins
    cover fresh residuals of the same kind at about 80% / 95%, and widen with the horizon."""
    rng = np.random.default_rng(0)
    sd = np.array([1.0, 1.5, 2.0, 3.0])
    table = ConformalTable.fit(_noise_residuals(rng, 400, sd), symmetric=symmetric)
    fresh = _noise_residuals(rng, 5000, sd)
    for lv in (0.8, 0.95):
        lo, hi = table.offset((1 - lv) / 2), table.offset((1 + lv) / 2)
        inside = (fresh >= lo[None]) & (fresh <= hi[None])
        assert abs(inside.mean() - lv) < 0.03, (lv, inside.mean())
        width = (hi - lo)[:, 0]
        assert (np.diff(width) > 0).all(), width  # wider at every later step, as the noise is
        np.testing.assert_allclose(width / width[0], sd / sd[0], rtol=0.25)


def test_finite_sample_correction_and_too_few_residuals():
    table = ConformalTable(np.ones((1, 1)), np.arange(1.0, 10.0)[:, None], True, 9, "test")
    assert table.offset(0.9)[0, 0] == 8.0  # 80%: the ceil((9 + 1) * 0.8) = 8th smallest of 1..9
    assert table.offset(0.1)[0, 0] == -8.0 and table.offset(0.5)[0, 0] == 0.0
    assert table.offset(0.975)[0, 0] == 9.0  # the 10th of 9 does not exist: the largest (under-covers)
    signed = ConformalTable(np.ones((1, 1)), np.arange(-4.0, 5.0)[:, None], False, 9, "test")
    assert signed.offset(0.9)[0, 0] == 4.0 and signed.offset(0.1)[0, 0] == -4.0  # 9th and 1st of 9
    assert signed.offset(0.7)[0, 0] == 2.0  # ceil(10 * 0.7) = 7th smallest of -4..4


def test_isotonic_and_residual_masking():
    np.testing.assert_allclose(isotonic_increasing([1.0, 3.0, 2.0, 4.0]), [1.0, 2.5, 2.5, 4.0])
    values = np.arange(20.0)[:, None]
    mean = np.zeros((3, 4, 1))
    r = calibration_residuals(mean, values, np.array([8, 9, 10]), 10, 12)
    assert np.isnan(r[0, :2, 0]).all() and r[0, 2, 0] == 10 and r[0, 3, 0] == 11  # targets 10, 11 only
    assert np.isnan(r[2, 2:, 0]).all()  # 12 and 13 are past the calibration part


def test_quantile_levels_and_names():
    assert parse_quantiles("0.9, 0.1,0.5") == (0.1, 0.5, 0.9) and parse_quantiles(None) == ()
    assert [quantile_name(t) for t in (0.1, 0.5, 0.025)] == ["q10", "q50", "q2.5"]
    for bad in ("0", "1.5", "x"):
        with pytest.raises(UserError, match="--quantiles"):
            parse_quantiles(bad)


def _seasonal(n=180, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.Series(20 + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, n),
                     index=pd.date_range("2000-01", periods=n, freq="MS"))


def test_conformal_table_in_the_checkpoint_predict_quantiles_and_gaussian_option(tmp_path):
    out = tmp_path / "run"
    fc = Forecaster.fit(_seasonal(), horizon=6, hidden=8, epochs=3, ensemble=1, threads=1, save_every=0,
                        out=out, **QUIET)
    assert fc.data["intervals"] == "conformal" and fc.conformal.n > 0
    assert "3 rolling-origin refits" in fc.conformal.source  # calibrated on refits, not on the model's own fit
    p = fc.predict(quantiles="0.1,0.5,0.9")
    q = p[["lo95", "q10", "q50", "q90", "hi95"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()  # quantiles are monotone and inside the 95% interval
    np.testing.assert_allclose(p["q50"], p["forecast"])  # symmetric: the median is the point forecast
    np.testing.assert_allclose(p["q10"], p["lo80"])  # the 80% interval is the 10% .. 90% quantiles
    width = (p["hi95"] - p["lo95"]).to_numpy()
    assert (np.diff(width) >= -1e-9).all()  # never narrower at a later step

    back = Forecaster.load(out / "best")  # the table is in config.json: no refitting
    assert json.loads((out / "best" / "config.json").read_text())["data"]["conformal"]["n"] == fc.conformal.n
    np.testing.assert_allclose(back.conformal.scores, fc.conformal.scores, atol=1e-6)
    pd.testing.assert_frame_equal(back.predict(quantiles=(0.1, 0.5, 0.9)), p, atol=1e-5)
    assert main(["export", "--model", str(out), "--out", str(tmp_path / "fc.pt"), "--threads", "1"]) == 0
    exported = Forecaster.load(tmp_path / "fc.pt")  # the exported file carries the table too
    pd.testing.assert_frame_equal(exported.predict(quantiles=(0.1, 0.5, 0.9)), p, atol=1e-5)
    r = back.backtest(baselines=())
    assert r["intervals"] == "conformal" and {"coverage80", "coverage95"} <= set(r["results"]["rnn"])

    g = Forecaster.fit(_seasonal(), horizon=6, hidden=8, epochs=3, ensemble=1, threads=1, save_every=0,
                       intervals="gaussian", **QUIET)
    assert g.conformal is None and "conformal" not in g.data and g.data["intervals"] == "gaussian"
    gq = g.predict(quantiles=(0.1, 0.9))
    assert (gq["q10"] < gq["forecast"]).all() and (gq["forecast"] < gq["q90"]).all()
    np.testing.assert_allclose(gq["q90"], gq["hi80"])


def test_cli_intervals_flag_and_quantiles_csv(tmp_path, capsys):
    data = tmp_path / "s.csv"
    _seasonal().rename("y").to_csv(data, index_label="month")
    out = tmp_path / "run"
    assert main(["forecast", "train", "--data", str(data), "--horizon", "6", "--hidden", "8", "--epochs", "2",
                 "--ensemble", "1", "--save-every", "0", "--threads", "1", "--out", str(out)]) == 0
    assert "intervals conformal" in capsys.readouterr().out
    assert main(["forecast", "eval", "--model", str(out), "--baselines", "naive,theta"]) == 0
    printed = capsys.readouterr().out
    assert "rnn intervals: conformal" in printed and "theta" in printed
    csv_out = tmp_path / "fc.csv"
    assert main(["forecast", "predict", "--model", str(out), "--quantiles", "0.1,0.5,0.9", "--output",
                 str(csv_out)]) == 0
    rows = list(csv.DictReader(csv_out.open()))
    assert len(rows) == 6 and all(float(r["q10"]) <= float(r["q50"]) <= float(r["q90"]) for r in rows)
    assert main(["forecast", "predict", "--model", str(out), "--quantiles", "1.2"]) == 2
    assert "--quantiles" in capsys.readouterr().err


def test_theta_baseline_is_finite_and_follows_the_season():
    y = _seasonal(120).to_numpy()
    mean, bands = baselines.theta(y[:108], 12, 12)
    assert mean.shape == (12,) and np.isfinite(mean).all()
    assert np.abs(mean - y[108:]).mean() < 1.5  # noise sd 0.5, amplitude 3: it kept the season
    lo, hi = bands[0.95]
    assert (lo < mean).all() and (mean < hi).all()
    flat, _ = baselines.theta(np.cumsum(np.ones(30)), 5, 1)  # no season, a trend
    assert np.isfinite(flat).all() and flat[-1] > 30


def test_statsforecast_baselines_or_a_clear_error(monkeypatch):
    y = _seasonal(96).to_numpy()
    fn = baselines.FUNCTIONS["autotheta"]
    try:
        import statsforecast.models  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="pip install --no-deps statsforecast"):
            fn(y, 12, 12)
    else:
        for name in baselines.STATSFORECAST:
            mean, bands = baselines.FUNCTIONS[name](y, 12, 12)
            assert mean.shape == (12,) and np.isfinite(mean).all() and set(bands) == {0.8, 0.95}
        monkeypatch.setitem(sys.modules, "statsforecast.models", None)  # as if not installed
        with pytest.raises(UserError, match="needs statsforecast"):
            fn(y, 12, 12)


def test_calibration_never_reads_the_test_part():
    y = _seasonal(150)
    changed = y.copy()
    changed.iloc[-30:] += 100.0  # the default test part is the last 20%: 30 steps
    tables = [Forecaster.fit(v, horizon=6, hidden=8, epochs=2, ensemble=1, threads=1, save_every=0,
                             calibration_folds=2, **QUIET).conformal for v in (y, changed)]
    np.testing.assert_array_equal(tables[0].scores, tables[1].scores)
    np.testing.assert_array_equal(tables[0].scale, tables[1].scale)
    dev_only = Forecaster.fit(y, horizon=6, hidden=8, epochs=2, ensemble=1, threads=1, save_every=0,
                              calibration_folds=0, network="standard", **QUIET).conformal
    assert dev_only.source == "the dev part" and dev_only.n < tables[0].n


def test_window_norm_anchors_on_the_level_when_a_trend_beats_the_season():
    from seqlab.forecast.auto import choose, season_anchors

    t = np.arange(60.0)
    trend = 10 + 0.5 * t + 0.05 * np.sin(2 * np.pi * t / 4)  # a weak season on a strong trend
    seasonal = 10 + 3 * np.sin(2 * np.pi * t / 4)
    assert not season_anchors(trend, 4, 4) and season_anchors(seasonal, 4, 4)
    c = choose(trend, 4, season_given=True, horizon=4)
    assert c.window_norm == "last" and c.calendar and "naive forecast beats" in c.line()
    assert choose(seasonal, 4, season_given=True, horizon=4).window_norm == "season"


def test_a_fold_too_short_for_the_lookback_refits_with_one_that_fits():
    """A 71-month series with an 18-month horizon: the model's lookback (18) leaves no fold of the training
    part; the refit takes the lookback the defaults choose for the shorter history, so the intervals come
    from out-of-sample errors, not the in-sample ones (which under-cover)."""
    y = _seasonal(71)
    lines = []
    fc = Forecaster.fit(y, horizon=18, hidden=8, epochs=2, threads=1, save_every=0, combine="none",
                        calibration_folds=1, log=lines.append)
    assert fc.lookback == 18 and "1 rolling-origin refits" in fc.conformal.source, lines
    pinned = Forecaster.fit(y, horizon=18, hidden=8, epochs=2, threads=1, save_every=0, combine="none",
                            calibration_folds=0, **QUIET)
    assert "in-sample" in pinned.conformal.source  # what it falls back to without refits
