"""BPTT with every step's gradient kept: what the backward view of the unroller draws for a scratch cell.

`Recurrent._backward` walks back through time and keeps only what training needs (the weight
gradients). `bptt_trace` runs the same walk, with the same `cell_backward` of the cell on the same
forward cache, and records at every layer and step t:

    dh    (batch, time, hidden)  dL/dh_t in total: from the output at t (or the layer above) and
                                 from every later step through the recurrence
    dc    (batch, time, hidden)  LSTM only: dL/dc_t in total (through h_t = o tanh(c_t) and c_{t+1})
    dgates[g] (batch, time, hidden)  dL/d(pre-activation of gate g) at step t: LSTM i f g o, GRU r z n,
                                 a plain RNN "a" (its one pre-activation)
    via[k] (batch, time, hidden)  how the gradient reaching step t-1 splits by path: for each gate g,
                                 W_hh[g]^T (dL/d hh_t)[g] (its part of dL/dh_{t-1}); the GRU's
                                 "skip" z_t * dL/dh_t (the highway past W_hh); the LSTM's "cell"
                                 f_t * dL/dc_t (its part of dL/dc_{t-1}); a plain RNN has one path,
                                 "W_hh". The gate paths (and "skip") add up to all of dL/dh_{t-1}
                                 but what h_{t-1} gets directly from the output at t-1.

    trace, dx = bptt_trace(layer, cache, d_outputs)      # dx (batch, time, input) = dL/dx_t
"""

from __future__ import annotations

import numpy as np

from seqlab.scratch.rnn import Recurrent

GATE_NAMES = {4: "ifgo", 3: "rzn", 1: ""}


def _names(layer: Recurrent) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(dgates keys, via keys) of a scratch cell."""
    gates = tuple(GATE_NAMES[layer.gates])
    if not gates:
        return ("a",), ("W_hh",)
    return gates, gates + (("cell",) if layer.states == 2 else ("skip",))


def bptt_trace(layer: Recurrent, cache: list, d_outputs: np.ndarray,
               d_state: tuple | None = None) -> tuple[list[dict], np.ndarray]:
    """BPTT over `cache` (the layer's forward cache) from d_outputs (batch, time, hidden) = dL/d
    outputs and d_state (per state array (layers, batch, hidden), or None) = dL/d final states.
    Returns ([per layer, bottom first: {"dh", "dc", "dgates", "via"}], dx (batch, time, input))."""
    batch, time = cache[0][0].shape[:2]
    H, L = layer.hidden_size, layer.num_layers
    lstm = layer.states == 2
    zeros = np.zeros((L, batch, H))
    d_final = [zeros if d is None else np.asarray(d, np.float64) for d in (d_state or (None,) * layer.states)]
    d_inp = np.asarray(d_outputs, np.float64)
    gate_keys, via_keys = _names(layer)
    out: list[dict] = [{} for _ in range(L)]
    for k in reversed(range(L)):
        w_ih, w_hh, _, _ = layer._layer(k)
        _, _, steps = cache[k]
        rec = {"dh": np.zeros((batch, time, H)), "dc": np.zeros((batch, time, H)) if lstm else None,
               "dgates": {g: np.zeros((batch, time, H)) for g in gate_keys},
               "via": {v: np.zeros((batch, time, H)) for v in via_keys}}
        d_xi_all = np.zeros((batch, time, w_ih.shape[0]))
        ds = tuple(d[k] for d in d_final)
        for t in reversed(range(time)):
            ds = (ds[0] + d_inp[:, t],) + ds[1:]  # h_t feeds the layer above and the next step
            rec["dh"][:, t] = ds[0]
            if lstm:
                _, _, _, o, _, tanh_c = steps[t]
                rec["dc"][:, t] = ds[1] + ds[0] * o * (1 - tanh_c * tanh_c)
            d_xi, d_hh, skip = layer.cell_backward(ds, steps[t])
            d_xi_all[:, t] = d_xi
            if layer.gates == 1:
                rec["dgates"]["a"][:, t] = d_xi
                rec["via"]["W_hh"][:, t] = d_hh @ w_hh
            else:
                for j, g in enumerate(gate_keys):
                    blk = slice(j * H, (j + 1) * H)
                    rec["dgates"][g][:, t] = d_xi[:, blk]
                    rec["via"][g][:, t] = d_hh[:, blk] @ w_hh[blk]
                if lstm:
                    rec["via"]["cell"][:, t] = skip[1]
                else:
                    rec["via"]["skip"][:, t] = skip[0]
            ds = (skip[0] + d_hh @ w_hh,) + tuple(skip[1:])
        out[k] = rec
        d_inp = d_xi_all @ w_ih  # the gradient of this layer's input: the layer below's outputs
    return out, d_inp
