"""A global forecaster: one ForecastNet shared by many series, each window scaled on its own.

    x (batch, lookback) raw values, observed (batch, lookback) 1 = a real step, 0 = padding
      -> scale (batch,): the mean absolute value of the window's real steps; x / scale
      -> ForecastNet input (batch, lookback, 1 + covariates): value, observed, static covariates and
         the series' learned embedding (both repeated over time and over the horizon)
      -> mean, scale (batch, horizon) in window units; times the window's scale for the series' units

Dividing by the window's own scale makes the model blind to each series' units (a series times 1000
is forecast times 1000), so one network serves series of any size; ForecastNet's window norm then
takes the level out (its last value by default).

Losses: 'mae' trains the point forecast by mean absolute error (which sMAPE and MASE reward) and the
Gaussian scale by likelihood around the detached point forecast; 'smape' the same with the point
forecast trained on 2|y - f| / (|y| + |f|); 'gaussian' is ForecastNet's own likelihood (each ensemble
member on its own in all three).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from seqlab.models.encoder import EncoderConfig
from seqlab.models.forecaster import Forecaster as ForecastNet
from seqlab.models.forecaster import ForecasterConfig, ForecastOutput

LOSSES = ("mae", "smape", "gaussian")


@dataclass
class GlobalForecasterConfig:
    """net.covariates must be 1 + static + id_embed (observed flag, static covariates, id embedding)."""

    net: ForecasterConfig = field(default_factory=ForecasterConfig)
    series: int = 1
    static: int = 0
    id_embed: int = 0
    loss: str = "mae"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> GlobalForecasterConfig:
        net = dict(d["net"])
        net = ForecasterConfig(**{**net, "encoder": EncoderConfig(**net["encoder"])})
        return cls(**{**d, "net": net})


class GlobalForecaster(nn.Module):
    def __init__(self, cfg: GlobalForecasterConfig):
        super().__init__()
        if cfg.loss not in LOSSES:
            raise ValueError(f"unknown loss {cfg.loss!r}; choose one of {', '.join(LOSSES)}")
        if cfg.net.covariates != 1 + cfg.static + cfg.id_embed or cfg.net.targets != 1:
            raise ValueError("net must read one target and 1 + static + id_embed covariates")
        self.cfg = cfg
        self.net = ForecastNet(cfg.net)
        self.embed = nn.Embedding(cfg.series, cfg.id_embed) if cfg.id_embed else None

    @staticmethod
    def window_scale(x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """(batch,) mean absolute value of each window's real steps (1 where that is 0)."""
        s = (x.abs() * observed).sum(1) / observed.sum(1).clamp_min(1.0)
        return torch.where(s > 0, s, torch.ones_like(s))

    def forward(self, x: torch.Tensor, observed: torch.Tensor, static: torch.Tensor | None = None,
                ids: torch.Tensor | None = None) -> tuple[ForecastOutput, torch.Tensor]:
        """x, observed (batch, lookback); static (batch, static); ids (batch,) series numbers (read with an
        id embedding). Returns (ForecastNet's output in window units: mean (batch, horizon, 1), ...;
        scale (batch, 1, 1): multiply by it for the series' units)."""
        cfg = self.cfg
        b, lookback, horizon = x.shape[0], x.shape[1], cfg.net.horizon
        scale = self.window_scale(x, observed)[:, None, None]
        side = [t for t in (static if cfg.static else None,
                            self.embed(ids) if self.embed is not None else None) if t is not None]
        side = torch.cat(side, -1)[:, None, :] if side else x.new_zeros(b, 1, 0)
        inp = torch.cat([x[..., None] / scale, observed[..., None], side.expand(b, lookback, -1)], -1)
        future = torch.cat([x.new_ones(b, horizon, 1), side.expand(b, horizon, -1)], -1)
        return self.net(inp, future), scale

    def loss(self, out: ForecastOutput, y: torch.Tensor) -> torch.Tensor:
        """y (batch, horizon, 1) in window units (the true values / scale); NaN steps (past a series'
        end) are not scored."""
        mask = ~torch.isnan(y)
        y = torch.nan_to_num(y)
        mean = out.members_mean if out.members_mean is not None else out.mean[None]
        scale = out.members_scale if out.members_scale is not None else out.scale
        if scale is not None and scale.dim() == 3:
            scale = scale[None]
        w = mask.expand_as(mean).float()
        n = w.sum().clamp_min(1.0)
        if self.cfg.loss == "gaussian" and scale is not None:
            z = (y - mean) / scale
            return ((0.5 * z.pow(2) + scale.log()) * w).sum() / n + 0.5 * math.log(2 * math.pi)
        err = (y - mean).abs()
        if self.cfg.loss == "smape":  # 2|y - f| / (|y| + |f|): the M3/M4 score itself
            err = 2 * err / (y.abs() + mean.abs()).clamp_min(1e-6)
        point = (err * w).sum() / n
        if scale is None:
            return point
        z = (y - mean.detach()) / scale
        return point + ((0.5 * z.pow(2) + scale.log()) * w).sum() / n
