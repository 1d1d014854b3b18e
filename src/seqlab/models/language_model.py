"""A recurrent language model: predict the next token from all the tokens before it.

    ids (batch, time) --embedding + RecurrentEncoder--> outputs (batch, time, hidden)
        --dropout--> --Linear--> logits (batch, time, vocab)      p(x_{t+1} | x_1..x_t) = softmax

The encoder is the shared `RecurrentEncoder` (its embedding, cells, residual, layer norm and locked
dropout), always unidirectional: a backward direction would read the very token it must predict.

The state is the memory. `forward` takes a start state and returns the final one, so a long text
can be read in chunks with the state carried from one to the next, and generation can feed one
token at a time (see `seqlab.decode.sampling`). Reading a text in chunks with the state carried
gives the same logits as reading it in one call (tested); `sequence_nll` scores a text that way.

Weight tying (Press & Wolf 2017; Inan et al. 2017): the output layer maps a hidden vector to one
score per token, a (vocab, hidden) matrix, the same shape as the embedding (vocab, embed) when
embed == hidden. Sharing the two matrices halves the parameters of a large vocabulary and usually
lowers perplexity; `LMConfig.tie_weights` asks for it and it happens when the sizes allow.

AWD-LSTM's regularisers (Merity et al. 2018), each off by default: weight drop and embedding (row)
dropout live in the encoder (`EncoderConfig.weight_drop`, `embed_row_dropout`); with the encoder's
`locked_dropout` the output dropout is locked too (one mask per sequence, as on the inputs and between
layers); `ar` and `tar` add activation regularisation, ar * mean(dropped outputs²), and temporal
activation regularisation, tar * mean((h_t - h_{t-1})²) over the top layer's outputs
(`activation_penalty`, which the training step adds to the loss).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqlab.models.encoder import EncoderConfig, RecurrentEncoder

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None


@dataclass
class LMConfig:
    """encoder: the shared encoder's settings (vocab_size = the token vocabulary, unidirectional).
    tie_weights: share the embedding and output matrices when embed_dim == hidden.
    dropout: on the encoder outputs, before the output layer."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tie_weights: bool = True
    dropout: float = 0.0
    ar: float = 0.0
    tar: float = 0.0

    @property
    def tied(self) -> bool:
        """Whether the weights are actually tied (asked for, and the sizes match)."""
        return self.tie_weights and self.encoder.embed_dim == self.encoder.output_dim

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> LMConfig:
        return cls(**{**d, "encoder": EncoderConfig(**d["encoder"])})


class LanguageModel(nn.Module):
    """Embedding -> RecurrentEncoder -> dropout -> Linear(hidden, vocab), optionally tied."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        enc = cfg.encoder
        if enc.bidirectional:
            raise ValueError("a language model must be unidirectional: the backward direction sees the target")
        if not enc.vocab_size:
            raise ValueError("a language model reads token ids: set encoder.vocab_size")
        self.cfg = cfg
        self.encoder = RecurrentEncoder(enc)
        self.dropout = nn.Dropout(cfg.dropout)
        self.decoder = nn.Linear(enc.output_dim, enc.vocab_size)
        if cfg.tied:
            self.decoder.weight = self.encoder.embedding.weight
        # nn.Embedding starts at N(0, 1): as output weights those give logits of size ~sqrt(hidden)
        # at step 0 and a model that learns slowly. Start small, as PyTorch's word_language_model does.
        emb = self.encoder.embedding.weight
        with torch.no_grad():
            emb.uniform_(-0.1, 0.1)
            emb[enc.pad_id].zero_()
            self.decoder.bias.zero_()

    def forward(self, ids: torch.Tensor, state: State = None) -> tuple[torch.Tensor, State]:
        """ids (batch, time) -> (logits (batch, time, vocab), new_state).

        state / new_state: h (layers, batch, hidden), or (h, c) for LSTM; None = zeros at the start
        (and always None for cell 'none', which has no memory).
        """
        enc = self.encoder(ids, None, state)
        dropped = self._out_dropout(enc.outputs)
        self.activations = (enc.outputs, dropped) if self.training and (self.cfg.ar or self.cfg.tar) else None
        logits = self.decoder(dropped)
        if enc.h_n is None:
            return logits, None
        return logits, (enc.h_n, enc.c_n) if enc.c_n is not None else enc.h_n


    def _out_dropout(self, h: torch.Tensor) -> torch.Tensor:
        """Dropout on the outputs (batch, time, hidden): one mask per sequence with locked_dropout."""
        p = self.cfg.dropout
        if not self.training or p == 0.0 or not self.cfg.encoder.locked_dropout:
            return self.dropout(h)
        return h * (h.new_empty(h.shape[0], 1, h.shape[2]).bernoulli_(1 - p) / (1 - p))

    def penalty(self) -> torch.Tensor | float:
        """AR + TAR of the last training forward call (0.0 when both are off, or in eval mode)."""
        if getattr(self, "activations", None) is None:
            return 0.0
        return activation_penalty(*self.activations, self.cfg.ar, self.cfg.tar)


def activation_penalty(raw: torch.Tensor, dropped: torch.Tensor, ar: float, tar: float) -> torch.Tensor:
    """AR + TAR (Merity et al. 2018) of the top layer's outputs raw (batch, time, hidden) and the same
    after dropout: ar * mean(dropped²) + tar * mean((raw_t - raw_{t-1})²)."""
    out = raw.new_zeros(())
    if ar:
        out = out + ar * dropped.float().pow(2).mean()
    if tar and raw.shape[1] > 1:
        out = out + tar * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
    return out


def detach_state(state: State) -> State:
    """Cut the gradient path into a carried state (truncated BPTT); the values stay."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


@torch.no_grad()
def sequence_nll(model: LanguageModel, ids: torch.Tensor, chunk: int = 2048) -> tuple[float, int]:
    """Total negative log-likelihood (nats) of ids[1:] given the tokens before, and its count.

    ids (n,) with n >= 2 (a tensor or a numpy memory map) is read as one sequence (batch 1) in chunks
    of `chunk` tokens with the state carried across chunks, so the result does not depend on `chunk`
    (up to float rounding).
    Mean loss = total / count; perplexity = exp(mean); bits per token = mean / ln 2.
    """
    if ids.ndim != 1 or len(ids) < 2:
        raise ValueError("ids must be 1-d with at least 2 tokens")
    model.eval()
    device = next(model.parameters()).device
    state, total, n = None, 0.0, len(ids) - 1
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        x = _window(ids, start, end).to(device)[None, :]  # (1, t)
        y = _window(ids, start + 1, end + 1).to(device)
        logits, state = model(x, state)
        total += float(F.cross_entropy(logits[0].double(), y, reduction="sum"))
    return total, n


BURN_IN = 256  # tokens each parallel stream reads, unscored, before its first scored target
MIN_STREAM = 1024  # targets per parallel stream at least: shorter texts are read as fewer streams


def _window(ids, a: int, b: int) -> torch.Tensor:
    """ids[a:b] as a long tensor on the CPU; `ids` a tensor or a numpy array (a memory map)."""
    if torch.is_tensor(ids):
        return ids[a:b].long()
    return torch.from_numpy(np.asarray(ids[a:b]).astype(np.int64))


def stream_layout(n_all: int, streams: int, max_tokens: int | None = None, burn_in: int = BURN_IN,
                  ) -> list[tuple[int, int, int]]:
    """(begin, first, end) per parallel stream over the n_all targets of a text (target t: ids[t + 1]
    after ids[..t]): the stream scores targets first..end-1 and reads from `begin` = first - burn_in
    (0 for the first stream). Up to `max_tokens` targets in all, as `streams` streams (fewer when a
    stream would get under MIN_STREAM targets) that start at evenly spaced positions of the text, so
    that a capped evaluation samples all of it; uncapped, the streams cut the text into consecutive parts."""
    n = min(n_all, max_tokens) if max_tokens else n_all
    b = max(1, min(streams, n // MIN_STREAM))
    starts = [r * n_all // b for r in range(b)] + [n_all]
    out = []
    for r in range(b):
        first = starts[r]
        length = min((r + 1) * n // b - r * n // b, starts[r + 1] - first)
        out.append((max(0, first - burn_in), first, first + length))
    return out


@torch.no_grad()
def stream_nll(model: LanguageModel, ids, streams: int = 32, max_tokens: int | None = None,
               burn_in: int = BURN_IN, chunk: int | None = None) -> tuple[float, int, int]:
    """(total NLL in nats, targets scored, streams) of a text read as parallel streams with the state carried.

    The way PyTorch's word_language_model evaluates with an eval batch, instead of one batch-1
    sequence: the text (ids (n,), a tensor or a numpy memory map) is cut into `streams` contiguous
    parts (`stream_layout`), read side by side, `chunk` steps at a time. Each stream after the first
    starts from zeros `burn_in` tokens before its first scored target, so its first targets are
    predicted with context, as in one long read. With one stream this is `sequence_nll`."""
    n_all = len(ids) - 1
    if n_all < 1:
        raise ValueError("ids must hold at least 2 tokens")
    model.eval()
    device = next(model.parameters()).device
    layout = stream_layout(n_all, streams, max_tokens, burn_in)
    rows, vocab = len(layout), model.cfg.encoder.vocab_size
    width = max(vocab, 4 * model.cfg.encoder.hidden)  # logits, or the LSTM gates of a layer
    chunk = chunk or max(32, min(2048, (1 << 23) // (rows * width)))  # ~32 MB of float32 per (rows, chunk, width)
    steps = max(end - begin for begin, _, end in layout)
    state, total, n = None, 0.0, sum(end - first for _, first, end in layout)
    pad = model.cfg.encoder.pad_id
    for p in range(0, steps, chunk):
        c = min(chunk, steps - p)
        x = torch.full((rows, c), pad, dtype=torch.long)
        y = torch.full((rows, c), -100, dtype=torch.long)
        for r, (begin, first, end) in enumerate(layout):
            a, b = begin + p, min(begin + p + c, end)
            if b > a:
                x[r, : b - a] = _window(ids, a, b)
                y[r, : b - a] = _window(ids, a + 1, b + 1)
                y[r, : max(0, min(first, b) - a)] = -100  # burn-in: read, not scored
        logits, state = model(x.to(device), state)
        total += float(F.cross_entropy(logits.reshape(-1, vocab).double(), y.reshape(-1).to(device),
                                       ignore_index=-100, reduction="sum"))
    return total, n, rows


def lm_metrics(total_nats: float, tokens: int, chars: int) -> dict:
    """{loss (nats/token), perplexity, bits_per_char} from a total NLL over `tokens` tokens that
    cover `chars` characters (for a character model tokens == chars)."""
    loss = total_nats / tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)),
            "bits_per_char": total_nats / math.log(2) / max(chars, 1)}
