"""Combination rules for the single-series defaults, compared on the same networks and classical fits.

    .venv/bin/python benchmarks/combine_rules.py --m3-sample 30 [--sample-seed 0] [--out runs/combine_rules]
    .venv/bin/python benchmarks/combine_rules.py --series air,co2,...      # forecast_table's series

For each series, `Forecaster.fit` with its defaults (but `combine="none"`, Gaussian intervals: the point
forecast of the network is the same, the training is faster) chooses the season, log scale, lookback and
test part; the network and ETS, ARIMA and Theta (refitted at every origin) forecast from the test origins
of `forecast_table.py --defaults` (every horizon from the test start). The rules then combine the cached
forecasts (in the model's scaled units, as `combine.average` does), so every rule sees the same members:

  net               the network alone
  best2+net         today's default: the network and the two classical models of lowest validation MAE
  all3+net          the network and all three
  median4           the median of the network and all three
  best2             the two classical models alone (no network)
  all3              the three classical models alone
  ets, arima, theta each alone

Score: geometric mean over series of MASE / MASE(seasonal naive), and the count of series where a rule
beats seasonal naive. Cache: OUT/<series>.npz (delete it after changing a series or the network).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import forecast_table as ft  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def members(name: str, out: Path, seed: int) -> dict:
    """{y (origins, horizon), net, ets, arima, theta, snaive (origins, horizon) in the series' units, scale
    (the in-sample seasonal naive MAE: MASE's denominator), errors (validation MAE of the three), log (the
    scale the members are pooled in)} for one series (cached)."""
    path = out / (name.replace(":", "_") + ".npz")
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return {k: z[k] for k in z.files}
    from seqlab.forecast import combine
    from seqlab.forecast.backtest import baseline_forecasts, rolling_origins
    from seqlab.pipelines import Forecaster

    data, horizon, extra = ft.series_of(name)
    fc = Forecaster.fit(data, horizon=horizon, threads=1, save_every=0, log=lambda *_: None, seed=seed,
                        combine="none", intervals="gaussian", **extra)
    s, _ = fc.series_for(None)
    H, season, ts = fc.horizon, fc.data["season"], fc.data["test_start"]
    origins = rolling_origins(s.n, H, None, H, ts, ts, s.label)
    net = fc.scaler.inverse(fc.raw(s, origins)[0])[..., 0]
    cl = combine.classical(s.values, origins, H, season, fc.scaler.log, combine.CLASSICAL)[..., 0]
    sn = baseline_forecasts("seasonal_naive", s.values, origins, H, season, fc.scaler.log).mean[..., 0]
    errors = combine.validation_errors(s.values[:ts], H, season, fc.scaler.log)
    y = s.values[origins[:, None] + np.arange(H)[None, :], 0]
    train = s.values[:ts, 0]
    scale = float(np.mean(np.abs(train[season:] - train[:-season])))
    r = {"y": y, "net": net, "ets": cl[0], "arima": cl[1], "theta": cl[2], "snaive": sn,
         "errors": np.array([errors.get(m, np.nan) for m in combine.CLASSICAL]), "scale": np.array(scale),
         "log": np.array(fc.scaler.log)}
    np.savez(path, **r)
    return r


def rules(m: dict) -> dict[str, np.ndarray]:
    """{rule: forecast (origins, horizon) in series units}, pooled in log units for a log series (the
    standardisation of the scaled units is affine, so it does not change a mean or a median)."""
    log = bool(m["log"])
    fwd = (lambda v: np.log(np.maximum(v, 1e-300))) if log else (lambda v: v)
    inv = np.exp if log else (lambda v: v)
    names = ("ets", "arima", "theta")
    err = m["errors"]
    best2 = names if np.isnan(err).any() else tuple(n for i, n in enumerate(names) if i in np.argsort(err)[:2])

    def mean_of(keys):
        return inv(np.nanmean(np.stack([fwd(m[k]) for k in keys]), 0))

    return {"net": m["net"], "best2+net": mean_of(("net", *best2)), "all3+net": mean_of(("net", *names)),
            "median4": inv(np.nanmedian(np.stack([fwd(m[k]) for k in ("net", *names)]), 0)),
            "best2": mean_of(best2), "all3": mean_of(names), "ets": m["ets"], "arima": m["arima"],
            "theta": m["theta"], "snaive": m["snaive"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--m3-sample", type=int, default=0, help="N random M3 series per frequency (N/2 'other')")
    p.add_argument("--sample-seed", type=int, default=0, help="which random M3 sample")
    p.add_argument("--series", default=None, help="comma-separated forecast_table series instead")
    p.add_argument("--seed", type=int, default=1, help="training seed")
    p.add_argument("--out", default=str(ROOT / "runs" / "combine_rules"))
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    names = a.series.split(",") if a.series else ft.m3_sample(a.m3_sample, a.sample_seed)
    table: dict[str, dict[str, list[float]]] = {}
    for name in names:
        try:
            m = members(name, out, a.seed)
        except ImportError as e:
            print(f"{name}: skipped ({e})", file=sys.stderr)
            continue
        group = "all"
        if name.startswith("m3:"):
            i = int(name[4:])
            group = "yearly" if i <= 645 else "quarterly" if i <= 1401 else "monthly" if i <= 2829 else "other"
        f = rules(m)
        base = np.mean(np.abs(f["snaive"] - m["y"]))
        for g in {group, "all"}:
            for k, v in f.items():
                table.setdefault(g, {}).setdefault(k, []).append(np.mean(np.abs(v - m["y"])) / max(base, 1e-12))
        print(f"{name}: " + " ".join(f"{k} {np.mean(np.abs(v - m['y'])) / m['scale']:.2f}" for k, v in f.items()),
              file=sys.stderr, flush=True)
    for g, t in sorted(table.items(), key=lambda kv: kv[0] != "all"):
        n = len(t["net"])
        print(f"{g} ({n} series): " + ", ".join(
            f"{k} {np.exp(np.mean(np.log(np.maximum(v, 1e-9)))):.3f} ({sum(x < 1 for x in v)})" for k, v in t.items()))


if __name__ == "__main__":
    main()
