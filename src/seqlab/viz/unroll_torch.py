"""The unroller's arithmetic in torch, step by step, so that autograd can walk it back.

`seqlab.viz.unroll` recomputes a `RecurrentEncoder` one step at a time in NumPy to show the forward
pass. The backward view needs the same per-step graph in torch: every step's h_t, c_t, gate
pre-activations and recurrent projection hh_t = W_hh h_{t-1} + b_hh are kept as tensors of the
graph (`retain_grad`), so that after `L.backward()` each one holds the *total* gradient
dL/d(that tensor), from the layer above, the head and all the later steps alike.

    enc_out, traces = unroll_autograd(encoder, x, keep=True)

x (batch, time, input) float64 (the encoder's input: embeddings or features); `encoder` a float64,
eval-mode `RecurrentEncoder` (any cell, layers, directions, layer norm, residual). `enc_out` is an
`EncoderOutput` exactly like the module's own (outputs (batch, time, dirs*hidden), lengths None,
h_n / c_n (layers*dirs, batch, hidden)), built from the recomputed steps, so a model's head can
read it in place of the module's; it equals the module's output to float64 rounding (tested).
traces[layer][direction] is a `StepTensors` (lists in position order, each entry (batch, ·)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqlab.models.encoder import EncoderOutput
from seqlab.viz.unroll import GATES, _cell_name


@dataclass
class StepTensors:
    """One direction of one layer: per position t, h[t], c[t] (LSTM) (batch, hidden); pre[g][t]
    (batch, hidden) the pre-activation of gate g (a plain RNN: pre["a"], its only one); act[g][t]
    the gate's value; hh[t] (batch, gates*hidden) = W_hh h_prev + b_hh; w_hh (gates*hidden, hidden),
    the recurrent weight (for the per-gate contributions)."""

    cell: str
    h: list[torch.Tensor]
    c: list[torch.Tensor] | None
    pre: dict[str, list[torch.Tensor]]
    hh: list[torch.Tensor]
    act: dict[str, list[torch.Tensor]]
    w_hh: torch.Tensor
    reverse: bool = False


def _params(module: torch.nn.RNNBase, layer: int, reverse: bool) -> list[torch.Tensor]:
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    out = []
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        p = getattr(module, kind + sfx, None)
        out.append(p if p is not None else torch.zeros(module.weight_hh_l0.shape[0], dtype=torch.float64))
    return out


def _keep(t: torch.Tensor, keep: bool) -> torch.Tensor:
    if keep and t.requires_grad:
        t.retain_grad()
    return t


def run_direction(cell: str, params: list[torch.Tensor], x: torch.Tensor, reverse: bool = False,
                  keep: bool = False) -> StepTensors:
    """One direction of one layer over x (batch, time, input) from zero state, in PyTorch's gate
    order (LSTM i f g o, GRU r z n) and arithmetic. Returns its StepTensors."""
    w_ih, w_hh, b_ih, b_hh = params
    batch, time, _ = x.shape
    hidden = w_hh.shape[1]
    xi = x @ w_ih.T + b_ih  # (batch, time, gates*hidden)
    h = x.new_zeros(batch, hidden)
    c = x.new_zeros(batch, hidden) if cell == "lstm" else None
    hs, cs, hhs = [None] * time, ([None] * time if c is not None else None), [None] * time
    pre = {g: [None] * time for g in GATES[cell]}
    act = {g: [None] * time for g in GATES[cell]}
    if not GATES[cell]:
        pre, act = {"a": [None] * time}, {}
    for t in (range(time - 1, -1, -1) if reverse else range(time)):
        hh = _keep(h @ w_hh.T + b_hh, keep)
        hhs[t] = hh
        if cell == "lstm":
            a = (xi[:, t] + hh).chunk(4, -1)
            for g, v in zip("ifgo", a):
                pre[g][t] = _keep(v, keep)
            i, f, g_, o = torch.sigmoid(a[0]), torch.sigmoid(a[1]), torch.tanh(a[2]), torch.sigmoid(a[3])
            for name, v in zip("ifgo", (i, f, g_, o)):
                act[name][t] = v
            c = _keep(f * c + i * g_, keep)
            h = o * torch.tanh(c)
            cs[t] = c
        elif cell == "gru":
            x_r, x_z, x_n = xi[:, t].chunk(3, -1)
            h_r, h_z, h_n = hh.chunk(3, -1)
            a_r, a_z = _keep(x_r + h_r, keep), _keep(x_z + h_z, keep)
            r, z = torch.sigmoid(a_r), torch.sigmoid(a_z)
            a_n = _keep(x_n + r * h_n, keep)
            n = torch.tanh(a_n)
            h = (1 - z) * n + z * h
            for name, p, v in (("r", a_r, r), ("z", a_z, z), ("n", a_n, n)):
                pre[name][t], act[name][t] = p, v
        else:
            a = _keep(xi[:, t] + hh, keep)
            pre["a"][t] = a
            h = torch.tanh(a) if cell == "rnn" else torch.relu(a)
        h = _keep(h, keep)
        hs[t] = h
    return StepTensors(cell, hs, cs, pre, hhs, act, w_hh, reverse)


def unroll_autograd(encoder, x: torch.Tensor, keep: bool = False) -> tuple[EncoderOutput, list[list[StepTensors]]]:
    """The encoder over x (batch, time, input) step by step in float64 (see the module docstring).
    keep: retain every step's gradient (for one sequence's backward view; off for saliency batches)."""
    cfg = encoder.cfg
    if cfg.cell == "none":
        raise ValueError("this encoder has no recurrent cell (cell 'none'): nothing to unroll")
    traces: list[list[StepTensors]] = []
    h = x
    for i, rnn in enumerate(encoder.rnns):
        inp, cell = h, _cell_name(rnn)
        for k in range(rnn.num_layers):
            dirs = [run_direction(cell, _params(rnn, k, d == 1), h, d == 1, keep) for d in range(1 + rnn.bidirectional)]
            traces.append(dirs)
            h = torch.cat([torch.stack(d.h, 1) for d in dirs], -1)  # (batch, time, dirs*hidden)
        if encoder.norms is not None:
            h = encoder.norms[i](h)
        if cfg.residual and i > 0:
            h = h + inp
    h_n = torch.stack([d.h[0 if d.reverse else -1] for dirs in traces for d in dirs])
    c_n = None
    if traces[0][0].c is not None:
        c_n = torch.stack([d.c[0 if d.reverse else -1] for dirs in traces for d in dirs])
    return EncoderOutput(h, None, h_n, c_n), traces
