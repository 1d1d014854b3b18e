"""The GRU in NumPy: the LSTM's idea with one state and two gates.

    r, z, n-parts = split(W_ih x_t + b_ih), split(W_hh h_{t-1} + b_hh)   (PyTorch's order r, z, n)
    r = sigmoid(x_r + h_r)                 reset: how much of h_{t-1} the candidate may look at
    z = sigmoid(x_z + h_z)                 update: how much of h_{t-1} to keep
    n = tanh(x_n + r * h_n)                the candidate state (r gates W_hn h + b_hn, as in PyTorch)
    h_t = (1 - z) * n + z * h_{t-1}

Because the reset gate multiplies the *hidden* part of n only, the input and hidden projections
can't be summed before the gates as in the LSTM, and the cell gets their gradients separately
(d_xi and d_hh differ in the n block). The z * h_{t-1} term is the GRU's gradient highway: with
z near 1, d h_{t-1} = z * d h_t passes straight through.
"""

from __future__ import annotations

import numpy as np

from seqlab.scratch.rnn import Recurrent, sigmoid


class GRU(Recurrent):
    """Stacked GRU with the parameters and behaviour of `torch.nn.GRU(batch_first=True)`."""

    gates = 3

    def cell(self, xi, hh, state):
        h_prev = state[0]
        x_r, x_z, x_n = np.split(xi, 3, axis=-1)  # each (batch, hidden)
        h_r, h_z, h_n = np.split(hh, 3, axis=-1)
        r = sigmoid(x_r + h_r)
        z = sigmoid(x_z + h_z)
        n = np.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h_prev
        return (h,), (r, z, n, h_n, h_prev)

    def cell_backward(self, d_state, step_cache):
        dh = d_state[0]
        r, z, n, h_n, h_prev = step_cache
        dn = dh * (1 - z) * (1 - n * n)  # through tanh: gradient of n's pre-activation
        dz = dh * (h_prev - n) * z * (1 - z)
        dr = dn * h_n * r * (1 - r)
        d_xi = np.concatenate([dr, dz, dn], axis=-1)
        d_hh = np.concatenate([dr, dz, dn * r], axis=-1)
        return d_xi, d_hh, (dh * z,)
