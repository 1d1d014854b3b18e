"""The one recurrent encoder every seqlab model shares.

    tokens (batch, time) --embedding--> (batch, time, embed) --RNN/LSTM/GRU--> outputs
                                                                   (batch, time, dirs*hidden)
                                                                 + final state h_n (and c_n)

Two things come out, and they are different:
  outputs  the top layer's hidden state at *every* time step (what a tagger or attention reads);
  h_n      the *last* hidden state of *every* layer and direction (what a classifier or a
           decoder starts from), shape (layers*dirs, batch, hidden) as in `torch.nn.LSTM`.
For a bidirectional encoder, the backward direction's "last" state is the one at t=0.

Padded batches are packed (`pack_padded_sequence`), so padded steps never reach the cell and
the final state of a short sequence is its own, not the state after reading PAD tokens.

Deep stacks: with `residual`, `layer_norm` or `locked_dropout`, the layers run one at a time with
those between them; otherwise one fused `nn.LSTM` (cuDNN on GPU) runs all layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

CELLS = ("rnn", "rnn_relu", "lstm", "gru", "none")


@dataclass
class EncoderConfig:
    """Hyper-parameters of `RecurrentEncoder` (saved as JSON in every checkpoint).

    vocab_size: token vocabulary size; 0 means the input is numeric features of `input_dim`.
    cell: 'rnn' (tanh), 'rnn_relu', 'lstm', 'gru', or 'none' (no recurrence: the outputs are the
        embeddings themselves, for bag-of-embeddings baselines).
    dropout: between stacked layers. embed_dropout: on the embeddings.
    locked_dropout: one dropout mask per sequence, the same at every time step (variational).
    residual: add each layer's input to its output (layers after the first).
    layer_norm: LayerNorm on each layer's output.
    weight_drop: DropConnect on the hidden-to-hidden matrices (AWD-LSTM): in training, each forward
        call runs the cells with one dropped copy of every W_hh (the same mask at every step), through
        `torch.func.functional_call`, so the fused (cuDNN) kernel still runs and the weights' names stay.
    embed_row_dropout: drop whole rows of the embedding matrix (word types) in training, the rest
        scaled by 1/(1-p) (AWD-LSTM's embedding dropout; embed_dropout drops units of the looked-up vectors).
    """

    vocab_size: int = 0
    input_dim: int = 0
    embed_dim: int = 128
    hidden: int = 256
    layers: int = 1
    cell: str = "lstm"
    bidirectional: bool = False
    dropout: float = 0.0
    embed_dropout: float = 0.0
    locked_dropout: bool = False
    residual: bool = False
    layer_norm: bool = False
    pad_id: int = 0
    weight_drop: float = 0.0
    embed_row_dropout: float = 0.0

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_dim(self) -> int:
        """Size of each step of `outputs`: dirs*hidden (or the embedding size for cell 'none')."""
        if self.cell == "none":
            return self.embed_dim if self.vocab_size else self.input_dim
        return self.directions * self.hidden


class EncoderOutput(NamedTuple):
    """outputs (batch, time, dirs*hidden), zero at padded steps; lengths (batch,);
    h_n (layers*dirs, batch, hidden); c_n like h_n for LSTM, else None."""

    outputs: torch.Tensor
    lengths: torch.Tensor | None
    h_n: torch.Tensor | None
    c_n: torch.Tensor | None

    def final_hidden(self) -> torch.Tensor:
        """The top layer's final state, both directions concatenated: (batch, dirs*hidden)."""
        dirs = self.outputs.shape[-1] // self.h_n.shape[-1]
        top = self.h_n[-dirs:]  # (dirs, batch, hidden)
        return top.transpose(0, 1).reshape(top.shape[1], -1)


def _rnn(cfg: EncoderConfig, input_size: int, layers: int, dropout: float) -> nn.RNNBase:
    kw = dict(batch_first=True, bidirectional=cfg.bidirectional, num_layers=layers, dropout=dropout)
    if cfg.cell == "lstm":
        return nn.LSTM(input_size, cfg.hidden, **kw)
    if cfg.cell == "gru":
        return nn.GRU(input_size, cfg.hidden, **kw)
    if cfg.cell in ("rnn", "rnn_relu"):
        return nn.RNN(input_size, cfg.hidden, nonlinearity="relu" if cfg.cell == "rnn_relu" else "tanh", **kw)
    raise ValueError(f"unknown cell {cfg.cell!r}; choose one of {', '.join(CELLS)}")


def _packed_rows_to_seq(batch_sizes: torch.Tensor) -> torch.Tensor:
    """For each row of a PackedSequence's data, the (sorted) sequence it belongs to."""
    starts = torch.cumsum(batch_sizes, 0) - batch_sizes
    return torch.arange(int(batch_sizes.sum())) - torch.repeat_interleave(starts, batch_sizes)


class RecurrentEncoder(nn.Module):
    """Embedding + stacked (bi)directional RNN/LSTM/GRU over padded, packed batches."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.cell not in CELLS:
            raise ValueError(f"unknown cell {cfg.cell!r}; choose one of {', '.join(CELLS)}")
        if cfg.vocab_size:
            self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
            in_dim = cfg.embed_dim
        else:
            self.embedding = None
            in_dim = cfg.input_dim
        self.layered = cfg.residual or cfg.layer_norm or cfg.locked_dropout
        if cfg.cell == "none":
            self.rnns = nn.ModuleList()
        elif self.layered:
            dims = [in_dim] + [cfg.directions * cfg.hidden] * (cfg.layers - 1)
            self.rnns = nn.ModuleList(_rnn(cfg, d, 1, 0.0) for d in dims)
        else:
            drop = cfg.dropout if cfg.layers > 1 else 0.0
            self.rnns = nn.ModuleList([_rnn(cfg, in_dim, cfg.layers, drop)])
        out = cfg.directions * cfg.hidden
        self.norms = nn.ModuleList(nn.LayerNorm(out) for _ in self.rnns) if cfg.layer_norm else None

    def _dropout(self, x: torch.Tensor, p: float, seq_of_row: torch.Tensor | None) -> torch.Tensor:
        """Dropout on x (batch, time, d) or packed rows (rows, d); locked = one mask per sequence."""
        if not self.training or p == 0.0:
            return x
        if not self.cfg.locked_dropout:
            return nn.functional.dropout(x, p, True)
        n = x.shape[0] if seq_of_row is None else int(seq_of_row.max()) + 1
        mask = x.new_empty(n, x.shape[-1]).bernoulli_(1 - p) / (1 - p)
        return x * (mask[:, None, :] if seq_of_row is None else mask[seq_of_row.to(x.device)])

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        state: tuple[torch.Tensor, ...] | torch.Tensor | None = None,
    ) -> EncoderOutput:
        """Encode a batch.

        Args:
            x: token ids (batch, time), or features (batch, time, input_dim) if vocab_size == 0.
            lengths: (batch,) true lengths; None means every sequence fills all `time` steps.
            state: initial h_0 (layers*dirs, batch, hidden), or (h_0, c_0) for LSTM; None = zeros.
        Returns:
            EncoderOutput(outputs (batch, time, dirs*hidden), lengths, h_n, c_n).
        """
        cfg = self.cfg
        emb = self._embed(x) if self.embedding is not None else x
        total = emb.shape[1]
        packed = lengths is not None
        rows = None
        if packed:
            lengths = lengths.cpu()
            seq = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
            rows = _packed_rows_to_seq(seq.batch_sizes) if cfg.locked_dropout else None
            h = self._dropout(seq.data, cfg.embed_dropout, rows)
        else:
            seq = None
            h = self._dropout(emb, cfg.embed_dropout, None)
        if cfg.cell == "none":
            out = h if not packed else self._unpack(seq, h, total)
            if packed:  # zero the padded steps, as the recurrent path does
                mask = torch.arange(total)[None, :] < lengths[:, None]
                out = out * mask.to(out.device)[..., None]
            return EncoderOutput(out, lengths, None, None)

        def wrap(data):
            return PackedSequence(data, seq.batch_sizes, seq.sorted_indices, seq.unsorted_indices) if packed else data

        states = self._split_state(state)
        h_list, c_list = [], []
        for i, rnn in enumerate(self.rnns):
            inp = h
            if i > 0:
                h = self._dropout(h, cfg.dropout, rows)
            out, st = self._run(rnn, wrap(h), states[i])
            h = out.data if packed else out
            if self.norms is not None:
                h = self.norms[i](h)
            if cfg.residual and i > 0:
                h = h + inp
            if isinstance(st, tuple):
                h_list.append(st[0])
                c_list.append(st[1])
            else:
                h_list.append(st)
        outputs = self._unpack(seq, h, total) if packed else h
        h_n = torch.cat(h_list, 0)
        c_n = torch.cat(c_list, 0) if c_list else None
        return EncoderOutput(outputs, lengths, h_n, c_n)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """ids (batch, time) -> (batch, time, embed); in training with embed_row_dropout, whole word types dropped."""
        p = self.cfg.embed_row_dropout
        if not self.training or p == 0.0:
            return self.embedding(x)
        w = self.embedding.weight
        mask = w.new_empty(w.shape[0], 1).bernoulli_(1 - p) / (1 - p)
        return nn.functional.embedding(x, w * mask, self.embedding.padding_idx)

    def _run(self, rnn: nn.RNNBase, x, h0):
        """rnn(x, h0); in training with weight_drop, with dropped hidden-to-hidden weights (DropConnect)."""
        p = self.cfg.weight_drop
        if not self.training or p == 0.0:
            return rnn(x, h0)
        dropped = {n: nn.functional.dropout(w, p, True) for n, w in rnn.named_parameters() if n.startswith("weight_hh")}
        return torch.func.functional_call(rnn, dropped, (x, h0))

    @staticmethod
    def _unpack(seq: PackedSequence, data: torch.Tensor, total: int) -> torch.Tensor:
        p = PackedSequence(data, seq.batch_sizes, seq.sorted_indices, seq.unsorted_indices)
        return pad_packed_sequence(p, batch_first=True, total_length=total)[0]

    def _split_state(self, state) -> list:
        """Per-module slices of the initial state (one slice when the fused module runs all layers)."""
        n = len(self.rnns)
        if state is None:
            return [None] * n
        if n == 1:
            return [state]
        d = self.cfg.directions
        if isinstance(state, tuple):
            return [tuple(s[i * d : (i + 1) * d] for s in state) for i in range(n)]
        return [state[i * d : (i + 1) * d] for i in range(n)]


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Each sequence of x (batch, time[, features]) reversed over its first lengths[b] steps, the padding
    after them left in place -> (batch, time[, features]); without lengths, every row reversed whole."""
    if lengths is None:
        return x.flip(1)
    t = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, time)
    n = lengths.to(x.device)[:, None]  # (batch, 1)
    idx = torch.where(t < n, n - 1 - t, t)  # (batch, time)
    return x.gather(1, idx if x.dim() == 2 else idx[..., None].expand_as(x))
