"""Input saliency: how much each input token contributes to one output of the model.

    s = saliency(pipe, "not good at all", target="negative")     # any text checkpoint (seqlab.load)
    s = toy_saliency("lstm", "not good at all")                  # the unroller's scratch NumPy cells

The output L is chosen as in the backward view (`seqlab.viz.backward.choose`: a position, a target,
a measure 'prob' / 'loss' / 'logit', or `position="all"`). x (time, input) is what the encoder reads
(the token embeddings; a tagger's word features), and per token t:

    gxi[t]        gradient x input, sum_i x_t,i dL/dx_t,i: the first-order estimate of what token t
                  adds to L (exactly the derivative of L(x_t * (1 + eps)) at eps = 0)
    ig[t]         integrated gradients (Sundararajan et al. 2017): sum_i (x - x')_t,i times the mean of
                  dL/dx_t,i along the straight path x' + a (x - x'), a in [0, 1], by Gauss-Legendre
                  quadrature with `steps` nodes (Captum's default rule). The baseline x' is all zeros
                  (every token's vector zeroed). Completeness: sum_t ig[t] = L(x) - L(x'), up to the
                  quadrature error `gap` (tested below 1e-3 with 64 steps).
    grad_norm[t]  ||dL/dx_t||, how sensitive L is to token t's vector, whatever its sign

Checkpoints run on the float64 copy of the model with the autograd unroll (`ModelGraph`), the path
points in batches; toy cells through the scratch cell's own forward and BPTT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from seqlab.viz.backward import ModelGraph, choose, scalar

MAX_STEPS = 256
CHUNK_VALUES = 4_000_000  # logits held at once while integrating (path points x positions x choices)


@dataclass
class Saliency:
    """Per-token attributions (time,) of one output L (see the module docstring); value = L(x),
    baseline_value = L(x')."""

    tokens: list[str]
    gxi: np.ndarray
    ig: np.ndarray
    grad_norm: np.ndarray
    value: float
    baseline_value: float
    steps: int
    measure: str
    what: str
    position: int | None
    target_name: str | None
    top: list[tuple[str, float]]
    labels: list[str] | None = None  # the names of the choices (classes, tags, the vocabulary)

    @property
    def gap(self) -> float:
        """sum(ig) - (L(x) - L(x')): the completeness error of the quadrature."""
        return float(self.ig.sum() - (self.value - self.baseline_value))


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (n,) in (0, 1) and weights (n,) summing to 1 of n-point Gauss-Legendre quadrature."""
    a, w = np.polynomial.legendre.leggauss(n)
    return (a + 1) / 2, w / 2


def integrated_gradients(value_and_grad: Callable, x: np.ndarray, baseline: np.ndarray, steps: int,
                         chunk: int) -> tuple[np.ndarray, float]:
    """(attributions (time, input), L(baseline)) for L given as value_and_grad(xb (k, time, input))
    -> (L (k,), dL/dxb (k, time, input)); the path points go `chunk` at a time."""
    alphas, weights = gauss_legendre(steps)
    mean_grad = np.zeros_like(x)
    for s in range(0, steps, chunk):
        a, w = alphas[s:s + chunk], weights[s:s + chunk]
        _, g = value_and_grad(baseline[None] + a[:, None, None] * (x - baseline)[None])
        mean_grad += np.tensordot(w, g, 1)
    f0, _ = value_and_grad(baseline[None])
    return (x - baseline) * mean_grad, float(f0[0])


def _check_steps(steps: int) -> None:
    from seqlab.errors import UserError

    if not 1 <= steps <= MAX_STEPS:
        raise UserError(f"the integrated-gradients steps must be between 1 and {MAX_STEPS}, got {steps}")


def _result(tokens, x, vg, ch, steps, chunk, labels) -> Saliency:
    f, g = vg(x[None])
    ig, f0 = integrated_gradients(vg, x, np.zeros_like(x), steps, chunk)
    name = labels[ch.targets[0]] if ch.position is not None else None
    return Saliency(tokens, (x * g[0]).sum(-1), ig.sum(-1), np.linalg.norm(g[0], axis=-1), float(f[0]), f0, steps,
                    ch.measure, ch.what, ch.position, name, ch.top, labels)


def saliency(pipe, text: str, position=None, target=None, measure: str | None = None, steps: int = 64) -> Saliency:
    """Gradient x input and integrated gradients of one output of a loaded text pipeline over `text`."""
    _check_steps(steps)
    g = ModelGraph(pipe, text)
    with torch.no_grad():
        logits0 = g.logits(g.x[None])[0][0]  # (positions, choices)
    ch = g.choose(logits0, position, target, measure)

    def vg(xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xt = torch.from_numpy(xb).requires_grad_(True)
        f = scalar(g.logits(xt)[0], ch)
        (grad,) = torch.autograd.grad(f.sum(), xt)
        return f.detach().numpy(), grad.numpy()

    chunk = max(1, min(steps, CHUNK_VALUES // max(1, logits0.numel())))
    return _result(g.ro.tokens, g.x.numpy(), vg, ch, steps, chunk, g.ro.labels)


def toy_saliency(cell: str, text: str, hidden: int = 4, seed: int = 0, position=None, target=None,
                 measure: str | None = None, steps: int = 64) -> Saliency:
    """The same for a toy cell's readout softmax(W h_t + b) (`seqlab.viz.model_trace.toy_trace`)."""
    from seqlab.viz.model_trace import TOY_CLASSES, toy_parts

    _check_steps(steps)
    layer, words, x, w, b = toy_parts(cell, text, hidden, seed)
    T = len(words)
    z0 = torch.from_numpy(layer.forward(x[None])[0][0] @ w.T + b)
    ch = choose(z0, [f"step {t} ({words[t]!r})" for t in range(T)], list(TOY_CLASSES), [-1] * T, T - 1,
                list(range(T)), False, position, target, measure)

    def vg(xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out, _, cache = layer.forward(xb)
        z = torch.tensor(out @ w.T + b, requires_grad=True)  # (k, time, classes)
        f = scalar(z, ch)
        (dz,) = torch.autograd.grad(f.sum(), z)
        return f.detach().numpy(), layer.backward(dz.numpy() @ w, None, cache)[1]

    return _result(words, x, vg, ch, steps, steps, list(TOY_CLASSES))
