"""Many series, one model (a global forecaster): train once on the windows of every series, forecast
every series.

    from seqlab.pipelines.forecast_many import ManyForecaster
    fc = ManyForecaster.fit("sales.csv", id_col="store", time_col="date", target="units", horizon=12)
    fc = ManyForecaster.fit("wide.csv", wide=True, horizon=12)     # one column per series
    fc.predict()              # one tidy DataFrame: id, time, step, mean, lo80, hi80, lo95, hi95
    fc.evaluate()             # per-series and aggregate sMAPE / MASE against naive and seasonal naive
    fc.save("run/");  fc = ManyForecaster.load("run/")

Each series is cut in time: its last `test` steps (default: the horizon) are held out for `evaluate`;
training windows come from the steps before. Windows of all series are cut in one vectorised gather
and mixed in every batch; each window is divided by its own mean absolute value (so series of any
size share one network) and the network predicts all horizon steps at once. The point forecast is the
median of the ensemble members; the 80%/95% intervals come from the Gaussian head.

Series shorter than min_history + horizon in their training part are refused, naming them (set
min_history below lookback: windows with fewer past steps are padded with the first value and marked).
A checkpoint is self-contained: vocab.json "panel" holds every series (values, starts, static
covariates), so `predict` and `evaluate` need neither the CSV nor the working directory.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import torch

from seqlab.data.panel import Panel, align_static, gather_windows, panel_origins, read_panel, steps_between
from seqlab.data.windows import WindowBatcher
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.forecast.baselines import FUNCTIONS
from seqlab.forecast.seasonal import factors, seasonal_indices
from seqlab.metrics.forecast import coverage, mase, mase_scale, smape
from seqlab.models.forecaster import ForecasterConfig
from seqlab.models.global_forecaster import GlobalForecaster, GlobalForecasterConfig
from seqlab.pipelines.base import Pipeline, finish, run_training, write_text_atomic
from seqlab.pipelines.forecast_many_config import ManyForecastConfig
from seqlab.pipelines.registry import register_task
from seqlab.train.checkpoint import task_meta
from seqlab.train.trainer import TrainConfig

TASK = "forecast_many"
LEVELS = (0.8, 0.95)
DEFAULT_EPOCHS = 30
EVAL_BASELINES = ("naive", "seasonal_naive", "theta")  # fitted per series by `evaluate`
READ = ("id_col", "wide", "time_col", "no_time", "time_format", "target", "static_cols", "season", "freq",
        "delimiter", "encoding")


def default_lookback(horizon: int, season: int) -> int:
    """Two horizons, and at least one season and a step."""
    return max(2 * horizon, season + 1 if season > 1 else 1)


@register_task
class ManyForecaster(Pipeline):
    """GlobalForecaster + the panel it was trained on + data settings (config.json "data")."""

    task = TASK
    Config = ManyForecastConfig

    def __init__(self, model: GlobalForecaster, panel: Panel, data: dict, config: ManyForecastConfig | None = None):
        self.model, self.panel, self.data, self.config = model, panel, data, config

    @property
    def lookback(self) -> int:
        return self.data["lookback"]

    @property
    def horizon(self) -> int:
        return self.model.cfg.net.horizon

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, data, config: ManyForecastConfig | dict | str | None = None, *, out=None, resume: bool = False,
            overwrite: bool = False, callbacks=None, log=print, **overrides) -> ManyForecaster:
        """Train on every series' part before its test part. `data`: a CSV/TSV path or a DataFrame (long
        with id_col, or wide=True), or a Panel. Settings: `config` and/or flat overrides (the CLI's names)."""
        cfg = cls.make_config(config, **overrides)
        m, dc = cfg.model, cfg.data
        tcfg = cfg.train.trainer_config(DEFAULT_EPOCHS)
        read = {k: getattr(dc, k) for k in READ}
        panel = data if isinstance(data, Panel) else read_panel(data, **read)
        H, season = m.horizon, panel.season
        lookback = dc.lookback or default_lookback(H, season)
        min_history = min(dc.min_history or lookback, lookback)
        test = H if dc.test is None else dc.test
        lengths = panel.lengths
        train_end = lengths - test
        dev = dc.dev or 0
        fit_end = train_end - dev
        short = np.flatnonzero(fit_end < min_history + H)
        if len(short):
            i = int(short[0])
            more = f" (and {len(short) - 1} more)" if len(short) > 1 else ""
            raise UserError(f"{panel.source}: series {panel.ids[i]!r}{more} has {int(fit_end[i])} training steps, "
                            f"fewer than min_history + horizon = {min_history} + {H} (after a test part of {test}"
                            f"{f' and a dev part of {dev}' if dev else ''}); drop it, or lower --min-history "
                            "(shorter windows are padded), --lookback, --horizon or --test")
        window_norm = m.window_norm or "last"
        if window_norm == "season" and not 1 < season <= lookback:
            raise UserError("--window-norm season needs a season of 2 or more and a --lookback of at least one season")
        st_mean = panel.static.mean(0) if len(panel.static) else np.zeros(0)
        st_std = panel.static.std(0) if len(panel.static) else np.zeros(0)
        k = panel.static.shape[1]
        enc = m.encoder_config(0, 0, input_dim=2 + k + m.id_embed)
        net = ForecasterConfig(enc, 1, 1 + k + m.id_embed, H, "direct", m.likelihood, window_norm, 1.0,
                               m.head_dropout, season, m.ensemble or 1)
        mcfg = GlobalForecasterConfig(net, len(panel.ids), k, m.id_embed, m.loss)
        torch.manual_seed(cfg.train.seed)
        try:
            model = GlobalForecaster(mcfg)
        except ValueError as e:
            raise UserError(str(e)) from None
        d = {**read, "lookback": lookback, "min_history": min_history, "test": test, "dev": dev,
             "static_mean": st_mean.tolist(), "static_std": np.where(st_std > 0, st_std, 1.0).tolist(),
             "series": len(panel.ids), "season": season, "freq": panel.freq, "source": panel.source}
        if (dc.deseason if dc.deseason is not None else season > 1) and season > 1:
            d["seasonal"] = np.stack([seasonal_indices(v[: int(e)], season)
                                      for v, e in zip(panel.values, train_end)]).tolist()
        pipe = cls(model, panel, d, cfg)
        work = pipe.adjusted(panel, pipe.indices_for(panel))  # what the network reads: deseasonalised
        series, origin = panel_origins(lengths, fit_end, np.full(len(lengths), min_history), H)
        if dc.recent:  # the last `recent` windows of each series
            keep = origin > (fit_end - H)[series] - dc.recent
            series, origin = series[keep], origin[keep]
        train = pipe._tensors(work, series, origin)
        win_series = torch.as_tensor(series)
        batches = WindowBatcher(train[0], torch.zeros(len(series), H, 0), train[1], tcfg.batch_size, shuffle=True,
                                seed=cfg.train.seed)
        static = torch.tensor(pipe.scaled_static(panel.static), dtype=torch.float32)

        def step_fn(model, b):
            ids = win_series[b.index].to(b.x.device)
            out, scale = model(b.x[..., 0], b.x[..., 1], static.to(b.x.device)[ids], ids)
            return model.loss(out, b.y / scale)

        eval_fn = None
        if dev:
            ds, do = np.arange(len(lengths)), train_end - H  # one dev window per series: its last
            dx, dy = pipe._tensors(work, ds, do)
            dids = torch.as_tensor(ds)

            @torch.no_grad()
            def eval_fn(model):
                dev_ = next(model.parameters()).device
                out, scale = model(dx[..., 0].to(dev_), dx[..., 1].to(dev_), static.to(dev_), dids.to(dev_))
                yy = dy.to(dev_) / scale
                return {"mae": float((out.mean - yy).abs().mean()), "loss": float(model.loss(out, yy))}

        n_params = sum(p.numel() for p in model.parameters())
        seasonal = sum(bool(np.ptp(i) > 0) for i in d.get("seasonal") or [])
        log(f"{panel.source}: {len(panel.ids)} series ({int(lengths.min())} .. {int(lengths.max())} steps, freq "
            f"{panel.freq or 'steps'}, season {season}, {seasonal} deseasonalised); lookback {lookback}, min history "
            f"{min_history}, horizon {H}, test {test}; {len(series):,} training windows; {n_params:,} parameters")
        st = run_training(pipe, batches, step_fn, eval_fn, metric="mae", mode="min", out=out, resume=resume,
                          overwrite=overwrite, callbacks=callbacks, log=log, trainer_config=tcfg)
        metrics = {}
        if eval_fn is not None:
            model.eval()
            metrics = eval_fn(model)
        res = finish(pipe, st, metrics, None)
        if out is not None:
            write_text_atomic(Path(out) / "results.json", json.dumps(res, indent=2) + "\n")
        return pipe

    def _tensors(self, panel: Panel, series: np.ndarray, origin: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """x (windows, lookback, 2): value and observed flag; y (windows, horizon, 1) (NaN past the end)."""
        x, obs, y = gather_windows(panel, series, origin, self.lookback, self.horizon)
        t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        return t(np.stack([x, obs], -1)), t(y[..., None])

    def indices_for(self, panel: Panel) -> np.ndarray | None:
        """(series of `panel`, season) multiplicative seasonal indices, phase 0 at each series' first step:
        the training ones for the training series (shifted to a later start), else from the series itself;
        None for a model trained without deseasonalising."""
        stored = self.data.get("seasonal")
        if stored is None:
            return None
        stored, m = np.asarray(stored), self.data["season"]
        if panel is self.panel:
            return stored
        known = {k: i for i, k in enumerate(self.panel.ids)}
        out = []
        for i, k in enumerate(panel.ids):
            if k in known:
                j = known[k]
                shift = steps_between(self.panel.starts[j], panel.starts[i], panel.freq)
                out.append(np.roll(stored[j], -shift) if shift is not None else seasonal_indices(panel.values[i], m))
            else:
                out.append(seasonal_indices(panel.values[i], m))
        return np.stack(out)

    @staticmethod
    def adjusted(panel: Panel, indices: np.ndarray | None) -> Panel:
        """`panel` divided by its seasonal indices (itself without them)."""
        if indices is None:
            return panel
        m = indices.shape[1]
        return replace(panel, values=[v / indices[i][np.arange(len(v)) % m] for i, v in enumerate(panel.values)])

    def scaled_static(self, static: np.ndarray) -> np.ndarray:
        return (static - np.asarray(self.data["static_mean"])) / np.asarray(self.data["static_std"])

    # ---- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def forecast(self, panel: Panel, series: np.ndarray, origin: np.ndarray, ids: np.ndarray | None = None,
                 levels=LEVELS, batch_size: int = 4096) -> tuple[np.ndarray, dict]:
        """Forecasts from `origin` of each of `series` (indices into `panel`), in the series' units: the
        median of the members (windows, horizon) and {level: (lo, hi)} from the Gaussian head. `ids`: the
        model's series numbers (for the id embedding; default `series`)."""
        self.model.eval()
        device = next(self.model.parameters()).device
        short = np.flatnonzero(origin < self.data["min_history"])
        if len(short):
            i = int(series[short[0]])
            raise UserError(f"{panel.source}: series {panel.ids[i]!r} has {int(origin[short[0]])} steps before the "
                            f"forecast, fewer than the {self.data['min_history']} this model needs (min_history)")
        indices = self.indices_for(panel)
        x, _ = self._tensors(self.adjusted(panel, indices), series, origin)
        ids = torch.as_tensor(series if ids is None else ids)
        static = torch.tensor(self.scaled_static(panel.static), dtype=torch.float32)[torch.as_tensor(series)] \
            if panel.static.shape[1] else torch.zeros(len(series), 0)
        means, sds = [], []
        for i in range(0, len(x), batch_size):
            sl = slice(i, i + batch_size)
            out, scale = self.model(x[sl, :, 0].to(device), x[sl, :, 1].to(device), static[sl].to(device),
                                    ids[sl].to(device))
            med = out.members_mean.median(0).values if out.members_mean is not None else out.mean
            means.append((med * scale)[..., 0].double().cpu())
            if out.scale is not None:
                sds.append((out.scale * scale)[..., 0].double().cpu())
        mean = torch.cat(means).numpy()
        f = 1.0 if indices is None else factors(indices, series, origin[:, None] + np.arange(self.horizon))
        bands = {}
        if sds:
            sd = torch.cat(sds).numpy()
            for lv in levels:
                z = NormalDist().inv_cdf(0.5 + lv / 2)
                bands[lv] = ((mean - z * sd) * f, (mean + z * sd) * f)
        return mean * f, bands

    def panel_for(self, data=None) -> Panel:
        """The training panel, or `data` (a path or DataFrame) read with the training settings."""
        if data is None:
            return self.panel
        if isinstance(data, Panel):
            return data
        return align_static(read_panel(data, **{k: self.data.get(k) for k in READ}), self.panel.static_names)

    def _ids(self, panel: Panel) -> np.ndarray:
        """The model's number of each series of `panel` (required with an id embedding)."""
        known = {k: i for i, k in enumerate(self.panel.ids)}
        if self.model.cfg.id_embed:
            unknown = [k for k in panel.ids if k not in known]
            if unknown:
                raise UserError(f"{panel.source}: series {unknown[0]!r} was not in training; a model with an id "
                                "embedding forecasts only the series it was trained on")
        return np.array([known.get(k, 0) for k in panel.ids], dtype=np.int64)

    def predict(self, data=None, horizon: int | None = None, levels=LEVELS) -> pd.DataFrame:
        """Forecast the next `horizon` steps (default: the trained horizon) after the end of every series
        (of the training panel, or of `data`). One tidy row per series and step: id, time, step, mean,
        lo80, hi80, lo95, hi95."""
        H = self.horizon if horizon is None else int(horizon)
        if not 1 <= H <= self.horizon:
            raise UserError(f"horizon {horizon}: this model forecasts 1 to {self.horizon} steps at once")
        panel = self.panel_for(data)
        n = panel.lengths
        mean, bands = self.forecast(panel, np.arange(len(n)), n, self._ids(panel), levels)
        cols = {"id": np.repeat(panel.ids, H),
                "time": np.concatenate([panel.times(i, int(n[i]), H) for i in range(len(n))]),
                "step": np.tile(np.arange(1, H + 1), len(n)), "mean": mean[:, :H].ravel()}
        for lv, (lo, hi) in sorted(bands.items()):
            cols[f"lo{round(lv * 100)}"], cols[f"hi{round(lv * 100)}"] = lo[:, :H].ravel(), hi[:, :H].ravel()
        return pd.DataFrame(cols)

    def evaluate(self, data=None, baselines=EVAL_BASELINES, test: int | None = None) -> dict:
        """Score forecasts from the origins of each series' test part (every horizon steps from its start:
        the last `test` steps, default the training one): {"aggregate": {method: {smape, mase, ...}},
        "per_series": [{id, method, smape, mase, ...}, ...]}. Aggregates are means over series; MASE is
        scaled by each series' in-sample seasonal naive error before its first origin. Baselines (any of
        seqlab.forecast.baselines.FUNCTIONS) are fitted per series at each origin."""
        panel = self.panel_for(data)
        H, season = self.horizon, self.data["season"]
        test = self.data["test"] if test is None else int(test)
        if test < H:
            raise UserError(f"the test part holds {test} steps, fewer than the horizon {H}: nothing to score; "
                            "train with --test of at least the horizon, or pass test=")
        unknown = [b for b in baselines if b not in FUNCTIONS]
        if unknown:
            raise UserError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(FUNCTIONS)}")
        n = panel.lengths
        first = n - test
        series, origin = panel_origins(n, n, first, H)
        keep = (origin - first[series]) % H == 0
        series, origin = series[keep], origin[keep]
        mean, bands = self.forecast(panel, series, origin, self._ids(panel)[series])
        _, _, y = gather_windows(panel, series, origin, 1, H)
        rows = []
        for i in range(len(n)):
            sel = np.flatnonzero(series == i)
            hist = panel.values[i][: int(first[i])]
            scale = mase_scale(hist[:, None], season)[0]
            yi = y[sel]
            fcs = {"seqlab": (mean[sel], {lv: (lo[sel], hi[sel]) for lv, (lo, hi) in bands.items()})}
            for b in baselines:
                fcs[b] = (np.stack([FUNCTIONS[b](panel.values[i][: int(o)], H, season)[0] for o in origin[sel]]), {})
            for name, (f, iv) in fcs.items():
                r = {"id": panel.ids[i], "method": name, "smape": smape(yi, f), "mase": mase(yi, f, scale)}
                for lv, (lo, hi) in iv.items():
                    r[f"coverage{round(lv * 100)}"] = coverage(yi, lo, hi)
                rows.append(r)
        df = pd.DataFrame(rows)
        agg = df.drop(columns="id").groupby("method", sort=False).mean(numeric_only=True)
        return {"series": len(n), "origins": len(origin), "horizon": H, "season": season,
                "aggregate": {k: {c: float(v) for c, v in r.items() if v == v} for k, r in agg.iterrows()},
                "per_series": rows}

    # ---- files ---------------------------------------------------------------------------------
    @property
    def encoder(self) -> None:
        return None

    def meta(self, train_cfg=None) -> dict:
        tcfg = train_cfg or (self.config.train.trainer_config(DEFAULT_EPOCHS) if self.config else TrainConfig())
        return task_meta(TASK, self.model.cfg.to_json(), self.data, tcfg, {"panel": self.panel.to_json()})

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> ManyForecaster:
        """Open a checkpoint directory (a run's --out, best/ or last/)."""
        cfg, v, model = runtime.load_model(path, TASK, lambda m: GlobalForecaster(GlobalForecasterConfig.from_json(m)),
                                           device)
        if not isinstance(v.get("panel"), dict):
            raise UserError(f"{path}: its vocab.json holds no panel; retrain")
        return cls(model, Panel.from_json(v["panel"]), dict(cfg["data"]))
