"""Network recipes for short series, scored alone and inside the default combination, on the same origins.

    .venv/bin/python benchmarks/forecast_recipes.py [--recipes forecaster,global] [--seeds 1,2,3]
                                                    [--only air,co2] [--out runs/forecast_recipes]

The short series of forecast_table.py (the four of its six `--defaults` series that are combined:
AirPassengers, CO2, El Nino, Nile; the temperatures and sunspots train the network alone) and its eight
`--check-set` series. For each series:
  1. `Forecaster.fit` with its defaults chooses the season, the log scale and the test part (the last 20%);
  2. ETS, ARIMA and Theta are refitted at every test origin (cached in OUT/classical/SERIES.npz) and
     ranked on the training part's last horizons exactly as the default combination ranks them
     (combine.validation_errors, as the default combination then did);
  3. each recipe's network forecasts from the same origins, alone and averaged with the two classical
     models ranked best (in the Forecaster's scaled units, combine.pool's rule "mean"): the default
     combination when the README's recipe table was measured; the default is now the median of the
     network and all three (benchmarks/combine_rules.py compares the two rules).
Scores: MASE / MASE(best of ETS, ARIMA, Theta chosen per series afterwards), their geometric mean per set
("six" adds the two long series at their `--defaults` figures, LONG, which no recipe here changes),
with origins every `horizon` steps (forecast_table's protocol: 1 to 12 forecasts per series) and every
step (stride 1: 3 to 12 times as many). No conformal calibration (it does not change the point forecast).

Recipes (the network only; the classical members are the same for all):
  forecaster        Forecaster.fit's defaults (since the scaled network became the default for these
                    series: the global-gaussian recipe inside Forecaster)
  forecaster-standard  Forecaster.fit's defaults with network="standard" (the defaults before: LSTM 64,
                    window norm season or last as the defaults choose, calendar features, Gaussian head,
                    ensemble 5, early stopping on the dev part)
  global            ManyForecaster on the one series, the M3 table's recipe adapted to it: divided by
                    classical seasonal indices, windows scaled by their mean |value|, 3 GRUs (median), MAE
                    loss, lr 5e-3, cosine over 100 epochs (not a time budget), batch 32 (not 256), its
                    default lookback (2 horizons, at least a season + 1) and no padded windows, no dev part
  global-gaussian   the same trained by Gaussian likelihood
  global-raw        `global` without the seasonal indices
  global-gaussian-dev  `global-gaussian` early-stopped on a 12-step dev part (patience 20)
The classical forecasts are cached per series name: delete OUT/classical after changing a series or horizon.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import forecast_table as ft  # noqa: E402  (the series and their loaders)

ROOT = Path(__file__).resolve().parents[1]
SIX = ["air", "co2", "elnino", "nile"]
CHECK = list(ft.CHECK)
GLOBAL = {"epochs": 100, "batch": 32, "ensemble": 3, "lr": 5e-3, "schedule": "cosine"}
RECIPES = {"forecaster": None, "forecaster-standard": None, "global": {}, "global-gaussian": {"loss": "gaussian"},
           "global-raw": {"deseason": False}, "global-gaussian-dev": {"loss": "gaussian", "dev": 12, "patience": 20}}
LONG = {"temperatures": 0.99, "sunspots-monthly": 0.86}  # forecast_table.py --defaults: the network alone there


def classical(name: str, out: Path) -> dict:
    """The defaults' choices and the classical forecasts at both sets of test origins (cached)."""
    from seqlab.forecast import combine
    from seqlab.pipelines import Forecaster

    path = out / "classical" / f"{name}.npz"
    if path.exists():
        z = np.load(path)
        return {k: z[k] for k in z.files} | {"verr": json.loads(str(z["verr"])), "scaler": json.loads(str(z["scaler"]))}
    data, H, extra = ft.series_of(name)
    pipe = Forecaster.fit(data, horizon=H, threads=1, save_every=0, log=lambda *_: None, combine="none",
                          intervals="gaussian", epochs=1, ensemble=1, **extra)
    d, v = pipe.data, pipe.series.values
    ts, season, log = d["test_start"], d["season"], bool(d["log_scale"])
    r = {"values": v, "test_start": ts, "season": season, "H": H, "log": log,
         "verr": combine.validation_errors(v[:ts], H, season, log), "scaler": pipe.scaler.to_json()}
    for key, stride in (("h", H), ("1", 1)):
        o = np.arange(ts, len(v) - H + 1, stride)
        r[f"origins{key}"] = o
        r[f"classical{key}"] = combine.classical(v, o, H, season, log, combine.CLASSICAL)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: (json.dumps(x) if k in ("verr", "scaler") else x) for k, x in r.items()})
    return r


def network(recipe: str, name: str, c: dict, seed: int) -> dict:
    """{stride key: the recipe's forecasts (origins, horizon, 1) in the series' units}."""
    H = int(c["H"])
    if RECIPES[recipe] is None:
        from seqlab.pipelines import Forecaster

        data, _, extra = ft.series_of(name)
        if recipe == "forecaster-standard":
            extra = {**extra, "network": "standard"}
        pipe = Forecaster.fit(data, horizon=H, threads=1, save_every=0, log=lambda *_: None, combine="none",
                              intervals="gaussian", seed=seed, **extra)
        assert pipe.data["test_start"] == int(c["test_start"])
        return {k: pipe.forecast(pipe.series, c[f"origins{k}"]).mean for k in ("h", "1")}
    from seqlab.pipelines.forecast_many import ManyForecaster

    v, ts = c["values"][:, 0], int(c["test_start"])
    fc = ManyForecaster.fit(pd.DataFrame({"series": "a", "value": v[:ts]}), id_col="series", target="value",
                            horizon=H, test=0, season=int(c["season"]), no_time=True, threads=1,
                            log=lambda *_: None, save_every=0, seed=seed, **{**GLOBAL, **RECIPES[recipe]})
    full = fc.panel_for(pd.DataFrame({"series": "a", "value": v}))
    out = {}
    for k in ("h", "1"):
        o = c[f"origins{k}"]
        out[k] = fc.forecast(full, np.zeros(len(o), dtype=int), o)[0][..., None]
    return out


def ratios(c: dict, net: dict) -> dict:
    """{"alone"/"combined" + stride key: MASE / MASE(best classical)}."""
    from seqlab.data.timeseries import Scaler
    from seqlab.forecast import combine
    from seqlab.metrics.forecast import mase, mase_scale

    sc = Scaler.from_json(c["scaler"])
    v, H, ts = c["values"], int(c["H"]), int(c["test_start"])
    verr = c["verr"]
    kept = sorted(combine.CLASSICAL, key=lambda m: verr[m])[:2] if verr else list(combine.CLASSICAL)
    rows = [i for i, m in enumerate(combine.CLASSICAL) if m in kept]
    scale = mase_scale(v[:ts], int(c["season"]))
    out = {}
    for k in ("h", "1"):
        o, other = c[f"origins{k}"], c[f"classical{k}"]
        y = v[o[:, None] + np.arange(H)[None, :]]
        score = lambda f, y=y: mase(y, f, scale)  # noqa: E731
        best = min(score(f) for f in other)
        both = sc.inverse(combine.pool(sc.transform(net[k]), other[rows], sc, "mean"))
        out[f"alone{k}"], out[f"combined{k}"] = score(net[k]) / best, score(both) / best
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default="forecaster,global", help=f"comma-separated of {','.join(RECIPES)}")
    p.add_argument("--seeds", default="1", help="training seeds, e.g. 1,2,3")
    p.add_argument("--only", default=None, help="comma-separated series (default: the 4 + 8)")
    p.add_argument("--out", default=str(ROOT / "runs" / "forecast_recipes"))
    a = p.parse_args()
    import torch

    torch.set_num_threads(1)
    out = Path(a.out)
    names = a.only.split(",") if a.only else SIX + CHECK
    path = out / "results.json"
    out.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    for recipe in a.recipes.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            key = f"{recipe} seed {seed}"
            for name in names:
                t = time.perf_counter()
                try:
                    c = classical(name, out)
                    results.setdefault(key, {})[name] = ratios(c, network(recipe, name, c, seed))
                except ImportError as e:  # pmdarima's series without pmdarima
                    print(f"{name}: skipped ({e})", file=sys.stderr)
                    continue
                path.write_text(json.dumps(results, indent=2) + "\n")
                print(f"{key} {name} {time.perf_counter() - t:.0f}s "
                      + " ".join(f"{m}={x:.3f}" for m, x in results[key][name].items()), file=sys.stderr, flush=True)
    print("| recipe, seed | set | alone (stride horizon) | combined (stride horizon) | alone (stride 1) "
          "| combined (stride 1) |")
    print("|---|---|---|---|---|---|")
    for key, r in results.items():
        for label, group in (("the four short series of the six", SIX), ("six (+ LONG)", SIX), ("check set", CHECK)):
            have = [n for n in group if n in r]
            if not have or (label.startswith("six") and len(have) < len(SIX)):
                continue
            extra = [np.log(x) for x in LONG.values()] if label.startswith("six") else []
            g = {m: float(np.exp(np.mean([np.log(r[n][m]) for n in have] + extra))) for m in r[have[0]]}
            count = f"{len(have)} + {len(LONG)}" if extra else str(len(have))
            print(f"| {key} | {label} ({count}) | {g['aloneh']:.3f} | {g['combinedh']:.3f} | {g['alone1']:.3f} "
                  f"| {g['combined1']:.3f} |")


if __name__ == "__main__":
    main()
