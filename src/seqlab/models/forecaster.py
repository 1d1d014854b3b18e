"""Multi-step forecaster on the shared recurrent encoder (numeric input: vocab_size 0).

    x (batch, lookback, targets + covariates) --encoder--> h (batch, hidden)
      direct:  h [+ future covariates flattened] --linear--> all horizon steps at once
      seq2seq: a decoder RNN starts from the encoder's state and runs over the horizon, one step at a
               time, reading the previous value (the true one under teacher forcing, else its own
               forecast) and that step's known covariates
    -> mean (batch, horizon, targets) and, with the Gaussian head, scale (batch, horizon, targets)

Window normalisation: the level of each input window (its last value, or its mean) is subtracted
from the targets before the encoder and added back to the forecast, so a series that trends out of
the range seen in training is still forecast from where it is now. With 'season' the inputs are
taken relative to the last value too, but the forecast is added to the value one season earlier:
the network learns what changes from one season to the next (seasonal naive is its zero output).

Window scaling (input_scale 'window', as the global forecaster does for many series): each window's
targets are divided by their mean absolute value before anything else and the forecast multiplied
back, so the network sees every window at the same size (a series times 1000 is forecast times 1000).
The loss is then taken in window units (ForecastOutput.window).

The Gaussian head is trained by negative log-likelihood; mean +- z * scale gives the intervals.
With `ensemble` K > 1 the model holds K independently initialised members (encoder + head each),
trained side by side, each on its own loss; the forecast is their equal-weight mixture (a deep
ensemble: Lakshminarayanan et al. 2017), which is steadier than any one member on short series.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.models.encoder import EncoderConfig, RecurrentEncoder

DECODERS = ("direct", "seq2seq")
LIKELIHOODS = ("gaussian", "none")
WINDOW_NORMS = ("last", "mean", "season", "none")
INPUT_SCALES = ("none", "window")
POINTS = ("mean", "median")


@dataclass
class ForecasterConfig:
    """encoder.input_dim must be targets + covariates. teacher_forcing: the share of decoder steps fed
    the true previous value in training (seq2seq only; 1.0 runs all steps in one call)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    targets: int = 1
    covariates: int = 0
    horizon: int = 12
    decoder: str = "direct"
    likelihood: str = "gaussian"
    window_norm: str = "last"
    teacher_forcing: float = 1.0
    head_dropout: float = 0.0
    season: int = 1
    ensemble: int = 1
    input_scale: str = "none"
    point: str = "mean"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ForecasterConfig:
        return cls(**{**d, "encoder": EncoderConfig(**d["encoder"])})


class ForecastOutput(NamedTuple):
    """mean (batch, horizon, targets); scale (batch, horizon, targets) or None without a likelihood;
    members_mean / members_scale (members, batch, horizon, targets): each ensemble member's own;
    window (batch, 1, targets): each window's scale with input_scale 'window' (all in the input's units)."""

    mean: torch.Tensor
    scale: torch.Tensor | None
    members_mean: torch.Tensor | None = None
    members_scale: torch.Tensor | None = None
    window: torch.Tensor | None = None


class _Member(nn.Module):
    """One network: encoder + direct head, or encoder + decoder RNN + head. Works in normalised units."""

    def __init__(self, cfg: ForecasterConfig):
        super().__init__()
        enc = cfg.encoder
        self.cfg = cfg
        self.params = 2 if cfg.likelihood == "gaussian" else 1
        self.encoder = RecurrentEncoder(enc)
        self.dropout = nn.Dropout(cfg.head_dropout)
        d, k, h = cfg.targets, cfg.covariates, cfg.horizon
        if cfg.decoder == "direct":
            self.head = nn.Linear(enc.output_dim + h * k, h * d * self.params)
        else:
            dec = EncoderConfig(vocab_size=0, input_dim=d + k, hidden=enc.hidden, layers=enc.layers, cell=enc.cell,
                                dropout=enc.dropout)
            self.decoder = RecurrentEncoder(dec)
            self.head = nn.Linear(enc.hidden, d * self.params)

    def _split(self, raw: torch.Tensor) -> ForecastOutput:
        """raw (batch, steps, targets * params) -> mean and scale (batch, steps, targets)."""
        d = self.cfg.targets
        if self.params == 1:
            return ForecastOutput(raw, None)
        return ForecastOutput(raw[..., :d], F.softplus(raw[..., d:]) + 1e-3)

    def forward(self, x, future, y, offset) -> ForecastOutput:
        """x (batch, lookback, targets + covariates) relative to the window level; future (batch,
        horizon, covariates); y (batch, horizon, targets) relative to the level, or None; offset
        (batch, horizon, targets) = base - level. Returns the output relative to the base."""
        cfg = self.cfg
        enc = self.encoder(x)
        if cfg.decoder == "direct":
            h = torch.cat([enc.final_hidden(), future.flatten(1)], 1)
            raw = self.head(self.dropout(h)).view(x.shape[0], cfg.horizon, cfg.targets * self.params)
            return self._split(raw)
        return self._decode(x[:, -1:, : cfg.targets], enc, future, y, offset)

    def _decode(self, prev: torch.Tensor, enc, future: torch.Tensor, y: torch.Tensor | None,
                offset: torch.Tensor) -> ForecastOutput:
        """Run the decoder over the horizon from prev (batch, 1, targets), the last observed value."""
        state = (enc.h_n, enc.c_n) if enc.c_n is not None else enc.h_n
        tf = self.cfg.teacher_forcing if (self.training and y is not None) else 0.0
        if tf >= 1.0:  # every step reads the true previous value: one call over the whole horizon
            inp = torch.cat([torch.cat([prev, y[:, :-1]], 1), future], -1)
            return self._split(self.head(self.dropout(self.decoder(inp, None, state).outputs)))
        means, scales = [], []
        for t in range(self.cfg.horizon):  # batched over windows, one step at a time
            step = self.decoder(torch.cat([prev, future[:, t : t + 1]], -1), None, state)
            state = (step.h_n, step.c_n) if step.c_n is not None else step.h_n
            o = self._split(self.head(self.dropout(step.outputs)))
            means.append(o.mean)
            scales.append(o.scale)
            prev = o.mean + offset[:, t : t + 1]  # back to the level-relative units of the inputs
            if tf > 0.0:
                use_true = torch.rand(prev.shape[0], 1, 1, device=prev.device) < tf
                prev = torch.where(use_true, y[:, t : t + 1], prev)
        scale = torch.cat(scales, 1) if scales[0] is not None else None
        return ForecastOutput(torch.cat(means, 1), scale)


class Forecaster(nn.Module):
    def __init__(self, cfg: ForecasterConfig):
        super().__init__()
        enc = cfg.encoder
        for name, value, choices in (("decoder", cfg.decoder, DECODERS), ("likelihood", cfg.likelihood, LIKELIHOODS),
                                     ("window_norm", cfg.window_norm, WINDOW_NORMS),
                                     ("input_scale", cfg.input_scale, INPUT_SCALES), ("point", cfg.point, POINTS)):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
        if enc.vocab_size or enc.input_dim != cfg.targets + cfg.covariates:
            raise ValueError("the encoder must read numeric inputs: vocab_size 0, input_dim = targets + covariates")
        if cfg.window_norm == "season" and cfg.season < 2:
            raise ValueError("window norm 'season' needs a seasonal period of 2 or more")
        if enc.cell == "none":
            raise ValueError("a forecaster needs a recurrent cell (rnn, lstm or gru), not 'none'")
        if cfg.decoder == "seq2seq" and enc.bidirectional:
            raise ValueError("the seq2seq decoder continues the encoder's state; use a unidirectional encoder")
        if cfg.ensemble < 1:
            raise ValueError("ensemble must be at least 1")
        self.cfg = cfg
        self.members = nn.ModuleList(_Member(cfg) for _ in range(cfg.ensemble))

    def forward(self, x: torch.Tensor, future: torch.Tensor | None = None,
                y: torch.Tensor | None = None) -> ForecastOutput:
        """x (batch, lookback, targets + covariates); future (batch, horizon, covariates) or None;
        y (batch, horizon, targets): the true values, read only by the seq2seq decoder in training
        (teacher forcing). Returns ForecastOutput: mean and scale (batch, horizon, targets) of the
        ensemble's mixture, and each member's (members, batch, horizon, targets)."""
        cfg = self.cfg
        d, b = cfg.targets, x.shape[0]
        if future is None:
            future = x.new_zeros(b, cfg.horizon, cfg.covariates)
        window = None
        if cfg.input_scale == "window":  # (batch, 1, targets): each window's mean |target|, 1 where that is 0
            window = x[..., :d].abs().mean(1, keepdim=True)
            window = torch.where(window > 0, window, torch.ones_like(window))
            x = torch.cat([x[..., :d] / window, x[..., d:]], -1)
            y = None if y is None else y / window
        level = x[:, -1:, :d]  # (batch, 1, targets)
        if cfg.window_norm == "mean":
            level = x[:, :, :d].mean(1, keepdim=True)
        elif cfg.window_norm == "none":
            level = torch.zeros_like(level)
        base = level.expand(b, cfg.horizon, d)  # what the network's output is added to
        if cfg.window_norm == "season":  # the same step one season before, from the input window
            if x.shape[1] < cfg.season:
                raise ValueError(f"window norm 'season' needs a lookback of at least the season ({cfg.season})")
            base = x[:, x.shape[1] - cfg.season + torch.arange(cfg.horizon, device=x.device) % cfg.season, :d]
        x = torch.cat([x[..., :d] - level, x[..., d:]], -1)
        y = None if y is None else y - level
        outs = [m(x, future, y, base - level) for m in self.members]
        means = torch.stack([o.mean for o in outs]) + base  # (members, batch, horizon, targets)
        mean = means.mean(0)
        w = 1.0 if window is None else window
        point = mean if cfg.point == "mean" else median(means)
        if outs[0].scale is None:
            return ForecastOutput(point * w, None, means * w, None, window)
        scales = torch.stack([o.scale for o in outs])
        var = (scales.pow(2) + means.pow(2)).mean(0) - mean.pow(2)  # variance of the equal-weight mixture
        return ForecastOutput(point * w, var.clamp_min(1e-12).sqrt() * w, means * w, scales * w, window)

    def loss(self, out: ForecastOutput, y: torch.Tensor) -> torch.Tensor:
        """Each member's Gaussian negative log-likelihood per value (or mean squared error without a
        likelihood), averaged over members: members learn independently, as in a deep ensemble. With
        window scaling, in each window's units."""
        mean = out.mean if out.members_mean is None else out.members_mean
        scale = out.scale if out.members_mean is None else out.members_scale
        if out.window is not None:
            y, mean = y / out.window, mean / out.window
            scale = None if scale is None else scale / out.window
        if scale is None:
            return F.mse_loss(mean, y.expand_as(mean))
        z = (y - mean) / scale
        return (0.5 * z.pow(2) + scale.log()).mean() + 0.5 * math.log(2 * math.pi)


def median(v: torch.Tensor) -> torch.Tensor:
    """The median over dim 0 (the lower middle value for an even count, as torch.median), by sorting:
    exportable to ONNX, which has no median."""
    return v.sort(0).values[(v.shape[0] - 1) // 2]
