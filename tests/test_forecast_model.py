"""The recurrent forecaster: shapes, fitting a sine, calibrated intervals, the CLI round trip."""

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.cli import main
from seqlab.data.timeseries import TimeSeries
from seqlab.models.encoder import EncoderConfig
from seqlab.models.forecaster import Forecaster, ForecasterConfig
from seqlab.pipelines.forecast import Forecaster as ForecastPipeline
from seqlab.train.checkpoint import save_checkpoint
from seqlab.train.trainer import TrainConfig

FAST = ["--save-every", "0", "--threads", "1", "--dev", "0", "--batch", "32"]


def write_series(path, values, covs=None, future_covs=None):
    n = len(values) + (len(future_covs) if future_covs is not None else 0)
    times = pd.date_range("1990-01", periods=n, freq="MS").strftime("%Y-%m")
    lines = ["month,y" + (",c" if covs is not None else "")]
    for i, t in enumerate(times):
        v = f"{values[i]:.6f}" if i < len(values) else ""
        c = "" if covs is None else f",{(covs if i < len(values) else future_covs)[i % len(values)]:.4f}"
        lines.append(f"{t},{v}{c}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("decoder, norm, ensemble", [("direct", "last", 1), ("seq2seq", "season", 2),
                                                     ("direct", "mean", 3)])
def test_forecaster_shapes_and_teacher_forcing(decoder, norm, ensemble):
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=0, input_dim=2 + 3, hidden=8, cell="gru")
    cfg = ForecasterConfig(enc, targets=2, covariates=3, horizon=5, decoder=decoder, window_norm=norm,
                           teacher_forcing=0.5, season=4, ensemble=ensemble)
    model = Forecaster(cfg)
    x, fut, y = torch.randn(7, 12, 5), torch.randn(7, 5, 3), torch.randn(7, 5, 2)
    out = model(x, fut, y)
    assert out.mean.shape == out.scale.shape == (7, 5, 2) and (out.scale > 0).all()
    assert out.members_mean.shape == (ensemble, 7, 5, 2)
    model.loss(out, y).backward()
    model.eval()
    a, b = model(x, fut, y).mean, model(x, fut).mean  # at inference the true values are never read
    torch.testing.assert_close(a, b)
    cfg = ForecasterConfig(EncoderConfig(vocab_size=0, input_dim=2, hidden=8, bidirectional=True), targets=2,
                           decoder="seq2seq")
    with pytest.raises(ValueError, match="unidirectional"):
        Forecaster(cfg)


def test_fits_a_pure_sine_with_near_zero_error(tmp_path, capsys):
    t = np.arange(240)
    y = np.sin(2 * np.pi * t / 12)
    out = tmp_path / "sine"
    assert main(["forecast", "train", "--data", str(write_series(tmp_path / "s.csv", y)), "--test", "36",
                 "--horizon", "6", "--lookback", "24", "--hidden", "16", "--epochs", "60", "--batch", "64",
                 "--likelihood", "none", "--window-norm", "none", "--schedule", "cosine", "--lr", "2e-2",
                 "--out", str(out), "--save-every", "0", "--threads", "1", "--dev", "0"]) == 0
    capsys.readouterr()
    assert main(["forecast", "eval", "--model", str(out), "--backtest", "6", "--baselines", "", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]["rnn"]
    assert res["mae"] < 0.02, res  # amplitude 1; the naive forecast is off by 0.6 on average


def test_80_percent_intervals_cover_about_80_percent(tmp_path, capsys):
    rng = np.random.default_rng(0)
    t = np.arange(600)
    y = np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, len(t))  # known noise: sd 0.3
    out = tmp_path / "noisy"
    assert main(["forecast", "train", "--data", str(write_series(tmp_path / "n.csv", y)), "--test", "150",
                 "--horizon", "3", "--lookback", "24", "--hidden", "16", "--epochs", "15", "--lr", "1e-2",
                 "--window-norm", "none", "--out", str(out), *FAST]) == 0
    capsys.readouterr()
    assert main(["forecast", "eval", "--model", str(out), "--backtest", "148", "--stride", "1",
                 "--baselines", "", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]["rnn"]
    assert 0.65 <= res["coverage80"] <= 0.95, res
    assert res["coverage95"] > res["coverage80"] and res["rmse"] < 0.4, res  # not just wide: near the noise


def test_train_eval_predict_round_trip_with_covariates(tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 150
    c = rng.normal(size=n + 6)
    y = 20 + np.sin(2 * np.pi * np.arange(n) / 12) + 0.5 * c[:n]
    data = write_series(tmp_path / "c.csv", y, covs=c[:n], future_covs=c[n:])
    out = tmp_path / "run"
    assert main(["forecast", "train", "--data", str(data), "--target", "y", "--covariates", "c", "--calendar",
                 "--horizon", "6", "--lookback", "24", "--hidden", "16", "--epochs", "3", "--decoder", "seq2seq",
                 "--teacher-forcing", "0.5", "--out", str(out), *FAST]) == 0
    capsys.readouterr()
    assert main(["forecast", "eval", "--model", str(out), "--backtest", "2", "--baselines", "naive,seasonal_naive",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["results"]) == {"rnn", "naive", "seasonal_naive"} and res["origins"] == 2

    pipe = ForecastPipeline.load(out)
    assert pipe.data["covariates"] == ["c"] and pipe.data["calendar"] and pipe.model.cfg.covariates == 3
    save_checkpoint(tmp_path / "copy", pipe.model, pipe.meta(TrainConfig()))
    csv_out, png = tmp_path / "fc.csv", tmp_path / "fc.png"
    assert main(["forecast", "predict", "--model", str(tmp_path / "copy"), "--data", str(data), "--output",
                 str(csv_out), "--plot", str(png)]) == 0
    rows = list(csv.DictReader(csv_out.open()))
    assert [r["time"] for r in rows] == [f"2002-{m:02d}-01" for m in range(7, 13)]
    lo, mid, hi = (np.array([float(r[k]) for r in rows]) for k in ("lo95", "forecast", "hi95"))
    assert (lo < mid).all() and (mid < hi).all() and png.stat().st_size > 10_000
    from seqlab.pipelines.forecast import load_series

    s = load_series({**pipe.data, "data": str(data)})
    again = pipe.forecast(s, np.array([s.n])).mean[0, :, 0]
    np.testing.assert_allclose(again, mid, rtol=1e-5)

    # the future of a series never changes a forecast made before it
    origin = 120
    changed = TimeSeries(s.index, s.values.copy(), s.covariates, s.targets, s.covariate_names, s.freq, s.season,
                         s.source)
    changed.values[origin:] += 50
    np.testing.assert_array_equal(pipe.forecast(s, np.array([origin])).mean,
                                  pipe.forecast(changed, np.array([origin])).mean)
    changed.values[origin - 1] += 50
    assert not np.allclose(pipe.forecast(s, np.array([origin])).mean, pipe.forecast(changed, np.array([origin])).mean)

    short = write_series(tmp_path / "nofuture.csv", y, covs=c[:n])  # no future covariate rows
    assert main(["forecast", "predict", "--model", str(out), "--data", str(short)]) == 2
    assert "needs the covariates c" in capsys.readouterr().err


def test_eval_refuses_to_test_on_training_data(tmp_path, capsys):
    y = np.sin(np.arange(100) / 2) + 5
    out = tmp_path / "r"
    assert main(["forecast", "train", "--data", str(write_series(tmp_path / "s.csv", y)), "--test", "12",
                 "--horizon", "6", "--lookback", "12", "--hidden", "8", "--epochs", "1", "--out", str(out),
                 *FAST]) == 0
    capsys.readouterr()
    assert main(["forecast", "eval", "--model", str(out), "--backtest", "5"]) == 2
    assert "--backtest 2 or fewer" in capsys.readouterr().err
