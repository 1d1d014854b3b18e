"""Forecasting end to end: `seqlab forecast train | eval | predict | datasets`.

The series is cut in time: training windows (and the scaling statistics) come from the steps
before the test part; `eval` backtests from origins inside the test part only, against naive,
seasonal naive, ETS and ARIMA refitted at every origin.
"""

from __future__ import annotations

import argparse
import csv
import io
import json

import numpy as np
import torch

from seqlab.data.timeseries import FILLS, Scaler, TimeSeries, read_series
from seqlab.data.windows import WindowBatcher, check_length, gather, window_origins
from seqlab.errors import UserError
from seqlab.forecast import datasets
from seqlab.forecast.backtest import backtest, rolling_origins
from seqlab.forecast.baselines import BASELINES
from seqlab.forecast.pipeline import ForecastPipeline
from seqlab.metrics.forecast import mase_scale
from seqlab.models.forecaster import DECODERS, LIKELIHOODS, WINDOW_NORMS, Forecaster, ForecasterConfig
from seqlab.tasks import common
from seqlab.train import Trainer

READ_KEYS = ("data", "time_col", "targets", "covariates", "delimiter", "encoding", "fill", "time_format", "season")


def load_series(d: dict) -> TimeSeries:
    """The series described by the data settings `d` (a CSV path or statsmodels:<name>)."""
    if datasets.is_package_data(d["data"]):
        return datasets.load(d["data"], d["targets"], d["covariates"], d["season"])
    return read_series(d["data"], d["time_col"], d["targets"] or "1", d["covariates"], d["delimiter"],
                       d["encoding"], d["fill"], d["time_format"], d["season"])


def _split(a, s: TimeSeries) -> tuple[int, int]:
    """(dev_start, test_start): train on [0, dev_start), select on [dev_start, test_start)."""
    n, h = s.n, a.horizon
    check_length(n, a.lookback, h, s.source)
    if a.test_start:
        test_start = s.locate(a.test_start)
    else:
        test_start = n - (a.test if a.test is not None else max(h, round(0.2 * n)))
    dev = a.dev if a.dev is not None else max(h, round(0.1 * test_start))
    if test_start > n or dev < 0:
        raise UserError("--test and --dev must not be negative")
    if dev and dev < h:
        raise UserError(f"--dev {dev} is shorter than --horizon {h}; use --dev {h} or more, or --dev 0")
    check_length(test_start - dev, a.lookback, h, s.source,
                 f"before its test part ({s.label(test_start)}) and dev part ({dev} steps) ")
    return test_start - dev, test_start


def windows(pipe: ForecastPipeline, s: TimeSeries, origins: np.ndarray, end: int):
    """(x, future, y) tensors of the windows at `origins`, built from the first `end` steps only."""
    part = s.head(end)  # anything at or after `end` is out of reach: gather would fail, not leak
    z, cov = pipe.features(part, end)
    L, H = pipe.lookback, pipe.horizon
    x = np.concatenate([gather(z, origins, -L, L), gather(cov, origins, -L, L)], -1)
    t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    return t(x), t(gather(cov, origins, 0, H)), t(gather(z, origins, 0, H))


def cmd_train(a: argparse.Namespace) -> int:
    d = {"data": a.data, "time_col": None if a.no_time else a.time_col, "targets": a.target,
         "covariates": a.covariates, "delimiter": a.delimiter, "encoding": a.encoding, "fill": a.fill,
         "time_format": a.time_format, "season": a.season}
    tcfg = common.train_config(a)
    s = load_series(d)
    dev_start, test_start = _split(a, s)
    out = common.check_out_dir(a.out, a.resume, a.overwrite)
    scaler = Scaler.fit(s.values[:test_start], a.log, s.source)
    cov_scaler = Scaler.fit(s.covariates[:test_start]) if s.covariates.shape[1] else None
    calendar = a.calendar and s.season > 1
    d.update(targets=s.targets, covariates=s.covariate_names, season=s.season, freq=s.freq, calendar=calendar,
             lookback=a.lookback, n=s.n, test_start=test_start, dev_start=dev_start,
             test_start_time=s.label(test_start), first_time=s.label(0), last_time=s.label(s.n - 1))
    if a.window_norm == "season" and not 1 < s.season <= a.lookback:
        raise UserError(f"--window-norm season needs a season of 2 or more (this series: {s.season}; set --season) "
                        f"and a --lookback of at least one season")
    k = s.covariates.shape[1] + (2 if calendar else 0)
    enc = common.encoder_config(a, 0, 0, input_dim=len(s.targets) + k)
    cfg = ForecasterConfig(enc, len(s.targets), k, a.horizon, a.decoder, a.likelihood, a.window_norm,
                           a.teacher_forcing, a.head_dropout, s.season, a.ensemble)
    torch.manual_seed(a.seed)
    try:
        model = Forecaster(cfg)
    except ValueError as e:
        raise UserError(str(e)) from None
    pipe = ForecastPipeline(model, scaler, cov_scaler, d)
    x, fut, y = windows(pipe, s, window_origins(0, dev_start, a.lookback, a.horizon), dev_start)
    batches = WindowBatcher(x, fut, y, tcfg.batch_size, shuffle=True, seed=a.seed)
    eval_fn = None
    if dev_start < test_start:
        dev = windows(pipe, s, window_origins(dev_start, test_start, a.lookback, a.horizon), test_start)

        def eval_fn(model):
            dx, dfut, dy = (v.to(next(model.parameters()).device) for v in dev)
            o = model(dx, dfut)
            return {"mae": float((o.mean - dy).abs().mean()), "loss": float(model.loss(o, dy))}

    def step_fn(model, b):
        return model.loss(model(b.x, b.future, b.y), b.y)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"{s.source}: {s.n} steps ({s.label(0)} .. {s.label(s.n - 1)}, freq {s.freq}, season {s.season}); "
          f"train windows {len(x)}, " + (f"dev from {s.label(dev_start)}" if eval_fn else "no dev part") +
          f", test from {s.label(test_start)}; "
          f"{n_params:,} parameters")
    trainer = Trainer(model, tcfg, out, step_fn, eval_fn, metric="mae", mode="min", meta=pipe.meta(tcfg))
    st = trainer.fit(batches, resume=a.resume)
    summary = {"best_dev_mae_scaled": st["best"], "best_epoch": st["best_epoch"], "steps": st["step"],
               "train_seconds": round(st["elapsed"], 1), "parameters": n_params, "test_start": s.label(test_start)}
    common.write_text_atomic(out / "results.json", json.dumps(summary, indent=2) + "\n")
    print(f"trained {st['elapsed']:.0f}s; model in {out / 'best'}; backtest it on the test part with "
          f"`seqlab forecast eval --model {out}`")
    return 0


def _pipe_and_series(a) -> tuple[ForecastPipeline, TimeSeries, int]:
    """The model, the series to use (the training one unless --data), and the first origin allowed."""
    pipe = ForecastPipeline.load(a.model, a.device)
    d = {k: pipe.data.get(k) for k in READ_KEYS}
    if a.data:
        d["data"] = a.data
    s = load_series(d)
    if s.targets != pipe.data["targets"] or s.covariate_names != pipe.data["covariates"]:
        raise UserError(f"{s.source} has columns {s.targets + s.covariate_names}, but the model was trained "
                        f"on {pipe.data['targets'] + pipe.data['covariates']}")
    same = d["data"] == pipe.data["data"]
    return pipe, s, pipe.data["test_start"] if same else pipe.lookback


def cmd_eval(a: argparse.Namespace) -> int:
    pipe, s, earliest = _pipe_and_series(a)
    H, season = pipe.horizon, pipe.data["season"]
    first = s.locate(a.start) if a.start else None
    origins = rolling_origins(s.n, H, a.backtest, a.stride or H, first, earliest, s.label)
    same = s.source == pipe.data["data"]  # MASE scale: in-sample error on the training part
    scale = mase_scale(s.values[: pipe.data["test_start"] if same else int(origins[0])], season)
    methods = [m for m in (a.baselines.split(",") if a.baselines is not None else BASELINES) if m]
    unknown = [m for m in methods if m not in BASELINES]
    if unknown:
        raise UserError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}")
    res = backtest(s.values, origins, H, season, scale, lambda o: pipe.forecast(s, o), methods,
                   pipe.scaler.log, a.last_point)
    info = {"data": s.source, "origins": len(origins), "first_origin": s.label(int(origins[0])),
            "last_origin": s.label(int(origins[-1])), "horizon": H, "stride": a.stride or H, "season": season,
            "scored": "last point" if a.last_point else "all steps"}
    if a.json:
        print(json.dumps({**info, "results": res}))
        return 0
    print(f"{s.source}: {info['origins']} forecasts from {info['first_origin']} .. {info['last_origin']}, "
          f"horizon {H}, stride {info['stride']}, season {season}, scoring {info['scored']}")
    cols = ("mae", "rmse", "smape", "mape", "mase", "coverage80", "coverage95")
    print(f"{'method':<16}" + "".join(f"{c:>11}" for c in cols))
    for name, m in res.items():
        print(f"{name:<16}" + "".join(f"{m[c]:>11.4g}" if c in m else f"{'-':>11}" for c in cols))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    pipe, s, _ = _pipe_and_series(a)
    origin = s.locate(a.origin) if a.origin else s.n
    fc = pipe.forecast(s, np.array([origin]))
    H = pipe.horizon
    times = s.times(origin, H)
    known = min(H, s.n - origin)
    rows = []
    for i in range(H):
        for j, name in enumerate(s.targets):
            r = {"time": s.label(origin + i), "target": name, "forecast": float(fc.mean[0, i, j])}
            for lv, (lo, hi) in sorted(fc.intervals.items()):
                r[f"lo{round(lv * 100)}"], r[f"hi{round(lv * 100)}"] = float(lo[0, i, j]), float(hi[0, i, j])
            if i < known:
                r["actual"] = float(s.values[origin + i, j])
            rows.append(r)
    if a.plot:
        from seqlab.viz.forecast_plot import plot_forecast

        start = max(0, origin - a.history)
        actual = s.values[origin : origin + H] if known == H else None
        plot_forecast(s.times(start, origin - start), s.values[start:origin], times, fc.mean[0],
                      {lv: (lo[0], hi[0]) for lv, (lo, hi) in fc.intervals.items()}, a.plot, actual,
                      f"{s.source.rsplit('/', 1)[-1]}: forecast from {s.label(origin)}", s.targets)
        print(f"wrote {a.plot}")
    if a.output:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        common.write_text_atomic(a.output, buf.getvalue())
        print(f"wrote {len(rows)} forecasts to {a.output}")
    elif a.json:
        for r in rows:
            print(json.dumps(r))
    elif not a.plot:
        keys = list(rows[0])  # the first row has an actual value whenever any row has
        print("\t".join(keys))
        for r in rows:
            print("\t".join(f"{r[k]:.4g}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys))
    return 0


def cmd_datasets(a: argparse.Namespace) -> int:
    rows = datasets.describe()
    if a.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'--data':<22}{'steps':>6}  {'freq':<8}{'span':<20}{'target':<14}about")
    for r in rows:
        print(f"{r['data']:<22}{r['steps']:>6}  {r['freq']:<8}{r['start'] + ' .. ' + r['end']:<20}"
              f"{r['target']:<14}{r['about']}")
    print("Pick other columns with --target (and --covariates); any CSV with a time column works too.")
    return 0


def _read_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the series")
    g.add_argument("--data", required=True,
                   help="CSV/TSV file with a time column, or statsmodels:<name> (see `seqlab forecast datasets`)")
    g.add_argument("--time-col", default="0", help="time column: name or 0-based index (default: the first)")
    g.add_argument("--no-time", action="store_true", help="the file has no time column: rows are the steps")
    g.add_argument("--time-format", default=None, help="strftime format of the times, e.g. %%d/%%m/%%Y "
                                                       "(default: inferred)")
    g.add_argument("--target", default=None,
                   help="column(s) to forecast, comma-separated (default: the second column of a CSV)")
    g.add_argument("--covariates", default=None,
                   help="known covariates, comma-separated; their future values go in rows with an empty target")
    g.add_argument("--fill", choices=FILLS, default="none",
                   help="what to do with missing timestamps and empty cells: refuse, interpolate, or carry "
                        "the last value forward (default: %(default)s)")
    g.add_argument("--season", type=int, default=None,
                   help="seasonal period in steps (default: from the frequency: monthly 12, daily 7, ...)")
    g.add_argument("--delimiter", default=None, help="field separator (default: from the file name)")
    g.add_argument("--encoding", default="utf-8", help="file encoding (default: %(default)s)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forecast", help="time-series forecasting with intervals, against classical baselines",
                       description="Train a recurrent forecaster, backtest it against naive, seasonal naive, "
                                   "ETS and ARIMA, and forecast with 80%%/95%% intervals.")
    s = p.add_subparsers(dest="action", required=True, metavar="{train,eval,predict,datasets}")

    t = s.add_parser("train", help="train a forecaster on the part of a series before its test part")
    _read_args(t)
    g = t.add_argument_group("forecast setup")
    g.add_argument("--horizon", type=int, default=12, help="steps forecast at once (default: %(default)s)")
    g.add_argument("--lookback", type=int, default=36, help="past steps the model reads (default: %(default)s)")
    g.add_argument("--test", type=int, default=None,
                   help="steps at the end kept out of training for eval (default: 20%% of the series)")
    g.add_argument("--test-start", default=None, help="first time of the test part (instead of --test)")
    g.add_argument("--dev", type=int, default=None,
                   help="steps before the test part used to pick the best epoch; 0 = none, keep the last "
                        "epoch (default: 10%% of the rest, at least --horizon)")
    g.add_argument("--log", action="store_true", help="model the log of the series (positive series whose "
                                                      "seasonal swings grow with the level)")
    g.add_argument("--calendar", action="store_true",
                   help="add the position in the season (e.g. month of year) as known covariates")
    g.add_argument("--decoder", choices=DECODERS, default="direct",
                   help="direct: all steps from the final state at once; seq2seq: a decoder RNN step by step "
                        "(default: %(default)s)")
    g.add_argument("--likelihood", choices=LIKELIHOODS, default="gaussian",
                   help="gaussian: mean and scale, trained by likelihood, for intervals; none: point forecasts "
                        "by squared error (default: %(default)s)")
    g.add_argument("--window-norm", choices=WINDOW_NORMS, default="last",
                   help="subtract each input window's last value or mean before the model, add it back after; "
                        "season: add the output to the value one season earlier (default: %(default)s)")
    g.add_argument("--teacher-forcing", type=float, default=1.0,
                   help="seq2seq: share of decoder steps fed the true previous value in training "
                        "(default: %(default)s)")
    g.add_argument("--ensemble", type=int, default=1,
                   help="train this many independently initialised networks together and forecast with their "
                        "mixture (a deep ensemble; steadier on short series) (default: %(default)s)")
    g.add_argument("--head-dropout", type=float, default=0.0, help="dropout before the output layer "
                                                                  "(default: %(default)s)")
    common.add_encoder_args(t, hidden=64)
    common.add_train_args(t, epochs=100, batch=32, lr=2e-3)
    t.set_defaults(func=cmd_train, dropout=0.0, patience=20)

    def model_args(q):
        q.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a forecaster")
        q.add_argument("--data", default=None, help="series to use instead of the training one (same columns)")
        q.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
        q.add_argument("--json", action="store_true", help="print JSON")

    e = s.add_parser("eval", help="rolling-origin backtest of the model and the baselines on the test part")
    model_args(e)
    e.add_argument("--backtest", type=int, default=5, help="number of forecast origins (default: %(default)s)")
    e.add_argument("--stride", type=int, default=None, help="steps between origins (default: the horizon)")
    e.add_argument("--start", default=None,
                   help="first forecast time: backtest every --stride steps from here (instead of --backtest)")
    e.add_argument("--baselines", default=None,
                   help=f"comma-separated subset of {','.join(BASELINES)} (default: all); '' for none")
    e.add_argument("--last-point", action="store_true",
                   help="score only the last step of each forecast (darts' last_points_only)")
    e.set_defaults(func=cmd_eval)

    r = s.add_parser("predict", help="forecast the next horizon steps with 80%%/95%% intervals")
    model_args(r)
    r.add_argument("--origin", default=None,
                   help="forecast from this time using only the history before it (default: after the end)")
    r.add_argument("--plot", default=None, help="write a PNG of history, forecast and intervals here")
    r.add_argument("--history", type=int, default=72, help="past steps shown in the plot (default: %(default)s)")
    r.add_argument("--output", default=None, help="write the forecasts as CSV here")
    r.set_defaults(func=cmd_predict)

    ds = s.add_parser("datasets", help="list the series that ship with the dependencies (statsmodels)")
    ds.add_argument("--json", action="store_true", help="print one JSON object per series")
    ds.set_defaults(func=cmd_datasets)
