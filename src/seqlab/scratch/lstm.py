"""The LSTM in NumPy: a memory cell c that is only ever scaled and added to.

A plain RNN squashes its whole state through tanh and W_hh at every step, so gradients flowing
back through many steps shrink (or blow up). The LSTM keeps a separate cell state c and edits it
with gates, numbers in (0, 1) computed from x_t and h_{t-1}:

    i, f, g, o = split(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      (PyTorch's order)
    i, f, o = sigmoid(i), sigmoid(f), sigmoid(o);  g = tanh(g)
    c_t = f * c_{t-1} + i * g          forget some of the old memory, write some new
    h_t = o * tanh(c_t)                show part of the memory

Backwards, d c_{t-1} = f * d c_t: with f near 1 the gradient passes through the cell unchanged,
which is what lets the LSTM learn long-range dependencies.
"""

from __future__ import annotations

import numpy as np

from seqlab.scratch.rnn import Recurrent, sigmoid


class LSTM(Recurrent):
    """Stacked LSTM with the parameters and behaviour of `torch.nn.LSTM(batch_first=True)`."""

    gates = 4
    states = 2  # (h, c)

    def cell(self, xi, hh, state):
        h_prev, c_prev = state
        i, f, g, o = np.split(xi + hh, 4, axis=-1)  # each (batch, hidden)
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        h = o * tanh_c
        return (h, c), (i, f, g, o, c_prev, tanh_c)

    def cell_backward(self, d_state, step_cache):
        dh, dc = d_state
        i, f, g, o, c_prev, tanh_c = step_cache
        do = dh * tanh_c
        dc = dc + dh * o * (1 - tanh_c * tanh_c)  # c_t reaches the loss directly and through h_t
        di, df, dg = dc * g, dc * c_prev, dc * i
        d_gates = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=-1)
        return d_gates, d_gates, (np.zeros_like(dh), dc * f)

    def forward(self, x, h0=None, c0=None):
        """x (batch, time, input); h0, c0 (layers, batch, hidden) or None (zeros).
        Returns outputs (batch, time, hidden), (h_n, c_n) each (layers, batch, hidden), cache."""
        outputs, (h_n, c_n), cache = self._forward(x, (h0, c0))
        return outputs, (h_n, c_n), cache

    def backward(self, d_outputs, d_state, cache):
        """d_outputs (batch, time, hidden) or None; d_state = (d h_n, d c_n), either or both None.
        Returns grads (dict keyed like params), dx (batch, time, input), d_h0, d_c0 (layers, batch, hidden)."""
        d_state = (None, None) if d_state is None else d_state
        grads, dx, (d_h0, d_c0) = self._backward(d_outputs, tuple(d_state), cache)
        return grads, dx, d_h0, d_c0
