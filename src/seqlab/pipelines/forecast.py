"""Time-series forecasting as a library: a series in, forecasts with 80%/95% intervals out.

    from seqlab.pipelines import Forecaster
    fc = Forecaster.fit("air.csv", horizon=12, lookback=36)     # or a pandas Series / DataFrame, or a list
    fc.predict(quantiles=(0.1, 0.9))                            # the next 12 steps: forecast, lo80..hi95, q10, q90
    fc.evaluate()["mase"]                                       # rolling-origin backtest of the test part
    fc.save("air/");  fc = Forecaster.load("air/")

The series is cut in time: training windows (and the scaling statistics) come from the steps before
the test part; `evaluate` backtests from origins inside the test part only, against naive and
seasonal naive (and, on request, ETS, ARIMA and Theta) refitted at every origin
(seqlab.pipelines.forecast_backtest).

Two networks (data["network"], chosen from the data by seqlab.forecast.auto unless network= is given):
  standard  reads the series standardised by the training statistics (log values with log_scale), with
            calendar features and season-aware window norm, early-stopped on a dev part;
  scaled    the default for a short positive series of one target without covariates: the M3 global
            model's recipe on one series. It reads the series divided by classical multiplicative seasonal
            indices (seqlab.forecast.seasonal, fitted on the training part, stored in data["seasonal"] by
            calendar position), in the series' units, each window divided by its mean |value| inside the
            network (input_scale "window"); 3 GRUs, their median; lr 5e-3, cosine over 100 epochs, no dev.
            Its forecast is multiplied back by the indices and taken into the scaler's units (`raw`), where
            the combination with ETS/ARIMA/Theta and the conformal intervals work as for the standard one.

Intervals and quantiles are conformal by default (seqlab.forecast.conformal): calibrated after training
on the errors of rolling-origin refits inside the training part, stored in config.json data["conformal"];
intervals="gaussian" takes them from the Gaussian head instead.

A checkpoint is self-contained: besides the model and the scalers fitted on the training part it
holds the series it was trained on (vocab.json "series": the values, covariates, start and
frequency), so forecasting from it needs neither the CSV file nor the working directory it was
trained in. Checkpoints written before that re-read the file named in config.json data["data"].
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from seqlab.data.timeseries import Scaler, TimeSeries, calendar_features, season_position
from seqlab.data.windows import WindowBatcher, gather, window_origins
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.forecast import combine
from seqlab.forecast.auto import choose
from seqlab.forecast.backtest import Forecasts
from seqlab.forecast.conformal import ConformalTable, calibrate, central, quantiles_of
from seqlab.forecast.seasonal import seasonal_indices
from seqlab.forecast.series import (
    OBJECT_SOURCE,
    READ_KEYS,  # noqa: F401  (for importers)
    auto_lookback,
    load_series,
    lookback_reason,
    series_from_json,
    series_from_object,
    series_to_json,
    split_series,
    test_start_of,
)
from seqlab.models.forecaster import Forecaster as ForecastNet
from seqlab.models.forecaster import ForecasterConfig
from seqlab.pipelines.base import Pipeline, finish, run_training, write_text_atomic
from seqlab.pipelines.forecast_backtest import DEFAULT_ORIGINS, BacktestMixin  # noqa: F401  (DEFAULT_ORIGINS: for importers)
from seqlab.pipelines.forecast_config import ForecastConfig
from seqlab.pipelines.forecast_predict import LEVELS, PredictMixin
from seqlab.pipelines.registry import register_task
from seqlab.train.checkpoint import task_meta
from seqlab.train.trainer import TrainConfig

TASK = "forecast"
DEFAULT_EPOCHS = 100


# ---- series in -----------------------------------------------------------------------------------
def windows(pipe: Forecaster, s: TimeSeries, origins: np.ndarray, end: int):
    """(x, future, y) tensors of the windows at `origins`, built from the first `end` steps only."""
    part = s.head(end)  # anything at or after `end` is out of reach: gather would fail, not leak
    z, cov = pipe.features(part, end)
    L, H = pipe.lookback, pipe.horizon
    x = np.concatenate([gather(z, origins, -L, L), gather(cov, origins, -L, L)], -1)
    t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    return t(x), t(gather(cov, origins, 0, H)), t(gather(z, origins, 0, H))


@register_task
class Forecaster(PredictMixin, BacktestMixin, Pipeline):
    """model + target scaler + covariate scaler + data settings (config.json "data") + the training series."""

    task = TASK
    Config = ForecastConfig

    def __init__(self, model: ForecastNet, scaler: Scaler, cov_scaler: Scaler | None, data: dict,
                 series: TimeSeries | None = None, config: ForecastConfig | None = None):
        self.model, self.scaler, self.cov_scaler, self.data = model, scaler, cov_scaler, data
        self.series, self.config = series, config
        self.train_config: TrainConfig | None = None  # the Trainer's settings with the chosen lr and schedule

    @property
    def lookback(self) -> int:
        return self.data["lookback"]

    @property
    def horizon(self) -> int:
        return self.model.cfg.horizon

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, series, config: ForecastConfig | dict | str | None = None, *, out=None, resume: bool = False,
            overwrite: bool = False, callbacks=None, log=print, **overrides) -> Forecaster:
        """Train on the part of `series` before its test part.

        `series`: a CSV/TSV path or statsmodels:<name> (read with time_col, target, covariates, ...), a
        pandas Series with a DatetimeIndex, a DataFrame, or a list/array of numbers (set `season` or
        `freq`). Settings: `config` and/or flat keyword overrides (horizon=6, lookback=24, epochs=50, ...:
        the names of the CLI flags; log_scale for --log). `out`: a run directory; None trains in memory.
        """
        cfg = cls.make_config(config, **overrides)
        m, dc = cfg.model, cfg.data
        tcfg = cfg.train.trainer_config(DEFAULT_EPOCHS)
        d = {"data": str(series) if isinstance(series, (str, Path)) else OBJECT_SOURCE,
             "time_col": None if dc.no_time else dc.time_col, "targets": dc.target, "covariates": dc.covariates,
             "delimiter": dc.delimiter, "encoding": dc.encoding, "fill": dc.fill, "time_format": dc.time_format,
             "season": dc.season}
        s = load_series(d) if isinstance(series, (str, Path)) else series_from_object(series, d, dc.freq)
        # settings left None are chosen from the part before the test part (a given one always wins)
        before_test = max(2, min(s.n, test_start_of(s, m.horizon, dc.test, dc.test_start)))
        plain = len(s.targets) == 1 and not s.covariates.shape[1] and m.decoder == "direct"
        if m.network == "scaled" and not plain:
            raise UserError("--network scaled forecasts one target without covariates by the direct decoder; "
                            "use --network standard")
        auto = choose(s.values[:before_test, 0], s.season, log_scale=dc.log_scale, window_norm=m.window_norm,
                      calendar=dc.calendar, ensemble=m.ensemble, season_given=dc.season is not None,
                      horizon=m.horizon, network=m.network, plain=plain)
        s, scaled = replace(s, season=auto.season), auto.network == "scaled"
        dev = dc.dev if dc.dev is not None or not scaled else 0  # scaled: a fixed schedule, no early stopping
        lookback = dc.lookback or auto_lookback(s, m.horizon, dc.test, dc.test_start, dev, auto.network)
        if dc.lookback is None:
            auto.reasons.append(f"lookback {lookback} ({lookback_reason(s, m.horizon, lookback, auto.network)})")
        if m.window_norm is None and auto.window_norm == "season" and lookback < s.season:
            auto.window_norm = "last"
        methods, why = combine.choose(m.combine, before_test)
        auto.reasons.append(why)
        if auto.reasons:
            log(auto.line() + " (set any of them to choose)")
        window_norm, ensemble = auto.window_norm, auto.ensemble
        dev_start, test_start = split_series(s, m.horizon, lookback, dc.test, dc.test_start, dev)
        scaler = Scaler.fit(s.values[:test_start], auto.log_scale, s.source)
        cov_scaler = Scaler.fit(s.covariates[:test_start]) if s.covariates.shape[1] else None
        calendar = auto.calendar and s.season > 1
        d.update(targets=s.targets, covariates=s.covariate_names, season=s.season, freq=s.freq, calendar=calendar,
                 lookback=lookback, n=s.n, test_start=test_start, dev_start=dev_start,
                 test_start_time=s.label(test_start), first_time=s.label(0), last_time=s.label(s.n - 1))
        d.update(network=auto.network, log_scale=auto.log_scale, window_norm=window_norm,  # what was chosen
                 ensemble=ensemble, intervals=m.intervals, combine=list(methods),
                 combine_rule="median")
        if scaled:  # classical multiplicative indices by calendar position (ones: no season)
            d["seasonal"] = seasonal_indices(s.values[:test_start, 0], s.season).tolist() if s.season > 1 else None
            if d["seasonal"] is not None:  # position k of the training part's season -> calendar position
                k0 = int(season_position(s.index[:1], s.freq)[0]) % s.season
                d["seasonal"] = np.roll(d["seasonal"], k0).tolist()
        m = replace(m, cell=m.cell or ("gru" if scaled else "lstm"))
        tcfg = replace(tcfg, lr=tcfg.lr or (5e-3 if scaled else 2e-3),
                       schedule=tcfg.schedule or ("cosine" if scaled else "constant"))
        if window_norm == "season" and not 1 < s.season <= lookback:
            raise UserError(f"--window-norm season needs a season of 2 or more (this series: {s.season}; set "
                            "--season) and a --lookback of at least one season")
        k = s.covariates.shape[1] + (2 if calendar else 0)
        enc = m.encoder_config(0, 0, input_dim=len(s.targets) + k)
        mcfg = ForecasterConfig(enc, len(s.targets), k, m.horizon, m.decoder, m.likelihood, window_norm,
                                m.teacher_forcing, m.head_dropout, s.season, ensemble,
                                "window" if scaled else "none", "median" if scaled else "mean")
        torch.manual_seed(cfg.train.seed)
        try:
            model = ForecastNet(mcfg)
        except ValueError as e:
            raise UserError(str(e)) from None
        pipe = cls(model, scaler, cov_scaler, d, s, cfg)
        pipe.train_config = tcfg
        x, fut, y = windows(pipe, s, window_origins(0, dev_start, lookback, m.horizon), dev_start)
        batches = WindowBatcher(x, fut, y, tcfg.batch_size, shuffle=True, seed=cfg.train.seed)
        eval_fn = None
        if dev_start < test_start:
            dev = windows(pipe, s, window_origins(dev_start, test_start, lookback, m.horizon), test_start)

            @torch.no_grad()
            def eval_fn(model):
                dx, dfut, dy = (v.to(next(model.parameters()).device) for v in dev)
                o = model(dx, dfut)
                return {"mae": float((o.mean - dy).abs().mean()), "loss": float(model.loss(o, dy))}

        def step_fn(model, b):
            return model.loss(model(b.x, b.future, b.y), b.y)

        n_params = sum(p.numel() for p in model.parameters())
        log(f"{s.source}: {s.n} steps ({s.label(0)} .. {s.label(s.n - 1)}, freq {s.freq}, season {s.season}); "
            f"train windows {len(x)}, " + (f"dev from {s.label(dev_start)}" if eval_fn else "no dev part") +
            f", test from {s.label(test_start)}; {n_params:,} parameters; intervals {m.intervals}"
            + (f" (calibrated on {m.calibration_folds} rolling-origin refits)" if m.intervals == "conformal" else ""))
        st = run_training(pipe, batches, step_fn, eval_fn, metric="mae", mode="min", out=out, resume=resume,
                          overwrite=overwrite, callbacks=callbacks, log=log, trainer_config=tcfg)
        metrics = {}
        if eval_fn is not None:
            model.eval()
            metrics = eval_fn(model)
        if m.intervals == "conformal":
            pipe.data["conformal"] = calibrate(pipe, s, dev_start, test_start, cfg, m.calibration_folds, out, log)
        res = finish(pipe, st, metrics, None)  # dev_mae, dev_loss: on the scaled series
        res.update(best_dev_mae_scaled=st.get("best"), test_start=s.label(test_start))
        if out is not None:
            write_text_atomic(Path(out) / "results.json", json.dumps(res, indent=2) + "\n")
        return pipe

    # ---- inference -----------------------------------------------------------------------------
    @property
    def scaled(self) -> bool:
        """The 'scaled' network: it reads the series divided by its seasonal indices, in the series' units."""
        return self.data.get("network") == "scaled"

    def factors(self, s: TimeSeries, steps: int) -> np.ndarray:
        """(steps, 1) the seasonal index of each of the first `steps` steps of `s` (ones: no indices)."""
        idx = self.data.get("seasonal")
        if not idx:
            return np.ones((steps, 1))
        return np.asarray(idx)[season_position(s.times(0, steps), s.freq) % len(idx)][:, None]

    def features(self, s: TimeSeries, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """The network's targets (n, targets) and covariates (steps, covariates). Targets: scaled with the
        training statistics (the scaled network: divided by the seasonal indices, in the series' units);
        covariates: the user's, scaled with the training statistics, then the calendar features."""
        z = s.values / self.factors(s, s.n) if self.scaled else self.scaler.transform(s.values)
        parts = []
        if s.covariates.shape[1]:
            if len(s.covariates) < steps:
                raise UserError(f"{s.source}: forecasting to {s.label(steps - 1)} needs the covariates "
                                f"{', '.join(s.covariate_names)} up to then; add rows with them (and an empty "
                                "target) at the end of the file")
            parts.append(self.cov_scaler.transform(s.covariates[:steps]))
        if self.data.get("calendar"):
            parts.append(calendar_features(s.times(0, steps), s.freq, self.data["season"]))
        cov = np.concatenate(parts, 1) if parts else np.zeros((steps, 0))
        return z, cov

    def inputs(self, s: TimeSeries, origins: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Model inputs for forecasts from each origin: x (origins, lookback, targets + covariates) and
        future (origins, horizon, covariates). Only steps before each origin are read from the targets."""
        if len(origins) and origins.min() < self.lookback:
            raise UserError(f"{s.source}: a forecast from {s.label(int(origins.min()))} needs {self.lookback} "
                            f"earlier steps (--lookback), but only {int(origins.min())} come before it")
        z, cov = self.features(s, int(origins.max()) + self.horizon)
        x = np.concatenate([gather(z, origins, -self.lookback, self.lookback),
                            gather(cov, origins, -self.lookback, self.lookback)], -1)
        future = gather(cov, origins, 0, self.horizon)
        return torch.tensor(x, dtype=torch.float32), torch.tensor(future, dtype=torch.float32)

    @torch.no_grad()
    def raw(self, s: TimeSeries, origins: np.ndarray, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's mean and Gaussian scale (origins, horizon, targets) in its scaled units (None: no head);
        with data["combine"], the mean is pooled with those classical models' forecasts (data["combine_rule"])."""
        self.model.eval()
        device = next(self.model.parameters()).device
        x, future = self.inputs(s, np.asarray(origins, dtype=np.int64))
        means, scales = [], []
        for i in range(0, len(x), batch_size):
            out = self.model(x[i : i + batch_size].to(device), future[i : i + batch_size].to(device))
            means.append(out.mean.double().cpu())
            if out.scale is not None:
                scales.append(out.scale.double().cpu())
        mean = torch.cat(means).numpy()
        sd = torch.cat(scales).numpy() if scales else None
        if self.scaled:  # series units / seasonal indices -> the scaler's units
            mean, sd = self.to_scaled(s, np.asarray(origins), mean, sd)
        methods = tuple(self.data.get("combine") or ())
        if methods:  # pooled with classical fits on the steps before each origin (seqlab.forecast.combine)
            other = combine.classical(s.values, np.asarray(origins), self.horizon, self.data["season"],
                                      self.scaler.log, methods)
            mean = combine.pool(mean, other, self.scaler, self.data.get("combine_rule", "mean"))
        return mean, sd

    def to_scaled(self, s: TimeSeries, origins: np.ndarray, mean: np.ndarray, sd: np.ndarray | None):
        """The scaled network's forecast from `origins` (mean, sd (origins, horizon, 1) of the series
        divided by its seasonal indices) in the scaler's units; a log model's forecast is kept above
        exp(mean - 5 std) of the training part's log values."""
        f = self.factors(s, int(origins.max()) + self.horizon)[origins[:, None] + np.arange(self.horizon)]
        y = mean * f
        if self.scaler.log:
            y = np.maximum(y, np.exp(np.asarray(self.scaler.mean) - 5 * np.asarray(self.scaler.std)))
        return self.scaler.transform(y), None if sd is None else self.scaler.transform_sd(y, sd * f)

    def forecast(self, s: TimeSeries, origins: np.ndarray, levels=LEVELS, batch_size: int = 1024,
                 quantiles=()) -> Forecasts:
        """Forecasts (in the series' units) from each origin: mean (origins, horizon, targets), the central
        intervals at `levels` and the `quantiles` (levels in (0, 1)): conformal (the table calibrated at
        fit time) or from the Gaussian head (data["intervals"]; none for a model without either)."""
        mean, scale = self.raw(s, origins, batch_size)
        q = {k: self.scaler.inverse(v) for k, v in
             quantiles_of(mean, scale, central(levels) + list(quantiles), self.conformal).items()}
        bands = {lv: (q[round((1 - lv) / 2, 10)], q[round((1 + lv) / 2, 10)]) for lv in levels} if q else {}
        # the median of the forecast distribution; for a log series it is exp(mean), not the mean of y
        return Forecasts(self.scaler.inverse(mean), bands, {t: q[t] for t in quantiles} if q else {})

    @property
    def conformal(self) -> ConformalTable | None:
        """The conformal table of a model with conformal intervals (None: Gaussian ones)."""
        j = self.data.get("conformal")
        return ConformalTable.from_json(j) if j and self.data.get("intervals") == "conformal" else None

    # ---- files ---------------------------------------------------------------------------------
    @property
    def encoder(self) -> None:  # a forecaster reads numbers, not tokens: nothing to unroll
        return None

    @classmethod
    def graph_model(cls, cfg: dict) -> tuple[str, torch.nn.Module]:
        return "forecast", ForecastNet(ForecasterConfig.from_json(cfg["model"]))

    def meta(self, train_cfg=None) -> dict:
        data = {**self.data, "scaler": self.scaler.to_json(),
                "cov_scaler": self.cov_scaler.to_json() if self.cov_scaler else None}
        tcfg = train_cfg or self.train_config or \
            (self.config.train.trainer_config(DEFAULT_EPOCHS) if self.config else TrainConfig())
        vocab = {"targets": self.data["targets"]}
        if self.series is not None:
            vocab["series"] = series_to_json(self.series)
        return task_meta(TASK, self.model.cfg.to_json(), data, tcfg, vocab)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Forecaster:
        """Open a checkpoint directory (a run's --out, best/ or last/) or an exported .onnx/.pt file."""
        cfg, v, model = runtime.load_model(path, TASK, lambda m: ForecastNet(ForecasterConfig.from_json(m)), device)
        data = dict(cfg["data"])
        cov = data.pop("cov_scaler")
        series = series_from_json(v["series"], data) if isinstance(v.get("series"), dict) else None
        return cls(model, Scaler.from_json(data.pop("scaler")), Scaler.from_json(cov) if cov else None, data, series)


ForecastPipeline = Forecaster  # the name before seqlab.pipelines
