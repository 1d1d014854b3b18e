"""M3 (3,003 series): one global seqlab model per frequency against statsforecast's Theta, AutoETS and
AutoARIMA, all on the competition's protocol (PROVENANCE.md of the data): fit on the first
`train_length` values of each series, forecast the last `horizon` once, score sMAPE (and MASE, seasonal
naive in-sample scale, m = 1/4/12/1).

    .venv/bin/python benchmarks/m3_table.py --baselines theta,ets,arima     # statsforecast, per series
    .venv/bin/python benchmarks/m3_table.py --seqlab                        # one global model per frequency
    .venv/bin/python benchmarks/m3_table.py --table                         # gather what is there

Run each through /work/heavy (one thread). Forecasts and timings go to <out>/<frequency>_<method>.npz
and .json, so the parts can run separately and `--table` combines them. The all-series average is over
every forecast point (the N-BEATS paper's "Average"; Theta's 13.01 is that figure).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
M3 = ROOT.parent / "shared" / "data" / "timeseries" / "m3"
FREQS = {"yearly": 1, "quarterly": 4, "monthly": 12, "other": 1}
PUBLISHED = {"Theta (published)": (16.90, 8.96, 13.85, 4.41, 13.01),
             "N-BEATS (published)": (15.93, 8.84, 13.11, 4.24, 12.37)}
BASELINES = ("theta", "ets", "arima")
NAMES = {"seqlab": "seqlab global GRU (this machine, 1 thread)", "theta": "statsforecast Theta",
         "ets": "statsforecast AutoETS", "arima": "statsforecast AutoARIMA"}

# the global model per frequency (horizon from the data): lookback 2 horizons, windows down to 1 horizon of
# history (padded), seasonal series deseasonalised (the default), a 3-member GRU ensemble (median), MAE
# loss, cosine schedule over `time` CPU minutes (yearly and other overfit when trained longer)
RECIPE = {"ensemble": 3, "lr": 5e-3, "schedule": "cosine"}
RECIPES = {
    "yearly": {"lookback": 12, "min_history": 6, "time": 0.5},
    "quarterly": {"lookback": 16, "min_history": 8, "time": 2},
    "monthly": {"lookback": 36, "min_history": 18, "time": 6},
    "other": {"lookback": 16, "min_history": 8, "time": 0.5},
}


def load(freq: str) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(train rows series,date,value; test rows; horizon) of one frequency."""
    info = pd.read_csv(M3 / "m3_info.csv")
    info = info[info.frequency == freq]
    df = pd.read_csv(M3 / f"m3_{freq}.csv.gz")
    step = df.groupby("series", sort=False).cumcount()
    n_train = df.series.map(info.set_index("series").train_length)
    return df[step < n_train], df[step >= n_train], int(info.horizon.iloc[0])


def scores(train: pd.DataFrame, test: pd.DataFrame, forecast: np.ndarray, season: int) -> dict:
    """sMAPE and MASE per series (in the order of `test`'s series) of forecast (series, horizon)."""
    from seqlab.metrics.forecast import mase_scale

    ids = list(dict.fromkeys(test.series))
    y = np.stack([g.value.to_numpy() for _, g in test.groupby("series", sort=False)])
    hist = {k: g.value.to_numpy() for k, g in train.groupby("series", sort=False)}
    scale = np.array([mase_scale(hist[k][:, None], season)[0] for k in ids])
    with np.errstate(divide="ignore", invalid="ignore"):
        sm = 200 * np.abs(y - forecast) / (np.abs(y) + np.abs(forecast))
    sm = np.where(np.isfinite(sm), sm, 0.0).mean(1)
    return {"smape": sm, "mase": (np.abs(y - forecast).mean(1) / scale)}


def run_baseline(freq: str, method: str) -> tuple[np.ndarray, float]:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, Theta

    train, _, H = load(freq)
    m = FREQS[freq]
    model = {"theta": lambda: Theta(season_length=m), "ets": lambda: AutoETS(season_length=m),
             "arima": lambda: AutoARIMA(season_length=m)}[method]()
    df = pd.DataFrame({"unique_id": train.series.to_numpy(), "ds": train.groupby("series", sort=False).cumcount(),
                       "y": train.value.to_numpy()})
    t = time.perf_counter()
    fc = StatsForecast(models=[model], freq=1, n_jobs=1).forecast(df=df, h=H)
    wall = time.perf_counter() - t
    col = [c for c in fc.columns if c not in ("unique_id", "ds")][0]
    order = list(dict.fromkeys(train.series))
    f = fc.set_index("unique_id").loc[order, col].to_numpy().reshape(len(order), H)
    return f, wall


def run_seqlab(freq: str, minutes: float | None, threads: int, log) -> tuple[np.ndarray, float]:
    from seqlab.pipelines.forecast_many import ManyForecaster

    train, _, H = load(freq)
    r = {**RECIPE, **RECIPES[freq]}
    if minutes:
        r["time"] = minutes
    t = time.perf_counter()
    fc = ManyForecaster.fit(train, id_col="series", time_col="date", target="value", horizon=H, test=0,
                            season=FREQS[freq], no_time=True, threads=threads, log=log, save_every=0, **r)
    wall = time.perf_counter() - t
    pred = fc.predict()
    order = list(dict.fromkeys(train.series))
    f = pred.pivot(index="id", columns="step", values="mean").loc[order].to_numpy()
    return f, wall


# pooled rows: the point-wise median of saved forecasts (of four: the mean of the middle two), as the
# single-series default pools the network with ETS, ARIMA and Theta (seqlab.forecast.combine)
POOLED = {"median4": ("seqlab", *BASELINES), "median3": BASELINES}
NAMES.update(median4="median of the seqlab GRU, Theta, AutoETS, AutoARIMA",
             median3="median of Theta, AutoETS, AutoARIMA")


def _forecast(out: Path, freq: str, method: str) -> tuple[np.ndarray | None, float]:
    """(forecast (series, horizon) or None when not run, wall seconds) of a method or a POOLED row."""
    parts = POOLED.get(method, (method,))
    paths = [out / f"{freq}_{m}.npz" for m in parts]
    if not all(p.exists() for p in paths):
        return None, 0.0
    f = np.stack([np.load(p)["forecast"] for p in paths])
    wall = sum(json.loads((out / f"{freq}_{m}.json").read_text())["wall_s"] for m in parts)
    return (np.median(f, 0) if len(parts) > 1 else f[0]), wall


def table(out: Path) -> str:
    rows, lines = {}, []
    methods = ["seqlab", *BASELINES, *POOLED]
    for method in methods:
        per, walls, pts = [], [], []
        for freq, m in FREQS.items():
            f, wall = _forecast(out, freq, method)
            if f is None:
                per.append(None)
                continue
            train, test, H = load(freq)
            s = scores(train, test, f, m)
            per.append((s["smape"].mean(), s["mase"].mean()))
            pts.append((s["smape"].sum() * H, len(s["smape"]) * H))
            walls.append(wall)
        if any(per):
            avg = sum(a for a, _ in pts) / sum(b for _, b in pts) if all(per) else None
            rows[method] = (per, avg, walls)
    head = "| method | yearly | quarterly | monthly | other | average | wall time, s (Y / Q / M / O) |"
    lines += [head, "|---|---|---|---|---|---|---|"]
    for name, v in PUBLISHED.items():
        lines.append(f"| {name} | " + " | ".join(f"{x:.2f}" for x in v) + " | |")
    for method, (per, avg, walls) in rows.items():
        cells = [f"{p[0]:.2f} ({p[1]:.2f})" if p else "-" for p in per]
        lines.append(f"| {NAMES[method]} | " + " | ".join(cells) + (f" | {avg:.2f} |" if avg is not None else " | - |"))
        lines[-1] += " " + " / ".join(f"{w:.0f}" for w in walls) + " |"
    return "sMAPE % (MASE)\n\n" + "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="/tmp/m3", help="where forecasts and timings go")
    p.add_argument("--freq", default=",".join(FREQS), help="comma-separated subset of yearly,quarterly,monthly,other")
    p.add_argument("--baselines", default="", help=f"comma-separated subset of {','.join(BASELINES)}")
    p.add_argument("--seqlab", action="store_true", help="train and score the global model")
    p.add_argument("--time", type=float, default=None,
                   help="seqlab: training minutes per frequency (default: RECIPES, 0.5/2/6/0.5)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--table", action="store_true", help="print the table of what is in --out")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    jobs = [(f, m) for f in a.freq.split(",") for m in ([b for b in a.baselines.split(",") if b]
                                                         + (["seqlab"] if a.seqlab else []))]
    for freq, method in jobs:
        print(f"{freq} {method} ...", file=sys.stderr, flush=True)
        if method == "seqlab":
            f, wall = run_seqlab(freq, a.time, a.threads, lambda s: print(s, file=sys.stderr, flush=True))
        else:
            f, wall = run_baseline(freq, method)
        np.savez(out / f"{freq}_{method}.npz", forecast=f)
        train, test, _ = load(freq)
        s = scores(train, test, f, FREQS[freq])
        res = {"freq": freq, "method": method, "wall_s": round(wall, 1), "smape": float(s["smape"].mean()),
               "mase": float(s["mase"].mean()), "series": len(f)}
        (out / f"{freq}_{method}.json").write_text(json.dumps(res) + "\n")
        print(json.dumps(res), flush=True)
    if a.table or not jobs:
        print(table(out))


if __name__ == "__main__":
    main()
