"""Gradient checking: is the hand-written backward the derivative of the forward?

For a scalar loss L(theta), the central difference

    dL/dtheta_k  ~  (L(theta + eps e_k) - L(theta - eps e_k)) / (2 eps)

has error O(eps^2), so in float64 with eps = 1e-6 it agrees with a correct analytic gradient to
about 1e-9 relative, while a wrong one (a missing term, a transposed matrix) is off by O(1).
The loss here, L = sum(outputs * R) + sum(h_n * S) (+ sum(c_n * S_c) for the LSTM) with random
R and S, makes every output and final state matter, each with its own random weight, so the
backward must get the gradient of each of them right. Every parameter entry, every input entry
and every initial-state entry is nudged in turn: slow (two forward passes per number), and only
meant for small layers.

Precision: the analytic gradient is computed in float64. The difference quotient itself loses
about ulp(L) / eps ~ 1e-16 / 1e-6 = 1e-10 to rounding, so in float64 an entry of size 1e-5 would
show a relative error near 1e-5 even with a perfect backward. The nudged forward passes therefore
run in `numeric_dtype`, by default np.longdouble (80-bit extended precision on x86-64, rounding
~1e-19), which brings that noise to ~1e-13; pass numeric_dtype=np.float64 for plain float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from seqlab.scratch.rnn import Recurrent


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max over entries of |a - n| / max(1e-12, |a| + |n|)."""
    a, n = np.asarray(analytic), np.asarray(numeric)
    return float(np.max(np.abs(a - n) / np.maximum(1e-12, np.abs(a) + np.abs(n))))


def numerical_gradient(f: Callable[[], float], a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of `a` (changed in place,
    then restored). Returns an array shaped like `a`."""
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        plus = f()
        a[idx] = old - eps
        minus = f()
        a[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(layer: Recurrent, batch: int, time: int, seed: int, eps: float = 1e-6,
              numeric_dtype=np.longdouble) -> dict[str, float]:
    """Compare `layer.backward` (run on a float64 copy of `layer`) with central differences.

    Draws x (batch, time, input), initial states (layers, batch, hidden) and the loss weights R, S.
    Returns name -> max relative error, for every parameter and for 'x', 'h0' (and 'c0' for LSTM).
    """
    rng = np.random.default_rng(seed)
    state_shape = (layer.num_layers, batch, layer.hidden_size)
    state_names = ("h0", "c0")[: layer.states]
    x = rng.normal(size=(batch, time, layer.input_size))
    s0 = [rng.normal(size=state_shape) for _ in state_names]
    R = rng.normal(size=(batch, time, layer.hidden_size))
    S = [rng.normal(size=state_shape) for _ in state_names]

    exact = layer.astype(np.float64)
    _, _, cache = exact.forward(x, *s0)
    grads, dx, *d_s0 = exact.backward(R, tuple(S) if layer.states > 1 else S[0], cache)

    nudged = layer.astype(numeric_dtype)  # its params, x and s0 are nudged in place below
    x, R = x.astype(numeric_dtype), R.astype(numeric_dtype)
    s0, S = [s.astype(numeric_dtype) for s in s0], [s.astype(numeric_dtype) for s in S]

    def loss():
        out, state, _ = nudged.forward(x, *s0)
        finals = state if isinstance(state, tuple) else (state,)
        return np.sum(out * R) + sum(np.sum(f * s) for f, s in zip(finals, S))

    errors = {}
    for name, p in nudged.params.items():
        errors[name] = relative_error(grads[name], numerical_gradient(loss, p, eps))
    errors["x"] = relative_error(dx, numerical_gradient(loss, x, eps))
    for name, s, d in zip(state_names, s0, d_s0):
        errors[name] = relative_error(d, numerical_gradient(loss, s, eps))
    return errors
