"""Reproduce the README's forecasting tables: MASE of the recurrent forecaster and of every baseline
(naive, seasonal naive, ETS, ARIMA) in a rolling-origin backtest on real series, and the AirPassengers
anchor (MAPE, darts' protocol: forecasts from 1959-01 onward, horizon 6, stride 1).

    .venv/bin/python benchmarks/forecast_table.py [--only air,co2] [--out runs/forecast] [--threads 1]
    .venv/bin/python benchmarks/forecast_table.py --defaults        # no per-series settings at all
    .venv/bin/python benchmarks/forecast_table.py --check-set       # the same on series of other kinds
    .venv/bin/python benchmarks/forecast_table.py --defaults --stride 1   # origins at every step of the test part

Every model is trained with `seqlab forecast train` on the part of the series before its test part
(no retraining during the backtest) and scored with `seqlab forecast eval`, which refits the
baselines at every origin on all the history before it. Results: <out>/<series>/eval.json, gathered
in <out>/results.json, and markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TS = ROOT.parent / "shared" / "data" / "timeseries"
SEQLAB = [sys.executable, "-m", "seqlab", "forecast"]

# the recipe shared by every series: a deep ensemble of 5 LSTMs; the epoch with the best dev MAE is kept
# (the dev part: the steps just before the test part). AirPassengers is too short for a dev part (144
# months; a 12-month horizon leaves one dev window), so it trains a fixed 300 epochs instead.
RECIPE = ["--cell", "lstm", "--hidden", "64", "--ensemble", "5", "--schedule", "cosine"]

# name: (series flags, model flags, eval flags, what the backtest is)
SERIES = {
    "air": ([f"--data={TS / 'airline-passengers.csv'}", "--test-start", "1959-01"],
            ["--horizon", "12", "--lookback", "24", "--log", "--calendar", "--window-norm", "season",
             "--dev", "0", "--epochs", "300"],
            ["--start", "1959-01", "--stride", "1"], "AirPassengers, monthly"),
    "temperatures": ([f"--data={TS / 'daily-min-temperatures.csv'}", "--fill", "interpolate", "--season", "365",
                      "--test-start", "1990-01-01"],
                     ["--horizon", "7", "--lookback", "30", "--calendar", "--epochs", "30", "--patience", "5"],
                     ["--start", "1990-01-01", "--stride", "7"], "Melbourne daily minimum temperature"),
    "sunspots-monthly": ([f"--data={TS / 'monthly-sunspots.csv'}", "--season", "1", "--test-start", "1964-01"],
                         ["--horizon", "12", "--lookback", "60", "--epochs", "50", "--patience", "10"],
                         ["--start", "1964-01", "--stride", "12"], "monthly sunspots (Zurich)"),
    "co2": (["--data=statsmodels:co2", "--test-start", "1992-01"],
            ["--horizon", "12", "--lookback", "36", "--calendar", "--window-norm", "season", "--epochs", "200",
             "--patience", "20"],
            ["--start", "1992-01", "--stride", "6"], "Mauna Loa CO2, monthly means"),
    "elnino": (["--data=statsmodels:elnino", "--test-start", "2001-01"],
               ["--horizon", "12", "--lookback", "36", "--calendar", "--dev", "60", "--epochs", "200",
                "--patience", "20"],
               ["--start", "2001-01", "--stride", "6"], "El Nino sea-surface temperature, monthly"),
    "nile": (["--data=statsmodels:nile", "--test-start", "1951-01"],
             ["--horizon", "5", "--lookback", "20", "--window-norm", "mean", "--dev", "10", "--epochs", "200",
              "--patience", "20"],
             ["--start", "1951-01", "--stride", "1"], "Nile flow, annual"),
}
ANCHOR = ([f"--data={TS / 'airline-passengers.csv'}", "--test-start", "1959-01"],
          ["--horizon", "6", "--lookback", "24", "--log", "--calendar", "--window-norm", "season", "--dev", "0",
           "--epochs", "300"])
METHODS = ("rnn", "naive", "seasonal_naive", "ets", "arima")


def run(cmd: list[str], log: Path) -> str:
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        f.write(r.stdout + r.stderr)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return r.stdout


def train(name: str, series: list[str], model: list[str], out: Path, threads: int, seed: int) -> float:
    run_dir = out / name
    t = time.perf_counter()
    run(SEQLAB + ["train", *series, *RECIPE, *model, "--out", str(run_dir), "--overwrite", "--save-every", "0",
                  "--threads", str(threads), "--seed", str(seed)], out / f"{name}.log")
    return time.perf_counter() - t


def evaluate(name: str, out: Path, extra: list[str]) -> dict:
    res = json.loads(run(SEQLAB + ["eval", "--model", str(out / name), "--json", *extra], out / f"{name}.log"))
    (out / name / ("eval_last.json" if "--last-point" in extra else "eval.json")).write_text(json.dumps(res, indent=2))
    return res


def table(results: dict) -> str:
    head = "| series | season | horizon | forecasts | " + " | ".join(METHODS) + " | RNN 80% / 95% coverage |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        if name == "anchor":
            continue
        m = {k: r["results"][k]["mase"] for k in METHODS}
        best = min(m.values())
        cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in m.values()]
        rnn = r["results"]["rnn"]
        lines.append(f"| {SERIES[name][3]} | {r['season']} | {r['horizon']} | {r['origins']} | " + " | ".join(cells)
                     + f" | {rnn.get('coverage80', float('nan')):.2f} / {rnn.get('coverage95', float('nan')):.2f} |")
    return "\n".join(lines)


# --defaults: what a user gets. Only the data and the horizon (and --fill where the file has gaps);
# the test part is the default last 20%, backtested from its start every `horizon` steps.
DEFAULTS = {
    "air": (str(TS / "airline-passengers.csv"), 12, {}),
    "temperatures": (str(TS / "daily-min-temperatures.csv"), 7, {"fill": "interpolate"}),
    "sunspots-monthly": (str(TS / "monthly-sunspots.csv"), 12, {}),
    "co2": ("statsmodels:co2", 12, {}),
    "elnino": ("statsmodels:elnino", 12, {}),
    "nile": ("statsmodels:nile", 5, {}),
}


def _pmdarima(name: str, freq: str, start: str):
    def load():
        from pmdarima import datasets as pd_datasets  # its series ship in the wheel (pip install pmdarima)

        y = getattr(pd_datasets, f"load_{name}")(as_series=True).to_numpy(float)
        y = y[: len(y) - int(np.argmax(~np.isnan(y[::-1])))]  # ausbeer ends in an empty quarter
        return _no_freq(pd.Series(y, index=pd.date_range(start, periods=len(y), freq=freq), name="value"))

    return load


def _statsmodels(module: str, column: str | None = None, last: int | None = None):
    def load():
        import importlib

        d = importlib.import_module(f"statsmodels.datasets.{module}").load().data
        y = d[column or d.columns[0]].astype(float)
        y.index = pd.DatetimeIndex(y.index)
        return _no_freq(y.rename("value")[-last:] if last else y.rename("value"))

    return load


def _last(loader, n: int):
    return lambda: loader()[-n:]


def _no_freq(y: pd.Series) -> pd.Series:
    """The series with its index's freq dropped, so build_series infers the frequency as it does for a CSV
    (a QS-JAN-pinned index once failed there against the inferred QS-OCT; it trains now either way)."""
    return pd.Series(y.to_numpy(), index=pd.DatetimeIndex(y.index.to_numpy()), name=y.name)


# --check-set: public series of other kinds that ship in PyPI wheels (statsmodels; pmdarima, skipped when
# absent), none of them tuned for: name -> (loader of a pandas Series, horizon, what it is)
CHECK = {
    "wineind": (_pmdarima("wineind", "MS", "1980-01-01"), 12, "Australian wine sales, monthly, multiplicative"),
    "wineind-6y": (_last(_pmdarima("wineind", "MS", "1980-01-01"), 72), 12, "the last 6 years of wineind (short)"),
    "woolyrnq": (_pmdarima("woolyrnq", "QS", "1965-01-01"), 8, "Australian woollen yarn, quarterly"),
    "ausbeer": (_pmdarima("ausbeer", "QS", "1956-01-01"), 8, "Australian beer production, quarterly"),
    "lynx": (_pmdarima("lynx", "YS", "1821-01-01"), 8, "Canadian lynx trappings, annual, cyclical"),
    "elec_equip": (_statsmodels("elec_equip"), 12, "euro-area electrical equipment orders, monthly"),
    "realgdp": (lambda: _statsmodels_macro("realgdp"), 8, "US real GDP, quarterly (trend)"),
    "danish-lrm": (_statsmodels("danish_data", "lrm"), 4, "Danish log real money, quarterly, 55 steps (short)"),
}


M3 = TS / "m3"
M3_FREQ = {"yearly": "YS", "quarterly": "QS", "monthly": "MS", "other": None}


def m3_sample(per_frequency: int, seed: int = 0) -> list[str]:
    """`per_frequency` M3 series of each frequency drawn at random (seeded; "other" gets half as many):
    names "m3:N123", a held-out set for the single-series defaults, which were never tuned on them."""
    info = _m3_frame("info").reset_index()
    rng = np.random.default_rng(seed)
    out = []
    for f in M3_FREQ:
        ids = info.series[info.frequency == f].to_numpy()
        k = max(1, per_frequency // 2) if f == "other" else per_frequency
        out += [f"m3:{i}" for i in sorted(rng.choice(ids, k, replace=False), key=lambda x: int(x[1:]))]
    return out


@functools.cache
def _m3_frame(name: str) -> pd.DataFrame:
    """m3_info.csv ("info", indexed by series) or one frequency's file, read once per run."""
    return pd.read_csv(M3 / "m3_info.csv").set_index("series") if name == "info" else \
        pd.read_csv(M3 / f"m3_{name}.csv.gz")


def _m3_series(name: str):
    """(the whole M3 series, its competition horizon): a pandas Series on its calendar (step numbers for
    "other"). The defaults choose their own test part (the last 20%, at least a horizon)."""
    sid = name.split(":", 1)[1]
    info = _m3_frame("info").loc[sid]
    df = _m3_frame(info.frequency)
    df = df[df.series == sid]
    freq = M3_FREQ[info.frequency]
    index = pd.DatetimeIndex(pd.to_datetime(df.date, format="%Y-%m-%d")) if freq else pd.RangeIndex(len(df))
    return pd.Series(df.value.to_numpy(float), index=index, name="value"), int(info.horizon)


def series_of(name: str):
    """(data, horizon, extra Forecaster.fit settings) of a DEFAULTS, CHECK or M3 ("m3:N123") series
    (ImportError: its wheel, e.g. pmdarima, is not installed)."""
    if name in DEFAULTS:
        return DEFAULTS[name]
    if name.startswith("m3:"):
        return (*_m3_series(name), {})
    loader, horizon, _ = CHECK[name]
    return loader(), horizon, {}


def _statsmodels_macro(column: str):
    from seqlab.forecast.datasets import DATASETS

    return _no_freq(DATASETS["macrodata"][0]()[column].rename("value"))


def _baselines() -> tuple[str, ...]:
    from seqlab.forecast.baselines import BASELINES, STATSFORECAST

    try:
        import statsforecast.models  # noqa: F401  (optional: pip install --no-deps statsforecast ...)
    except ImportError:
        return BASELINES
    return (*BASELINES, *STATSFORECAST)


def defaults_table(names: list[str], out: Path, threads: int, check: bool | str = False, reuse: bool = False,
                   seed: int = 1, stride: int | None = None) -> None:
    """Train each series with the defaults through the library and backtest against every baseline
    (`reuse`: the baselines' figures of an earlier run in `out` on the same origins and season) from the
    start of the test part, one origin every `stride` steps (None: the horizon, `seqlab forecast eval`'s
    default; 1: every step, many more, overlapping forecasts, so a steadier estimate)."""
    from seqlab.pipelines import Forecaster

    kind = check if isinstance(check, str) else "check_set" if check else "defaults"
    path = out / (kind + (f"-stride{stride}" if stride else "") + ".json")
    results = json.loads(path.read_text()) if path.exists() else {}
    methods = _baselines()
    for name in names:
        try:
            data, horizon, extra = series_of(name)
        except ImportError as e:
            print(f"{name}: skipped ({e})", file=sys.stderr)
            continue
        lines = []
        t = time.perf_counter()
        fc = Forecaster.fit(data, horizon=horizon, threads=threads, save_every=0, log=lines.append, seed=seed, **extra)
        secs = time.perf_counter() - t
        chosen = next((x for x in lines if x.startswith("defaults from the data")), "")
        old = results.get(name, {})
        known = reuse and old.get("season") == fc.data["season"] and all(k in old.get("mase", {}) for k in methods)
        every = stride or horizon
        r = fc.backtest(None, None, every, fc.data["test_start_time"], () if known else methods)
        rnn = r["results"]["rnn"]
        if known and old.get("origins") == r["origins"]:  # the baselines do not depend on the model: reuse them
            r["results"] = {**{k: {"mase": old["mase"][k], "seconds": old["seconds"][k]} for k in methods}, "rnn": rnn}
        elif known:
            r = fc.backtest(None, None, every, fc.data["test_start_time"], methods)
            rnn = r["results"]["rnn"]
        results[name] = {"mase": {k: v["mase"] for k, v in r["results"].items()}, "origins": r["origins"],
                         "season": fc.data["season"], "horizon": horizon, "steps": fc.data["n"], "chosen": chosen,
                         "train_seconds": round(secs, 1), "intervals": r["intervals"],
                         "seconds": {k: round(v["seconds"], 2) for k, v in r["results"].items()},
                         "coverage80": rnn.get("coverage80"), "coverage95": rnn.get("coverage95")}
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"{name}: {secs:.0f}s; {chosen}", file=sys.stderr, flush=True)
    print_defaults(results)


def print_defaults(results: dict) -> None:
    cols = [c for c in (*METHODS, "theta", "autoets", "autoarima", "autotheta")
            if all(c in r["mase"] for r in results.values())]
    best_of = [c for c in ("ets", "arima", "theta") if c in cols]
    print("| series | steps | season | horizon | forecasts | " + " | ".join(cols)
          + f" | RNN / best of {', '.join(best_of)} | 80% / 95% | train s |")
    print("|---|" + "---|" * (len(cols) + 7))
    if not results:
        return
    ratios, cov = [], []
    for name, r in results.items():
        m = r["mase"]
        ratio = m["rnn"] / min(m[c] for c in best_of)
        ratios.append(ratio)
        cov.append((r["coverage80"], r["coverage95"]))
        print(f"| {name} | {r.get('steps', '')} | {r['season']} | {r.get('horizon', '')} | {r['origins']} | "
              + " | ".join(f"{m[k]:.3f}" for k in cols)
              + f" | {ratio:.2f} | {r['coverage80']:.2f} / {r['coverage95']:.2f} | {r['train_seconds']:.0f} |")
    secs = {c: sum(r.get("seconds", {}).get(c, 0.0) for r in results.values()) for c in cols}
    print("\nbaseline wall seconds (all origins, all series): "
          + ", ".join(f"{c} {s:.1f}" for c, s in secs.items() if c != "rnn"))
    beats = sum(r["mase"]["rnn"] < r["mase"]["seasonal_naive"] for r in results.values())
    c80, c95 = np.mean(cov, 0)
    print(f"beats seasonal naive on {beats} of {len(results)}; geometric mean of MASE(RNN) / MASE(best of "
          f"{', '.join(best_of)}) = {float(np.exp(np.mean(np.log(ratios)))):.3f}; mean coverage "
          f"{c80:.3f} (80%) / {c95:.3f} (95%)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(SERIES)},anchor")
    p.add_argument("--out", default=str(ROOT / "runs" / "forecast"), help="where runs and results go")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per training run")
    p.add_argument("--seed", type=int, default=1, help="training seed")
    p.add_argument("--eval-only", action="store_true", help="reuse the trained models in --out")
    p.add_argument("--defaults", action="store_true", help="train with no per-series settings (see DEFAULTS)")
    p.add_argument("--reuse-baselines", action="store_true",
                   help="--defaults/--check-set: keep the baselines' figures of an earlier run in --out (same origins)")
    p.add_argument("--check-set", action="store_true",
                   help="the defaults on the extra series of CHECK (statsmodels, pmdarima) instead")
    p.add_argument("--stride", type=int, default=None,
                   help="--defaults/--check-set: steps between forecast origins (default: the horizon; 1: every step)")
    p.add_argument("--m3-sample", type=int, default=0, metavar="N",
                   help="the defaults on N random M3 series per frequency (N/2 'other'; seeded), scored as "
                        "--defaults is: a held-out set")
    p.add_argument("--m3-seed", type=int, default=0, help="--m3-sample: which random sample (default: %(default)s)")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.m3_sample:
        names = a.only.split(",") if a.only else m3_sample(a.m3_sample, a.m3_seed)
        kind = f"m3_sample{a.m3_sample}" + (f"-seed{a.m3_seed}" if a.m3_seed else "")
        defaults_table(names, out, a.threads, check=kind, reuse=a.reuse_baselines,
                       seed=a.seed, stride=a.stride)
        return
    if a.defaults or a.check_set:
        names = a.only.split(",") if a.only else list(CHECK if a.check_set else DEFAULTS)
        defaults_table(names, out, a.threads, check=a.check_set, reuse=a.reuse_baselines, seed=a.seed,
                       stride=a.stride)
        return
    names = a.only.split(",") if a.only else [*SERIES, "anchor"]
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        if name == "anchor":
            series, model = ANCHOR
            secs = 0.0 if a.eval_only else train("anchor", series, model, out, a.threads, a.seed)
            ev = ["--start", "1959-01", "--stride", "1"]
            last = evaluate("anchor", out, ev + ["--last-point"])
            full = evaluate("anchor", out, ev)
            results["anchor"] = {"last_point": last, "all_steps": full, "train_seconds": round(secs, 1)}
        else:
            series, model, ev, _ = SERIES[name]
            secs = 0.0 if a.eval_only else train(name, series, model, out, a.threads, a.seed)
            t = time.perf_counter()
            results[name] = {**evaluate(name, out, ev), "train_seconds": round(secs, 1),
                             "eval_seconds": round(time.perf_counter() - t, 1)}
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(table({k: v for k, v in results.items() if k in SERIES}))
    if "anchor" in results:
        r = results["anchor"]
        print("\n| AirPassengers, forecasts from 1959-01, horizon 6, stride 1 | " + " | ".join(METHODS) + " |")
        print("|---|" + "---|" * len(METHODS))
        for label, key in (("MAPE %, 6th month (darts' last_points_only)", "last_point"),
                           ("MAPE %, all 6 months", "all_steps")):
            print(f"| {label} | " + " | ".join(f"{r[key]['results'][m]['mape']:.2f}" for m in METHODS) + " |")


if __name__ == "__main__":
    main()
