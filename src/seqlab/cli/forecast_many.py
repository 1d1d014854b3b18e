"""`seqlab forecast train|eval|predict` for many series (a panel, one global model): what
seqlab.cli.forecast hands over when train gets --id-col or --wide, or eval/predict a global model.

    seqlab forecast train --data sales.csv --id-col store --time-col date --target units --horizon 12 --out run
    seqlab forecast eval --model run              # per-series and aggregate sMAPE / MASE against the baselines
    seqlab forecast predict --model run --output forecasts.csv    # id,time,step,mean,lo80,hi80,lo95,hi95
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqlab.cli import common
from seqlab.errors import UserError
from seqlab.models.global_forecaster import LOSSES
from seqlab.pipelines.forecast_config import ForecastConfig
from seqlab.pipelines.forecast_many import EVAL_BASELINES, ManyForecaster
from seqlab.pipelines.forecast_many_config import ManyForecastConfig


def add_args(p: argparse.ArgumentParser) -> None:
    """The panel flags of `seqlab forecast train`."""
    g = p.add_argument_group(
        "many series, one global model",
        "With --id-col or --wide one model is trained on the windows of every series (each window scaled by "
        "its mean absolute value). Defaults there: the last --horizon steps of each series are its test part, "
        "--lookback 2 horizons (at least a season + 1), no dev part, --cell gru --hidden 64 --ensemble 3 "
        "(median forecast), --batch 256, 30 epochs; --log, --calendar, --covariates, --decoder do not apply.")
    g.add_argument("--id-col", default=None,
                   help="many series in one long CSV: the column naming each row's series (one global model)")
    g.add_argument("--wide", action="store_true", help="many series in one wide CSV: one column per series")
    g.add_argument("--static-cols", default=None,
                   help="with --id-col: columns constant within each series, fed to the model (comma-separated)")
    g.add_argument("--min-history", type=common.num_arg(int, 1), default=None,
                   help="many series: fewest past steps a training window may have; below --lookback the "
                        "window is padded (default: --lookback, no padding)")
    g.add_argument("--id-embed", type=common.num_arg(int, 0, 4096), default=None,
                   help="many series: size of a learned embedding of each series' id (default: 0, none)")
    g.add_argument("--loss", choices=LOSSES, default=None,
                   help="many series: mae (or smape) trains the point forecast by absolute (or symmetric "
                        "percentage) error and the interval scale by likelihood; gaussian: likelihood only "
                        "(default: mae)")
    g.add_argument("--deseason", action=argparse.BooleanOptionalAction, default=None,
                   help="many series: divide each series that passes a 90%% seasonality test by its classical "
                        "multiplicative seasonal indices before the model (default: when the season is 2 or more)")
    g.add_argument("--recent", type=common.num_arg(int, 1), default=None,
                   help="many series: train on the last N windows of each series only (default: all)")


PANEL_ONLY = ("static_cols", "min_history", "id_embed", "loss", "deseason", "recent")


def refuse_panel_flags(a: argparse.Namespace) -> None:
    """A single-series run was given a flag that only a global model reads: say so, do not ignore it."""
    used = [k for k in PANEL_ONLY if getattr(a, k, None) is not None]
    if used:
        flag = "--" + used[0].replace("_", "-")
        raise UserError(f"{flag} applies to many series (one global model); add --id-col COLUMN or --wide, "
                        f"or drop {flag}")


def config(a: argparse.Namespace) -> ManyForecastConfig:
    """--config FILE (or the defaults), then the flags typed on the command line."""
    base = ManyForecastConfig.read(a.config) if getattr(a, "config", None) else ManyForecastConfig()
    leaves = ManyForecastConfig.leaf_names()
    given = common.given_flags(a) | {"id_col", "wide"}
    single = sorted(set(ForecastConfig.leaf_names()) - set(leaves) & given)
    if single:
        typed = {o: act.dest for act in a._parser._actions for o in act.option_strings}
        flag = next(t.split("=")[0] for t in a._argv if typed.get(t.split("=")[0]) == single[0])
        raise UserError(f"{flag} is a setting of one-series forecasting; drop it with --id-col / --wide")
    vals = {k: getattr(a, k) for k in given if k in leaves and getattr(a, k, None) is not None}
    return base.with_values(**vals).validate()


def cmd_train(a: argparse.Namespace) -> int:
    cfg = config(a)
    run = common.TrainRun(cfg, a.out)
    with run:
        pipe = ManyForecaster.fit(a.data, cfg, out=a.out, resume=a.resume, overwrite=a.overwrite,
                                  callbacks=run.callbacks())
    out = Path(a.out)
    print(f"trained {pipe.results['train_seconds']:.0f}s; model in {out / 'best'}; score every series' test part "
          f"with `seqlab forecast eval --model {out}`")
    print(run.summary())
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    pipe = ManyForecaster.load(a.model, a.device)
    methods = [m for m in a.baselines.split(",") if m] if a.baselines is not None else list(EVAL_BASELINES)
    with common.Heartbeat("scoring every series and fitting the baselines per series"):
        r = pipe.evaluate(a.data or None, methods)
    if a.json:
        print(json.dumps(r))
        return 0
    print(f"{r['series']} series, {r['origins']} forecasts, horizon {r['horizon']}, season {r['season']}; "
          "means over series")
    cols = ("smape", "mase", "coverage80", "coverage95")
    print(f"{'method':<16}" + "".join(f"{c:>11}" for c in cols))
    for name, m in r["aggregate"].items():
        print(f"{name:<16}" + "".join(f"{m[c]:>11.4g}" if c in m else f"{'-':>11}" for c in cols))
    if a.per_series:
        import pandas as pd

        common.write_text_atomic(a.per_series, pd.DataFrame(r["per_series"]).to_csv(index=False))
        print(f"wrote the per-series scores to {a.per_series}")
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    pipe = ManyForecaster.load(a.model, a.device)
    df = pipe.predict(a.data or None)
    if a.output:
        common.write_text_atomic(a.output, df.to_csv(index=False))
        print(f"wrote {len(df)} forecasts of {df['id'].nunique()} series to {a.output}")
    elif a.json:
        for r in df.to_dict("records"):
            print(json.dumps(r))
    else:
        print(df.to_csv(index=False, sep="\t", float_format="%.4g"), end="")
    return 0
