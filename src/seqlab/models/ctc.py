"""A recurrent acoustic model for CTC: frames -> (shorter) frames -> the shared encoder -> label posteriors.

    feats (batch, time, feat_dim)
      -> front-end: 'stack' k frames into one (batch, ceil(time/k), k*feat_dim), or a strided 'conv'
         (batch, ceil(time/k), conv_dim), or 'none'
      -> RecurrentEncoder (batch, time', dirs*hidden)
      -> linear -> log-softmax (batch, time', labels)      label 0 is the CTC blank

The front-end shortens the sequence k times, so the recurrence runs k times fewer steps; CTC needs at
least one frame per output label (two for a repeated one), which k must leave. Padded frames are zeros
and the encoder packs the batch, so a clip's posteriors are the same alone or padded in a batch.
A unidirectional model can read a long input chunk by chunk: `forward(..., state=)` returns the state
to carry into the next chunk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from seqlab.models.encoder import EncoderConfig, RecurrentEncoder

FRONTENDS = ("none", "stack", "conv")


@dataclass
class CTCConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    feat_dim: int = 40
    num_labels: int = 2  # blank + units
    frontend: str = "stack"
    stride: int = 2
    conv_dim: int = 128
    head_dropout: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> CTCConfig:
        return cls(**{**d, "encoder": EncoderConfig(**d["encoder"])})

    @property
    def encoder_input(self) -> int:
        """Size of each step the encoder reads."""
        if self.frontend == "stack":
            return self.feat_dim * self.stride
        return self.conv_dim if self.frontend == "conv" else self.feat_dim

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames after the front-end for input lengths (batch,)."""
        return lengths if self.frontend == "none" else (lengths + self.stride - 1) // self.stride


class CTCAcousticModel(nn.Module):
    def __init__(self, cfg: CTCConfig):
        super().__init__()
        if cfg.frontend not in FRONTENDS:
            raise ValueError(f"unknown front-end {cfg.frontend!r}; choose one of {', '.join(FRONTENDS)}")
        if cfg.encoder.input_dim != cfg.encoder_input:
            raise ValueError(f"the encoder reads {cfg.encoder.input_dim} features, the front-end gives "
                             f"{cfg.encoder_input}")
        self.cfg = cfg
        s = cfg.stride
        self.conv = nn.Conv1d(cfg.feat_dim, cfg.conv_dim, 2 * s + 1 if s > 1 else 3, s, s if s > 1 else 1) \
            if cfg.frontend == "conv" else None
        self.encoder = RecurrentEncoder(cfg.encoder)
        self.dropout = nn.Dropout(cfg.head_dropout)
        self.out = nn.Linear(cfg.encoder.output_dim, cfg.num_labels)

    def frontend(self, x: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(batch, time, feat_dim) -> (batch, time', encoder_input) and the new lengths."""
        cfg = self.cfg
        if cfg.frontend == "none":
            return x, lengths
        s, (b, t, d) = cfg.stride, x.shape
        pad = (-t) % s
        if pad:
            x = torch.cat([x, x.new_zeros(b, pad, d)], 1)
        if cfg.frontend == "stack":
            x = x.reshape(b, (t + pad) // s, s * d)
        else:
            if lengths is not None:  # zero the padding: the conv of a clip alone sees zeros there too
                mask = torch.arange(t + pad)[None, :] < lengths[:, None].cpu()
                x = x * mask.to(x.device)[..., None]
            x = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)[:, : (t + pad) // s]
        return x, None if lengths is None else cfg.out_lengths(lengths.cpu())

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, state=None, return_state: bool = False):
        """feats (batch, time, feat_dim), lengths (batch,) -> (log_probs (batch, time', labels), lengths');
        with return_state also the encoder's final state (h_n, or (h_n, c_n) for LSTM)."""
        h, out_len = self.frontend(x, lengths)
        enc = self.encoder(h, out_len, state)
        logp = torch.log_softmax(self.out(self.dropout(enc.outputs)).float(), -1)
        if return_state:
            return logp, out_len, (enc.h_n, enc.c_n) if enc.c_n is not None else enc.h_n
        return logp, out_len
