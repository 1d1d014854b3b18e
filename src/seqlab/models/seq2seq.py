"""Encoder-decoder (seq2seq) with attention, for translation and question answering.

    source ids (batch, src) --RecurrentEncoder--> keys (batch, src, dirs*hidden) + final state
    final state --bridge--> decoder initial state (dec_layers, batch, dec_hidden)
    each target step t:  x_t = embed(y_{t-1}) [+ h~_{t-1} with input feeding]
                         h_t = RNN(x_t, h_{t-1})                              (batch, dec_hidden)
                         c_t, a_t = attention(h_t, keys)   (batch, dirs*hidden), (batch, src)
                         h~_t = tanh(W_c [c_t; h_t])        (h~_t = h_t without attention)
                         logits_t = W_o h~_t                                   (batch, tgt_vocab)

Attention is placed as in Luong et al. (2015): the query is the new decoder state; the score is
dot, general (Luong) or additive (Bahdanau), see `seqlab.models.attention`.

Training with teacher forcing ratio 1 and no input feeding needs no loop over target steps: the
decoder RNN reads the whole gold prefix in one call, and attention is computed for all steps at
once with batched matrix products. Scheduled sampling (ratio < 1) and input feeding make each step
depend on the previous one, so `forward` then steps through time (batched over sentences); both
paths give the same result at ratio 1 (tested). Decoding uses `encode` once and `step` per token.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.models.attention import ATTENTIONS, Attention, source_mask
from seqlab.models.encoder import EncoderConfig, RecurrentEncoder

DEC_CELLS = ("rnn", "rnn_relu", "lstm", "gru")
BRIDGES = ("linear", "zero")
TF_DECAYS = ("none", "linear", "exponential")


@dataclass
class Seq2SeqConfig:
    """Hyper-parameters of `Seq2Seq` (saved as JSON in every checkpoint).

    encoder: the shared encoder's config (source vocabulary, cell, bidirectional, ...).
    dec_hidden: decoder state size; 0 = the encoder's output size (dirs*hidden), which dot needs.
    attention: none | dot | general | additive; attn_dim: hidden units of the additive score.
    input_feed: feed h~_{t-1} into the decoder's input at step t (Luong's input feeding).
    bridge: 'linear' maps the encoder's final states (both directions) to the decoder's initial
        states (tanh(W h)); 'zero' starts the decoder from zeros.
    dropout: on decoder embeddings and before the output layer (and between decoder layers).
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tgt_vocab_size: int = 0
    dec_embed: int = 128
    dec_hidden: int = 0
    dec_layers: int = 1
    dec_cell: str = "gru"
    attention: str = "additive"
    attn_dim: int = 0
    input_feed: bool = False
    bridge: str = "linear"
    dropout: float = 0.0
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3

    @property
    def hidden(self) -> int:
        return self.dec_hidden or self.encoder.output_dim

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Seq2SeqConfig:
        return cls(**{**d, "encoder": EncoderConfig(**d["encoder"])})


class Memory(NamedTuple):
    """What the decoder reads at every step: keys (batch, src, key_dim) = encoder outputs,
    proj = the attention's precomputed key projection (or None), mask (batch, src) bool."""

    keys: torch.Tensor
    proj: torch.Tensor | None
    mask: torch.Tensor

    def select(self, idx: torch.Tensor) -> Memory:
        """Rows `idx` (n,) of the batch (to expand for beams or keep unfinished sentences)."""
        return Memory(self.keys[idx], None if self.proj is None else self.proj[idx], self.mask[idx])


class DecoderState(NamedTuple):
    """h (dec_layers, batch, hidden); c likewise for LSTM, else None; feed (batch, hidden) = the
    previous attentional state h~ with input feeding, else None."""

    h: torch.Tensor
    c: torch.Tensor | None
    feed: torch.Tensor | None

    def select(self, idx: torch.Tensor) -> DecoderState:
        return DecoderState(self.h[:, idx], None if self.c is None else self.c[:, idx],
                            None if self.feed is None else self.feed[idx])


def _dec_rnn(cell: str, input_size: int, hidden: int, layers: int, dropout: float) -> nn.RNNBase:
    kw = dict(batch_first=True, num_layers=layers, dropout=dropout if layers > 1 else 0.0)
    if cell == "lstm":
        return nn.LSTM(input_size, hidden, **kw)
    if cell == "gru":
        return nn.GRU(input_size, hidden, **kw)
    if cell in ("rnn", "rnn_relu"):
        return nn.RNN(input_size, hidden, nonlinearity="relu" if cell == "rnn_relu" else "tanh", **kw)
    raise ValueError(f"unknown decoder cell {cell!r}; choose one of {', '.join(DEC_CELLS)}")


class Seq2Seq(nn.Module):
    """Recurrent encoder-decoder with optional attention; see the module docstring."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        if cfg.encoder.cell == "none":
            raise ValueError("the seq2seq encoder needs a recurrent cell (rnn, lstm or gru), not 'none'")
        if cfg.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {cfg.attention!r}; choose one of {', '.join(ATTENTIONS)}")
        if cfg.bridge not in BRIDGES:
            raise ValueError(f"unknown bridge {cfg.bridge!r}; choose one of {', '.join(BRIDGES)}")
        if cfg.input_feed and cfg.attention == "none":
            raise ValueError("input feeding feeds the attentional state back; it needs an attention")
        self.cfg = cfg
        hid, key = cfg.hidden, cfg.encoder.output_dim
        self.encoder = RecurrentEncoder(cfg.encoder)
        self.embedding = nn.Embedding(cfg.tgt_vocab_size, cfg.dec_embed, padding_idx=cfg.pad_id)
        self.rnn = _dec_rnn(cfg.dec_cell, cfg.dec_embed + (hid if cfg.input_feed else 0), hid,
                            cfg.dec_layers, cfg.dropout)
        self.attention = None if cfg.attention == "none" else Attention(cfg.attention, hid, key, cfg.attn_dim)
        self.combine = None if self.attention is None else nn.Linear(key + hid, hid)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(hid, cfg.tgt_vocab_size)
        enc_state = cfg.encoder.directions * cfg.encoder.hidden
        self.bridge_h = nn.Linear(enc_state, hid) if cfg.bridge == "linear" else None
        lstm = cfg.dec_cell == "lstm"
        self.bridge_c = nn.Linear(enc_state, hid) if cfg.bridge == "linear" and lstm else None

    # ---- encoder side --------------------------------------------------------------------------
    def _layers(self, s: torch.Tensor) -> torch.Tensor:
        """(enc_layers*dirs, batch, h) -> (dec_layers, batch, dirs*h): both directions of a layer
        side by side; the top dec_layers layers (layer 0 repeated if the encoder has fewer)."""
        d = self.cfg.encoder.directions
        n, b, h = s.shape
        per_layer = s.view(n // d, d, b, h).permute(0, 2, 1, 3).reshape(n // d, b, d * h)
        le, ld = n // d, self.cfg.dec_layers
        idx = torch.tensor([max(0, le - ld + i) for i in range(ld)], device=s.device)
        return per_layer[idx]

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[Memory, DecoderState]:
        """src (batch, src) ids, lengths (batch,) -> (Memory, the decoder's initial DecoderState)."""
        enc = self.encoder(src, lengths)
        keys = enc.outputs
        mask = source_mask(lengths, keys.shape[1], keys.device)
        proj = self.attention.precompute(keys) if self.attention is not None else None
        b, cfg = src.shape[0], self.cfg
        if self.bridge_h is None:
            h = keys.new_zeros(cfg.dec_layers, b, cfg.hidden)
        else:
            h = torch.tanh(self.bridge_h(self._layers(enc.h_n)))
        c = None
        if cfg.dec_cell == "lstm":
            if self.bridge_c is None:
                c = torch.zeros_like(h)
            else:
                c = self.bridge_c(self._layers(enc.c_n if enc.c_n is not None else enc.h_n))
        feed = keys.new_zeros(b, cfg.hidden) if cfg.input_feed else None
        return Memory(keys, proj, mask), DecoderState(h.contiguous(), c if c is None else c.contiguous(), feed)

    # ---- decoder side --------------------------------------------------------------------------
    def _attend(self, h: torch.Tensor, mem: Memory) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decoder states h (batch, [steps,] hidden) -> attentional states h~ of the same shape
        and weights (batch, [steps,] src), or (h, None) without attention."""
        if self.attention is None:
            return h, None
        ctx, w = self.attention(h, mem.keys, mem.proj, mem.mask)
        return torch.tanh(self.combine(torch.cat([ctx, h], -1))), w

    def step(self, y: torch.Tensor, state: DecoderState,
             mem: Memory) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """One decoder step for the previous tokens y (batch,): logits (batch, tgt_vocab), the new
        state, and attention weights (batch, src) (None without attention)."""
        x = self.drop(self.embedding(y))
        if self.cfg.input_feed:
            x = torch.cat([x, state.feed], -1)
        hx = (state.h, state.c) if state.c is not None else state.h
        out, hx = self.rnn(x[:, None, :], hx)
        h, c = (hx if isinstance(hx, tuple) else (hx, None))
        ht, w = self._attend(out[:, 0], mem)
        return self.out(self.drop(ht)), DecoderState(h, c, ht if self.cfg.input_feed else None), w

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                teacher_forcing: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Score target sequences.

        Args:
            src: (batch, src) source ids; src_lengths: (batch,).
            tgt_in: (batch, tgt) decoder inputs: <bos> then the gold tokens shifted right.
            teacher_forcing: probability of feeding the gold previous token (per sentence and
                step); otherwise the model's own argmax prediction is fed (scheduled sampling).
        Returns:
            logits (batch, tgt, tgt_vocab) and attention weights (batch, tgt, src) or None.
        """
        mem, state = self.encode(src, src_lengths)
        if teacher_forcing >= 1.0 and not self.cfg.input_feed:  # all steps at once
            hx = (state.h, state.c) if state.c is not None else state.h
            out, _ = self.rnn(self.drop(self.embedding(tgt_in)), hx)
            ht, w = self._attend(out, mem)
            return self.out(self.drop(ht)), w
        logits, weights = [], []
        y = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            if t > 0:
                gold = torch.rand(y.shape[0], device=y.device) < teacher_forcing
                y = torch.where(gold, tgt_in[:, t], logits[-1].detach().argmax(-1))
            lg, state, w = self.step(y, state, mem)
            logits.append(lg)
            weights.append(w)
        attn = torch.stack(weights, 1) if weights[0] is not None else None
        return torch.stack(logits, 1), attn


def decoder_inputs(targets: torch.Tensor, bos_id: int, pad_id: int) -> torch.Tensor:
    """Gold targets (batch, tgt) padded with -100 (each ending in <eos>) -> decoder inputs
    (batch, tgt): <bos> followed by the targets shifted right, padding as PAD."""
    prev = targets[:, :-1].masked_fill(targets[:, :-1] < 0, pad_id)
    bos = torch.full_like(targets[:, :1], bos_id)
    return torch.cat([bos, prev], 1)


def seq2seq_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over the real target tokens: logits (batch, tgt, vocab), targets
    (batch, tgt) with -100 at padding (ignored)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=-100, label_smoothing=label_smoothing)


@dataclass
class TeacherForcing:
    """The teacher-forcing ratio as a function of the optimizer step (scheduled sampling,
    Bengio et al. 2015): constant `start` ('none'), or decaying from `start` to `final` over
    `steps` steps (or the time budget), linearly or exponentially (final + (start - final) * exp(-5 step / steps))."""

    start: float = 1.0
    final: float = 1.0
    decay: str = "none"
    steps: int = 0

    def __post_init__(self):
        if self.decay not in TF_DECAYS:
            raise ValueError(f"unknown decay {self.decay!r}; choose one of {', '.join(TF_DECAYS)}")
        if not (0.0 <= self.start <= 1.0 and 0.0 <= self.final <= 1.0):
            raise ValueError("teacher-forcing ratios must lie in [0, 1]")

    def ratio(self, step: int, time_frac: float = 0.0) -> float:
        """The ratio at optimizer `step`; under a time budget `time_frac` (elapsed / budget) counts
        too, so the decay also ends with a run that has no step count (`--time` without epochs)."""
        frac = max(step / self.steps if self.steps > 0 else 0.0, time_frac)
        if self.decay == "none" or (self.steps <= 0 and time_frac <= 0):
            return self.start
        frac = min(1.0, frac)
        if self.decay == "linear":
            return self.start + (self.final - self.start) * frac
        return self.final + (self.start - self.final) * math.exp(-5.0 * frac)
