"""Many series, one model: long and wide panels, windows across series, per-window scaling, the
global forecaster's fit -> save -> load -> predict round trip (API and CLI) and its evaluation."""

import json

import numpy as np
import pandas as pd
import pytest

import seqlab
from seqlab.cli import main
from seqlab.data.panel import gather_windows, panel_origins, read_panel
from seqlab.errors import UserError
from seqlab.models.global_forecaster import GlobalForecaster
from seqlab.pipelines.forecast_many import ManyForecaster

QUIET = {"log": lambda s: None}
TINY = {"horizon": 4, "lookback": 12, "hidden": 8, "epochs": 2, "batch": 64, "ensemble": 2, "threads": 1,
        "save_every": 0}


def _long(n_series=4, n=40, seed=0) -> pd.DataFrame:
    """Monthly series of different levels, lengths and starts (long format, shuffled rows)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        m = n - 3 * i
        t = np.arange(m)
        y = (10 + 5 * i) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 0.2, m) + 0.1 * t
        parts.append(pd.DataFrame({"series": f"s{i}", "date": pd.date_range(f"200{i}-01", periods=m, freq="MS")
                                   .strftime("%Y-%m-%d"), "value": y, "kind": "ab"[i % 2]}))
    return pd.concat(parts).sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_long_panel_sorted_per_series_with_own_starts_and_static_columns(tmp_path):
    df = _long()
    df.to_csv(tmp_path / "p.csv", index=False)
    p = read_panel(tmp_path / "p.csv", id_col="series", time_col="date", target="value", static_cols="kind")
    assert p.ids == ["s0", "s1", "s2", "s3"] or sorted(p.ids) == ["s0", "s1", "s2", "s3"]
    i = p.ids.index("s2")
    want = df[df.series == "s2"].sort_values("date").value.to_numpy()
    assert np.allclose(p.values[i], want) and p.starts[i] == "2002-01-01"
    assert p.freq == "MS" and p.season == 12 and p.static_names == ["kind=a", "kind=b"]
    assert p.static[p.ids.index("s1")].tolist() == [0.0, 1.0]
    assert p.times(i, len(want), 2) == [str(pd.Timestamp("2002-01-01") + pd.DateOffset(months=len(want) + k))[:10]
                                        for k in range(2)]


def test_wide_panel_each_column_its_own_span(tmp_path):
    (tmp_path / "w.csv").write_text("date,A,B\n2020-01-01,1,\n2020-02-01,2,5\n2020-03-01,3,6\n2020-04-01,4,\n")
    p = read_panel(tmp_path / "w.csv", wide=True)
    assert p.ids == ["A", "B"] and [v.tolist() for v in p.values] == [[1, 2, 3, 4], [5, 6]]
    assert p.starts == ["2020-01-01", "2020-02-01"]
    q = read_panel(pd.read_csv(tmp_path / "w.csv", dtype=str, keep_default_na=False).drop(columns="date"), wide=True,
                   no_time=True)
    assert q.starts == ["0", "1"] and q.times(1, 2, 2) == ["3", "4"]


@pytest.mark.parametrize("kw, says", [
    ({"id_col": "store"}, "no column 'store' (--id-col)"),
    ({"id_col": "series", "static_cols": "value"}, "changes within series"),
    ({}, "either --id-col"),
])
def test_bad_panels_are_one_line_errors(tmp_path, kw, says):
    _long().to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(UserError, match=says.replace("(", r"\(").replace(")", r"\)")):
        read_panel(tmp_path / "p.csv", time_col="date", target="value", **kw)


def test_a_gap_inside_a_series_names_it(tmp_path):
    df = _long()
    df = df.drop(df[(df.series == "s1") & (df.date == "2001-05-01")].index)
    df.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(UserError, match="series 's1' is not evenly spaced"):
        read_panel(tmp_path / "p.csv", id_col="series", time_col="date", target="value")


def test_a_series_too_short_for_lookback_and_horizon_is_named():
    df = _long()
    short = pd.DataFrame({"series": "tiny", "date": pd.date_range("2000-01", periods=10, freq="MS")
                          .strftime("%Y-%m-%d"), "value": np.arange(10.0) + 1, "kind": "a"})
    with pytest.raises(UserError, match="series 'tiny' has 6 training steps, fewer than min_history"):
        ManyForecaster.fit(pd.concat([df, short]), id_col="series", time_col="date", target="value", **TINY, **QUIET)
    # with padded windows (min_history below lookback) it trains
    fc = ManyForecaster.fit(pd.concat([df, short]), id_col="series", time_col="date", target="value",
                            min_history=2, **TINY, **QUIET)
    assert set(fc.predict().id) == {"s0", "s1", "s2", "s3", "tiny"}


def test_windows_pad_a_short_history_and_stop_at_the_end():
    p = read_panel(pd.DataFrame({"id": ["a"] * 5 + ["b"] * 3, "y": [1, 2, 3, 4, 5, 7, 8, 9]}), id_col="id",
                   no_time=True, target="y")
    s, o = panel_origins(p.lengths, p.lengths, np.array([1, 1]), 2)
    assert list(zip(s.tolist(), o.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 1)]
    x, obs, y = gather_windows(p, np.array([1, 0]), np.array([1, 4]), 3, 2)
    assert x.tolist() == [[7, 7, 7], [2, 3, 4]] and obs.tolist() == [[0, 0, 1], [1, 1, 1]]
    assert y[0].tolist() == [8, 9] and y[1, 0] == 5 and np.isnan(y[1, 1])


def test_scaling_one_series_by_1000_scales_its_forecast_by_1000():
    df = _long()
    fc = ManyForecaster.fit(df, id_col="series", time_col="date", target="value", **TINY, **QUIET)
    base = fc.predict(df.drop(columns="kind"))
    big = df.assign(value=np.where(df.series == "s2", df.value * 1000, df.value))
    scaled = fc.predict(big)
    b, s = base.set_index(["id", "step"]), scaled.set_index(["id", "step"])
    assert np.allclose(s.loc["s2", "mean"], 1000 * b.loc["s2", "mean"], rtol=1e-4)
    assert np.allclose(s.loc["s2", "hi95"] - s.loc["s2", "lo95"], 1000 * (b.loc["s2", "hi95"] - b.loc["s2", "lo95"]),
                       rtol=1e-4)
    assert np.allclose(s.loc["s0", "mean"], b.loc["s0", "mean"])


def test_training_batches_mix_series(monkeypatch):
    seen = []
    forward = GlobalForecaster.forward

    def spy(self, x, observed, static=None, ids=None):
        if self.training:
            seen.append(len(set(ids.tolist())))
        return forward(self, x, observed, static, ids)

    monkeypatch.setattr(GlobalForecaster, "forward", spy)
    ManyForecaster.fit(_long(), id_col="series", time_col="date", target="value", **TINY, **QUIET)
    assert seen and max(seen) == 4  # one forward call reads windows of every series


def test_fit_save_load_predict_evaluate_round_trip(tmp_path):
    fc = ManyForecaster.fit(_long(), id_col="series", time_col="date", target="value", id_embed=3,
                            static_cols="kind", out=tmp_path / "run", **TINY, **QUIET)
    p = fc.predict()
    assert list(p.columns) == ["id", "time", "step", "mean", "lo80", "hi80", "lo95", "hi95"]
    assert len(p) == 4 * 4 and (p.lo95 <= p.lo80).all() and (p.lo80 <= p["mean"]).all()
    back = seqlab.load(tmp_path / "run")
    assert isinstance(back, ManyForecaster)
    pd.testing.assert_frame_equal(back.predict(), p)
    r = back.evaluate()
    assert set(r["aggregate"]) == {"seqlab", "naive", "seasonal_naive", "theta"} and r["origins"] == 4
    assert len(r["per_series"]) == 4 * 4 and 0 <= r["aggregate"]["seqlab"]["coverage95"] <= 1
    only_a = _long().replace({"kind": {"b": "a"}})  # one category fewer: still the model's two columns
    assert len(back.predict(only_a)) == 16
    with pytest.raises(UserError, match="trained with the static covariates kind=a, kind=b"):
        back.predict(_long().replace({"kind": {"b": "c"}}))
    with pytest.raises(UserError, match="series 'new' was not in training"):
        back.predict(_long().replace({"series": {"s0": "new"}}))
    with pytest.raises(UserError, match="series 'new' has two rows for 2001-01-01"):
        back.predict(_long().assign(series="new"))


def test_cli_train_eval_predict_wide(tmp_path, capsys):
    df = _long().pivot(index="date", columns="series", values="value").reset_index()
    df.to_csv(tmp_path / "w.csv", index=False)
    run = str(tmp_path / "run")
    assert main(["forecast", "train", "--data", str(tmp_path / "w.csv"), "--wide", "--horizon", "4", "--lookback",
                 "12", "--hidden", "8", "--epochs", "2", "--threads", "1", "--save-every", "0", "--out", run]) == 0
    capsys.readouterr()
    assert main(["forecast", "eval", "--model", run, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["series"] == 4 and r["aggregate"]["seqlab"]["smape"] > 0
    assert main(["forecast", "predict", "--model", run, "--output", str(tmp_path / "f.csv")]) == 0
    f = pd.read_csv(tmp_path / "f.csv")
    assert sorted(f.id.unique()) == ["s0", "s1", "s2", "s3"] and len(f) == 16 and f["mean"].notna().all()


def test_cli_refuses_single_series_flags_and_bad_input(tmp_path, capsys):
    _long().to_csv(tmp_path / "p.csv", index=False)
    base = ["forecast", "train", "--data", str(tmp_path / "p.csv"), "--out", str(tmp_path / "r"), "--epochs", "1"]
    assert main(base + ["--id-col", "series", "--time-col", "date", "--target", "value", "--log"]) == 2
    assert "--log is a setting of one-series forecasting" in capsys.readouterr().err
    assert main(base + ["--id-col", "shop"]) == 2
    assert "no column 'shop' (--id-col)" in capsys.readouterr().err


def test_evaluate_scores_the_forecast_from_each_series_test_start():
    df = _long()
    fc = ManyForecaster.fit(df, id_col="series", time_col="date", target="value", **TINY, **QUIET)
    r = fc.evaluate(baselines=("naive",))
    cut = fc.panel.head(fc.panel.lengths - 4)  # what was known at each series' test start
    p = fc.predict(cut)
    for row in (x for x in r["per_series"] if x["method"] in ("seqlab", "naive")):
        i = fc.panel.ids.index(row["id"])
        y = fc.panel.values[i][-4:]
        seqlab_f = p[p.id == row["id"]]["mean"].to_numpy()
        f = seqlab_f if row["method"] == "seqlab" else np.repeat(cut.values[i][-1], 4)
        assert row["smape"] == pytest.approx(100 * np.mean(2 * np.abs(y - f) / (np.abs(y) + np.abs(f))))


def test_seasonal_indices_find_a_multiplicative_season_and_leave_noise_alone():
    from seqlab.forecast.seasonal import seasonal_indices

    t = np.arange(96)
    pattern = 1 + 0.3 * np.sin(2 * np.pi * t[:12] / 12)
    y = (100 + t) * pattern[t % 12]
    idx = seasonal_indices(y, 12)
    assert np.allclose(idx, pattern / pattern.mean(), atol=0.01)
    noise = np.random.default_rng(0).normal(100, 1, 96)
    assert (seasonal_indices(noise, 12) == 1).all() and (seasonal_indices(y[:30], 12) == 1).all()


def test_a_later_start_of_a_training_series_uses_its_indices_shifted():
    from seqlab.data.panel import steps_between

    assert steps_between("2000-01-01", "2000-04-01", "MS") == 3 and steps_between("5", "3", None) is None
    df = _long()
    fc = ManyForecaster.fit(df, id_col="series", time_col="date", target="value", **TINY, **QUIET)
    assert fc.data["seasonal"] is not None
    late = df[df.date >= "2001-03-01"]  # every series starts later: the same forecasts from the same end
    a, b = fc.predict(df.drop(columns="kind")), fc.predict(late.drop(columns="kind"))
    s0 = fc.panel.ids.index("s0")
    assert np.allclose(fc.indices_for(fc.panel_for(late.drop(columns="kind")))[s0],
                       np.roll(fc.indices_for(fc.panel)[s0], -14))
    assert np.allclose(a["mean"], b["mean"], rtol=1e-5)
