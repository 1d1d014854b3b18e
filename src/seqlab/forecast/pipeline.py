"""What a forecasting checkpoint holds: the model, the scalers fitted on the training part, and the
series' metadata (columns, frequency, season, where the test part begins). Raw series in, forecasts
with intervals in the series' own units out."""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch

from seqlab.data.timeseries import Scaler, TimeSeries, calendar_features
from seqlab.data.windows import gather
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.forecast.backtest import Forecasts
from seqlab.models.forecaster import Forecaster, ForecasterConfig
from seqlab.train.checkpoint import task_meta

TASK = "forecast"
LEVELS = (0.8, 0.95)


class ForecastPipeline:
    """model + target scaler + covariate scaler + data settings (a dict saved as config "data")."""

    def __init__(self, model: Forecaster, scaler: Scaler, cov_scaler: Scaler | None, data: dict):
        self.model, self.scaler, self.cov_scaler, self.data = model, scaler, cov_scaler, data

    @property
    def lookback(self) -> int:
        return self.data["lookback"]

    @property
    def horizon(self) -> int:
        return self.model.cfg.horizon

    def features(self, s: TimeSeries, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Scaled targets (n, targets) and model covariates (steps, covariates): the user's covariates
        scaled with the training statistics, then the calendar features."""
        z = self.scaler.transform(s.values)
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
    def forecast(self, s: TimeSeries, origins: np.ndarray, levels=LEVELS, batch_size: int = 1024) -> Forecasts:
        """Forecasts (in the series' units) from each origin: mean (origins, horizon, targets) and the
        central intervals at `levels` from the Gaussian head (none without it)."""
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
        bands = {}
        if scales:
            scale = torch.cat(scales).numpy()
            for lv in levels:
                z = NormalDist().inv_cdf(0.5 + lv / 2)
                bands[lv] = (self.scaler.inverse(mean - z * scale), self.scaler.inverse(mean + z * scale))
        # the median of the forecast distribution; for a log series it is exp(mean), not the mean of y
        return Forecasts(self.scaler.inverse(mean), bands)

    def meta(self, train_cfg) -> dict:
        data = {**self.data, "scaler": self.scaler.to_json(),
                "cov_scaler": self.cov_scaler.to_json() if self.cov_scaler else None}
        return task_meta(TASK, self.model.cfg.to_json(), data, train_cfg, {"targets": self.data["targets"]})

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> ForecastPipeline:
        cfg, _, model = runtime.load_model(path, TASK, lambda m: Forecaster(ForecasterConfig.from_json(m)), device)
        data = dict(cfg["data"])
        cov = data.pop("cov_scaler")
        return cls(model, Scaler.from_json(data.pop("scaler")), Scaler.from_json(cov) if cov else None, data)
