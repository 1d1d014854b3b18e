"""The recurrent cell unrolled: every step's state and gates, for a torch encoder or a scratch cell.

`torch.nn.LSTM` returns only the outputs and the final state; what happened inside each step (the
gates, the cell state) is gone. `unroll_encoder` recomputes a `RecurrentEncoder` one step at a time
from its module's weights (PyTorch's layout and gate order, in float64), so a picture can show, for
one sequence:

    x_t      the input of step t (the embedding of token t)             (time, input)
    i f g o  the LSTM gates; r z n for the GRU (none for a plain RNN)   (time, hidden) each
    c_t      the LSTM cell state                                        (time, hidden)
    h_t      the hidden state after step t, per layer and direction     (time, hidden)
    outputs  the top layer's h_t at every step, directions side by side (time, dirs*hidden)
    h_n      the last state of every layer and direction                (layers*dirs, hidden)

For the backward direction of a bidirectional layer, step t is still indexed by the token it
reads, so its "last" state h_n is the one at t = 0. The recomputed h_t equal the module's own
outputs (tested to 1e-6); the gates come from the same arithmetic. The scratch NumPy cells keep
their gates in the forward cache, so `unroll_scratch` reads them from there instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": (), "rnn_relu": ()}


@dataclass
class DirTrace:
    """One direction of one layer over the sequence: h (time, hidden), the state after reading the
    token at each position; c (time, hidden) for the LSTM, else None; gates name -> (time, hidden)."""

    h: np.ndarray
    c: np.ndarray | None = None
    gates: dict[str, np.ndarray] = field(default_factory=dict)
    reverse: bool = False


@dataclass
class Unrolled:
    """A whole unrolled stack for one sequence (see the module docstring for every shape)."""

    cell: str
    x: np.ndarray
    layers: list[list[DirTrace]]
    outputs: np.ndarray
    h_n: np.ndarray
    c_n: np.ndarray | None

    @property
    def hidden(self) -> int:
        return self.layers[0][0].h.shape[1]

    @property
    def directions(self) -> int:
        return len(self.layers[0])


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _step(cell: str, xi: np.ndarray, hh: np.ndarray, h: np.ndarray, c: np.ndarray | None):
    """One step from xi = W_ih x_t + b_ih and hh = W_hh h_{t-1} + b_hh (gates*hidden,) -> (h, c, gates)."""
    if cell == "lstm":
        i, f, g, o = np.split(xi + hh, 4)
        i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
        c = f * c + i * g
        return o * np.tanh(c), c, {"i": i, "f": f, "g": g, "o": o}
    if cell == "gru":
        x_r, x_z, x_n = np.split(xi, 3)
        h_r, h_z, h_n = np.split(hh, 3)
        r, z = _sigmoid(x_r + h_r), _sigmoid(x_z + h_z)
        n = np.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h, None, {"r": r, "z": z, "n": n}
    a = xi + hh
    return (np.tanh(a) if cell == "rnn" else np.maximum(a, 0.0)), None, {}


def _weights(module: torch.nn.RNNBase, layer: int, reverse: bool) -> list[np.ndarray]:
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    out = []
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        p = getattr(module, kind + sfx, None)
        if p is None:  # bias=False
            p = torch.zeros(module.weight_hh_l0.shape[0])
        out.append(p.detach().double().cpu().numpy())
    return out


def _cell_name(module: torch.nn.RNNBase) -> str:
    if isinstance(module, torch.nn.LSTM):
        return "lstm"
    if isinstance(module, torch.nn.GRU):
        return "gru"
    return "rnn_relu" if module.nonlinearity == "relu" else "rnn"


def run_direction(cell: str, weights: list[np.ndarray], x: np.ndarray, reverse: bool = False,
                  h0: np.ndarray | None = None, c0: np.ndarray | None = None) -> DirTrace:
    """Recompute one direction of one layer over x (time, input) step by step.

    weights: (W_ih (gates*hidden, input), W_hh (gates*hidden, hidden), b_ih, b_hh (gates*hidden,)).
    h0, c0: (hidden,) start states (zeros when None). Returns the DirTrace in position order."""
    w_ih, w_hh, b_ih, b_hh = weights
    hidden, time = w_hh.shape[1], x.shape[0]
    xi = x @ w_ih.T + b_ih  # (time, gates*hidden): the input part of every step at once
    h = np.zeros(hidden) if h0 is None else np.asarray(h0, np.float64)
    c = (np.zeros(hidden) if c0 is None else np.asarray(c0, np.float64)) if cell == "lstm" else None
    hs, cs = np.zeros((time, hidden)), np.zeros((time, hidden))
    gates = {g: np.zeros((time, hidden)) for g in GATES[cell]}
    order = range(time - 1, -1, -1) if reverse else range(time)
    for t in order:
        h, c, gs = _step(cell, xi[t], w_hh @ h + b_hh, h, c)
        hs[t] = h
        if c is not None:
            cs[t] = c
        for g, v in gs.items():
            gates[g][t] = v
    return DirTrace(hs, cs if cell == "lstm" else None, gates, reverse)


def unroll_rnn(module: torch.nn.RNNBase, x: np.ndarray) -> tuple[list[list[DirTrace]], np.ndarray]:
    """All layers and directions of a torch RNN/LSTM/GRU (eval mode: no dropout between layers) over
    x (time, input) from zero state -> (traces [layer][direction], top output (time, dirs*hidden))."""
    cell = _cell_name(module)
    dirs = 2 if module.bidirectional else 1
    layers, inp = [], np.asarray(x, np.float64)
    for k in range(module.num_layers):
        traces = [run_direction(cell, _weights(module, k, d == 1), inp, d == 1) for d in range(dirs)]
        layers.append(traces)
        inp = np.concatenate([t.h for t in traces], 1)
    return layers, inp


def _finals(layers: list[list[DirTrace]]) -> tuple[np.ndarray, np.ndarray | None]:
    """h_n, c_n (layers*dirs, hidden): the last step of each direction (position 0 going backward)."""
    hs, cs = [], []
    for traces in layers:
        for t in traces:
            last = 0 if t.reverse else -1
            hs.append(t.h[last])
            if t.c is not None:
                cs.append(t.c[last])
    return np.stack(hs), (np.stack(cs) if cs else None)


@torch.no_grad()
def encoder_inputs(encoder, ids_or_features: torch.Tensor) -> np.ndarray:
    """What a RecurrentEncoder's first layer reads: embeddings of ids (time,), or the features
    (time, input_dim) themselves -> (time, input) float64."""
    x = ids_or_features
    if encoder.embedding is not None:
        x = encoder.embedding(x.to(encoder.embedding.weight.device))
    return x.detach().double().cpu().numpy()


@torch.no_grad()
def unroll_encoder(encoder, ids_or_features: torch.Tensor) -> Unrolled:
    """Unroll a `RecurrentEncoder` (as in eval mode) over one sequence: token ids (time,) or
    features (time, input_dim). Layer norm and residual connections between layers are applied as
    the encoder applies them; each layer's `h` is its cell's own state, before them."""
    cfg = encoder.cfg
    if cfg.cell == "none":
        raise ValueError("this encoder has no recurrent cell (cell 'none'): nothing to unroll")
    x = encoder_inputs(encoder, ids_or_features)
    layers, h = [], x
    for i, rnn in enumerate(encoder.rnns):
        inp = h
        traces, h = unroll_rnn(rnn, h)
        layers.extend(traces)
        if encoder.norms is not None:
            ln = encoder.norms[i]
            h = torch.nn.functional.layer_norm(torch.from_numpy(h), ln.normalized_shape, ln.weight.double().cpu(),
                                               ln.bias.double().cpu(), ln.eps).numpy()
        if cfg.residual and i > 0:
            h = h + inp
    h_n, c_n = _finals(layers)
    return Unrolled(cfg.cell, x, layers, h, h_n, c_n)


def unroll_scratch(layer, x: np.ndarray) -> Unrolled:
    """Run a scratch NumPy cell (`seqlab.scratch` RNN/LSTM/GRU, any depth) over x (time, input) and
    read every step's state and gates from its forward cache."""
    from seqlab.scratch.gru import GRU
    from seqlab.scratch.lstm import LSTM

    x = np.asarray(x, np.float64)
    if isinstance(layer, LSTM):
        cell = "lstm"
        outputs, (h_n, c_n), cache = layer.forward(x[None])
    else:
        cell = "gru" if isinstance(layer, GRU) else ("rnn_relu" if layer.nonlinearity == "relu" else "rnn")
        outputs, h_n, cache = layer.forward(x[None])
        c_n = None
    layers = []
    for k, (_, _, steps) in enumerate(cache):
        h = (cache[k + 1][0] if k + 1 < len(cache) else outputs)[0]  # this layer's outputs = next layer's input
        gates, c = {}, None
        if cell == "lstm":  # step cache: (i, f, g, o, c_prev, tanh_c)
            gates = {g: np.stack([s[j][0] for s in steps]) for j, g in enumerate("ifgo")}
            c = np.stack([s[1][0] * s[4][0] + s[0][0] * s[2][0] for s in steps])  # c_t = f c_{t-1} + i g
        elif cell == "gru":  # step cache: (r, z, n, W_hn h + b_hn, h_prev)
            gates = {g: np.stack([s[j][0] for s in steps]) for j, g in enumerate("rzn")}
        layers.append([DirTrace(h, c, gates)])
    return Unrolled(cell, x, layers, outputs[0], h_n[:, 0], None if c_n is None else c_n[:, 0])
