"""`seqlab forecast train | eval | predict | datasets`: flags -> ForecastConfig -> seqlab.pipelines.Forecaster -> print.

The series is cut in time: training windows (and the scaling statistics) come from the steps
before the test part; `eval` backtests from origins inside the test part only, against naive,
seasonal naive, ETS and ARIMA refitted at every origin. A checkpoint holds its training series, so
`predict` and `eval` without --data work from any directory, even after the CSV is gone.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np

from seqlab.cli import common, forecast_many
from seqlab.data.timeseries import FILLS, TimeSeries
from seqlab.forecast import datasets
from seqlab.forecast.auto import NETWORKS
from seqlab.forecast.baselines import BASELINES, FUNCTIONS
from seqlab.forecast.conformal import parse_quantiles
from seqlab.models.forecaster import DECODERS, LIKELIHOODS, WINDOW_NORMS
from seqlab.pipelines.forecast import (
    ForecastConfig,
    Forecaster,
)
from seqlab.pipelines.forecast_config import INTERVALS


def _many(model: str | None = None) -> bool:
    """Whether `model` is a global (many-series) forecaster: its commands live in cli.forecast_many."""
    from seqlab.pipelines.registry import task_of

    return task_of(model) == "forecast_many"


def cmd_train(a: argparse.Namespace) -> int:
    if a.id_col or a.wide:  # many series, one global model
        return forecast_many.cmd_train(a)
    forecast_many.refuse_panel_flags(a)
    cfg = common.config_from_args(ForecastConfig, a)
    run = common.TrainRun(cfg, a.out)
    with run:
        pipe = Forecaster.fit(a.data, cfg, out=a.out, resume=a.resume, overwrite=a.overwrite, callbacks=run.callbacks())
    out = Path(a.out)
    print(f"trained {pipe.results['train_seconds']:.0f}s; model in {out / 'best'}; backtest it on the test part "
          f"with `seqlab forecast eval --model {out}`")
    print(run.summary())
    return 0


def _pipe_and_series(a) -> tuple[Forecaster, TimeSeries]:
    """The model and the series to use: the one stored in the checkpoint unless --data."""
    pipe = Forecaster.load(a.model, a.device)
    s, _ = pipe.series_for(a.data or None)
    return pipe, s


def cmd_eval(a: argparse.Namespace) -> int:
    if _many(a.model):
        return forecast_many.cmd_eval(a)
    pipe = Forecaster.load(a.model, a.device)
    methods = a.baselines.split(",") if a.baselines is not None else BASELINES
    with common.Heartbeat("backtesting the model and the baselines (refitted at every origin)"):
        r = pipe.backtest(a.data or None, a.backtest, a.stride, a.start or None, methods, a.last_point)
    res = r.pop("results")
    if a.json:
        print(json.dumps({**r, "results": res}))
        return 0
    print(f"{r['data']}: {r['origins']} forecasts from {r['first_origin']} .. {r['last_origin']}, "
          f"horizon {r['horizon']}, stride {r['stride']}, season {r['season']}, scoring {r['scored']}; "
          f"rnn intervals: {r['intervals']} (coverage80/95: share of actual values inside the nominal "
          "80%/95% intervals)")
    if pipe.data.get("combine"):
        how = "the median of" if pipe.data.get("combine_rule", "mean") == "median" else "the mean of"
        print(f"rnn: {how} the network's forecast and {', '.join(pipe.data['combine'])} (refitted at every "
              "origin; train with --combine none for the network alone)")
    cols = ("mae", "rmse", "smape", "mape", "mase", "coverage80", "coverage95", "seconds")
    print(f"{'method':<16}" + "".join(f"{c:>11}" for c in cols))
    for name, m in res.items():
        print(f"{name:<16}" + "".join(f"{m[c]:>11.4g}" if c in m else f"{'-':>11}" for c in cols))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    if _many(a.model):
        return forecast_many.cmd_predict(a)
    pipe, s = _pipe_and_series(a)
    origin = s.locate(a.origin) if a.origin else s.n
    fc = pipe.forecast(s, np.array([origin]), quantiles=parse_quantiles(a.quantiles))
    H = pipe.horizon
    times = s.times(origin, H)
    known = min(H, s.n - origin)
    rows = pipe.rows(s, origin, fc)
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
                   help="seasonal period in steps (default: from the frequency, monthly 12, daily 7, ..., kept "
                        "when the autocorrelation at that lag is significant; --season 1: none)")
    g.add_argument("--delimiter", default=None, help="field separator (default: from the file name)")
    g.add_argument("--encoding", default="utf-8", help="file encoding (default: %(default)s)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forecast", help="time-series forecasting with intervals, against classical baselines",
                       description="Train a recurrent forecaster, backtest it against naive, seasonal naive, "
                                   "ETS and ARIMA, and forecast with 80%%/95%% intervals.")
    s = p.add_subparsers(dest="action", required=True, metavar="{train,eval,predict,datasets}")

    t = s.add_parser("train", help="train a forecaster on the part of a series before its test part")
    _read_args(t)
    forecast_many.add_args(t)
    g = t.add_argument_group("forecast setup")
    g.add_argument("--horizon", type=int, default=12, help="steps forecast at once (default: %(default)s)")
    g.add_argument("--network", choices=NETWORKS, default=None,
                   help="scaled: the series divided by its classical seasonal indices and each window by its mean "
                        "(one target, no covariates); standard: the standardised series with calendar features "
                        "(default: scaled for a positive series of one target without covariates under 2,000 "
                        "training steps, else standard)")
    g.add_argument("--lookback", type=int, default=None,
                   help="past steps the model reads (default: from the data: three seasons, or two horizons "
                        "without a season (the scaled network: two horizons, at least a season + 1), shortened "
                        "where the training part is short)")
    g.add_argument("--test", type=int, default=None,
                   help="steps at the end kept out of training for eval (default: 20%% of the series)")
    g.add_argument("--test-start", default=None, help="first time of the test part (instead of --test)")
    g.add_argument("--dev", type=int, default=None,
                   help="steps before the test part used to pick the best epoch; 0 = none, keep the last "
                        "epoch (default: 10%% of the rest, at least --horizon; none for the scaled network)")
    g.add_argument("--log", dest="log_scale", action=argparse.BooleanOptionalAction, default=None,
                   help="model the log of the series (default: when the series is positive and its seasonal "
                        "swing grows with its level)")
    g.add_argument("--calendar", action=argparse.BooleanOptionalAction, default=None,
                   help="add the position in the season (e.g. month of year) as known covariates "
                        "(default: when the series is seasonal, except for the scaled network)")
    g.add_argument("--decoder", choices=DECODERS, default="direct",
                   help="direct: all steps from the final state at once; seq2seq: a decoder RNN step by step "
                        "(default: %(default)s)")
    g.add_argument("--likelihood", choices=LIKELIHOODS, default="gaussian",
                   help="gaussian: mean and scale, trained by likelihood, for intervals; none: point forecasts "
                        "by squared error (default: %(default)s)")
    g.add_argument("--window-norm", choices=WINDOW_NORMS, default=None,
                   help="subtract each input window's last value or mean before the model, add it back after; "
                        "season: add the output to the value one season earlier (default: season for a "
                        "seasonal series with the standard network, else last)")
    g.add_argument("--teacher-forcing", type=float, default=1.0,
                   help="seq2seq: share of decoder steps fed the true previous value in training "
                        "(default: %(default)s)")
    g.add_argument("--ensemble", type=int, default=None,
                   help="train this many independently initialised networks together and forecast with their "
                        "mixture (a deep ensemble; steadier on short series) (default: 3 for the scaled network, "
                        "their median; else 5 below 2,000 training steps, else 1)")
    g.add_argument("--combine", default=None,
                   help="pool the network's forecast with classical models refitted on the same history (the "
                        "median at each point): some of ets,arima,theta, or none (default below 2,000 training "
                        "steps: all three; else none)")
    g.add_argument("--head-dropout", type=float, default=0.0, help="dropout before the output layer "
                                                                  "(default: %(default)s)")
    g.add_argument("--intervals", choices=INTERVALS, default="conformal",
                   help="conformal: 80%%/95%% intervals and quantiles from forecast errors on the training part "
                        "(rolling-origin refits, see --calibration-folds; stored in the checkpoint); gaussian: "
                        "from the Gaussian head (default: %(default)s)")
    g.add_argument("--calibration-folds", type=int, default=3,
                   help="conformal: rolling-origin refits on the training part whose errors calibrate the "
                        "intervals (each one more training run); 0: this model's errors on the dev part "
                        "(default: %(default)s)")
    common.add_encoder_args(t, hidden=64, auto={"cell": "gru for the scaled network, else lstm"})
    common.add_train_args(t, epochs=100, batch=32, lr=None, lr_help="0.005 for the scaled network, else 0.002",
                          schedule=None, schedule_help="cosine for the scaled network, else constant")
    common.apply_config_defaults(t, ForecastConfig)
    t.set_defaults(func=cmd_train)

    def model_args(q):
        q.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a forecaster")
        q.add_argument("--data", default=None, help="series to use instead of the training one (same columns)")
        common.add_runtime_args(q)
        q.add_argument("--json", action="store_true", help="print JSON")

    e = s.add_parser("eval", help="rolling-origin backtest of the model and the baselines on the test part")
    model_args(e)
    e.add_argument("--backtest", type=int, default=None,
                   help="number of forecast origins (default: 5, or as many as the test part holds)")
    e.add_argument("--stride", type=int, default=None, help="steps between origins (default: the horizon)")
    e.add_argument("--start", default=None,
                   help="first forecast time: backtest every --stride steps from here (instead of --backtest)")
    e.add_argument("--baselines", default=None,
                   help=f"comma-separated baselines among {','.join(FUNCTIONS)} (default: {','.join(BASELINES)}; "
                        "the auto* ones need statsforecast); '' for none")
    e.add_argument("--per-series", default=None, help="a global model: write each series' scores as CSV here")
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
    r.add_argument("--quantiles", default=None,
                   help="also write these quantiles of the forecast distribution, e.g. 0.1,0.5,0.9 (columns "
                        "q10, q50, q90; conformal or Gaussian, as the model's intervals)")
    r.set_defaults(func=cmd_predict)

    ds = s.add_parser("datasets", help="list the series that ship with the dependencies (statsmodels)")
    ds.add_argument("--json", action="store_true", help="print one JSON object per series")
    ds.set_defaults(func=cmd_datasets)
