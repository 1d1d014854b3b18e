"""The forecasting Python API: fit on a CSV or Python data, predict, backtest, save, load; checkpoints
that carry their series (no CSV, no working directory needed)."""

import json

import numpy as np
import pandas as pd
import pytest

import seqlab
from seqlab.cli import main
from seqlab.errors import UserError
from seqlab.pipelines import ConfigError, ForecastConfig, Forecaster

QUIET = {"log": lambda s: None}
TINY = {"horizon": 6, "lookback": 24, "hidden": 12, "epochs": 25, "lr": 1e-2, "threads": 1, "save_every": 0}


def _monthly(n=120, seed=0):
    t = np.arange(n)
    y = 10 + 2 * np.sin(2 * np.pi * t / 12) + 0.05 * t + np.random.default_rng(seed).normal(0, 0.1, n)
    return pd.Series(y, index=pd.date_range("2000-01", periods=n, freq="MS"), name="sales")


def test_six_lines_fit_predict_evaluate_save_load(tmp_path):
    fc = Forecaster.fit(_monthly(), **TINY, **QUIET)
    p = fc.predict()
    assert list(p.time) == list(pd.date_range("2010-01", periods=6, freq="MS")) and (p.lo95 < p.forecast).all()
    assert (m := fc.evaluate())["mase"] < m["baselines"]["naive"]["mase"]
    fc.save(tmp_path / "m")
    np.testing.assert_allclose(seqlab.load(tmp_path / "m").predict().forecast, p.forecast, rtol=1e-6)


def test_fit_on_a_list_with_a_season_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    y = _monthly().to_list()
    fc = Forecaster.fit(y, season=12, **TINY, **QUIET)
    assert fc.data["season"] == 12 and fc.data["data"] == "the series" and fc.data["network"] == "scaled"
    assert fc.data["dev_start"] == fc.data["test_start"]  # the scaled network: no dev part, a fixed schedule
    p = fc.predict(3)
    assert list(p.time) == [120, 121, 122] and list(p.columns[:3]) == ["time", "target", "forecast"]
    assert fc.predict(origin=100).actual.notna().all()  # from inside the series: the actual values are known
    m = fc.evaluate(baselines=())
    assert {"mae", "smape", "mase", "coverage80", "origins"} <= set(m) and m["baselines"] == {}
    assert m["origins"] == 4  # the test part (24 steps) holds 4 non-overlapping forecasts of 6
    assert not list(tmp_path.iterdir())  # nothing written without out=
    with pytest.raises(UserError, match="1 to 6 steps"):
        fc.predict(7)


def test_dataframe_with_covariates_and_their_future():
    s = _monthly(100)
    c = np.random.default_rng(1).normal(size=106)
    idx = pd.date_range("2000-01", periods=106, freq="MS")
    df = pd.DataFrame({"month": idx.strftime("%Y-%m"), "sales": np.r_[s.to_numpy() + 0.5 * c[:100], [np.nan] * 6],
                       "promo": c})  # the first column holds the times, as in a CSV
    fc = Forecaster.fit(df, target="sales", covariates="promo", calendar=True, **TINY, **QUIET)
    assert fc.data["covariates"] == ["promo"] and fc.model.cfg.covariates == 3
    p = fc.predict()
    assert p.time.iloc[0] == pd.Timestamp("2008-05-01") and p.forecast.notna().all()


def _csv(path, s):
    path.write_text("month,sales\n" + "".join(f"{t:%Y-%m},{v:.5f}\n" for t, v in s.items()))
    return path


def test_checkpoint_holds_its_series_predict_from_elsewhere_after_the_csv_is_gone(tmp_path, monkeypatch, capsys):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(work)
    _csv(work / "elec.csv", _monthly())
    assert main(["forecast", "train", "--data", "elec.csv", "--horizon", "6", "--lookback", "24", "--hidden", "8",
                 "--epochs", "2", "--save-every", "0", "--threads", "1", "--out", "fc/runs/elec"]) == 0
    results = json.loads((work / "fc/runs/elec/results.json").read_text())
    assert {"best_dev_mae_scaled", "test_start", "steps"} <= set(results)
    assert (work / "fc/runs/elec/run.yaml").is_file()
    capsys.readouterr()
    assert main(["forecast", "predict", "--model", "fc/runs/elec", "--json"]) == 0
    want = capsys.readouterr().out
    (work / "elec.csv").unlink()
    monkeypatch.chdir(elsewhere)
    model = str(work / "fc/runs/elec")
    assert main(["forecast", "predict", "--model", model, "--json"]) == 0
    assert capsys.readouterr().out == want and json.loads(want.splitlines()[0])["time"] == "2010-01-01"
    assert main(["forecast", "eval", "--model", model, "--backtest", "2", "--baselines", "naive", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["origins"] == 2
    fc = seqlab.load(model)
    assert fc.series.n == 120 and fc.data["data"] == "elec.csv"


def test_old_checkpoints_without_a_stored_series_reread_the_file(tmp_path):
    data = _csv(tmp_path / "s.csv", _monthly())
    fc = Forecaster.fit(data, **{**TINY, "epochs": 1}, **QUIET)
    want = fc.predict()
    fc.save(tmp_path / "m")
    vocab = tmp_path / "m" / "vocab.json"
    v = json.loads(vocab.read_text())
    del v["series"]
    vocab.write_text(json.dumps(v))
    old = Forecaster.load(tmp_path / "m")
    assert old.series is None
    pd.testing.assert_frame_equal(old.predict(), want)


def test_config_round_trips_and_names_bad_parameters():
    cfg = ForecastConfig().with_values(horizon=6, lookback=24, log_scale=True, time="90s")
    assert cfg.model.horizon == 6 and cfg.data.log_scale and cfg.train.time == 1.5
    assert ForecastConfig.from_yaml(cfg.to_yaml()) == cfg
    assert ForecastConfig().train.batch == 32 and ForecastConfig().train.patience == 20
    with pytest.raises(ConfigError, match=r"model\.horizon must be at least 1"):
        ForecastConfig().with_values(horizon=0).validate()
    with pytest.raises(ConfigError, match=r"data\.fill must be one of"):
        ForecastConfig().with_values(fill="guess").validate()
    with pytest.raises(ConfigError, match=r"horizn is not a setting"):
        Forecaster.fit([1.0] * 50, horizn=3)


def test_lookback_from_the_data_lets_a_short_series_train(capsys):
    """6 years of monthly data, a 12-step horizon: a fixed lookback of 36 could not train at all."""
    lines = []
    std = {"network": "standard", "hidden": 8, "threads": 1, "save_every": 0}
    fc = Forecaster.fit(_monthly(72), horizon=12, epochs=2, log=lines.append, **std)
    assert fc.lookback == 23  # three seasons would be 36; 46 training steps leave room for 23 + 12 windows
    assert any("lookback 23 (3 seasons of 12 would be 36" in line for line in lines)
    assert len(fc.predict()) == 12
    long = Forecaster.fit(_monthly(240), horizon=12, epochs=1, **std, **QUIET)
    assert long.lookback == 36  # a long monthly series: three seasons
    quarterly = pd.Series(np.arange(60.0) % 4 + 10, index=pd.date_range("2000-01", periods=60, freq="QS"))
    q = Forecaster.fit(quarterly, horizon=8, epochs=1, **std, **QUIET)
    assert q.lookback == 12 and q.data["season"] == 4
    # the scaled network (the default here) reads two horizons, at least a season and a step, within the room
    lines.clear()
    sc = Forecaster.fit(_monthly(72), horizon=12, hidden=8, epochs=1, threads=1, save_every=0, log=lines.append)
    assert sc.data["network"] == "scaled" and sc.lookback == 24
    assert any("lookback 24 (2 horizons of 12, at least a season of 12 + 1)" in line for line in lines)
    short = Forecaster.fit(_monthly(48), horizon=12, hidden=8, epochs=1, threads=1, save_every=0, **QUIET)
    assert short.lookback == 36 - 12 - 11  # 36 training steps: a lookback of 13 leaves 12 windows
    assert len(sc.predict()) == 12 and len(short.predict()) == 12


def test_default_eval_fits_the_test_part_the_defaults_chose(tmp_path, capsys):
    """A quarterly series: the test part holds one 8-step forecast; `forecast eval` with no flags
    (the command `train` prints) must backtest it rather than ask for --backtest 1."""
    csv = tmp_path / "q.csv"
    t = pd.date_range("1990-01", periods=48, freq="QS")
    csv.write_text("quarter,value\n" + "".join(f"{d:%Y-%m-%d},{10 + i % 4 + 0.1 * i}\n" for i, d in enumerate(t)))
    out = tmp_path / "run"
    assert main(["forecast", "train", "--data", str(csv), "--target", "value", "--horizon", "8", "--hidden", "8",
                 "--epochs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["forecast", "eval", "--model", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["origins"] >= 1
