"""What turns a recurrent layer into a trainable model: an output layer, a loss, and an update rule.

    h (batch, time, hidden) --OutputLayer--> logits (batch, time, vocab) --softmax--> p
    loss = mean over positions of -log p[target]

The gradient of softmax cross-entropy with respect to the logits is simply p - onehot(target)
(divided by the number of positions averaged over), which is why the two are fused here.

Before each update the gradients may be clipped by their global norm (all arrays seen as one long
vector): RNN gradients occasionally explode, and clipping keeps one bad step from wrecking the
weights while leaving the direction unchanged. The optimizers update parameter dicts in place:
    Adagrad  divides each step by the root of the sum of all past squared gradients;
    Adam     uses running averages of the gradient and its square, with bias correction.
Both follow the formulas of torch.optim (the tests compare them step by step).
"""

from __future__ import annotations

import numpy as np


class OutputLayer:
    """logits = h @ weight^T + bias, with torch.nn.Linear's names, layout and init.

    params: weight (vocab, hidden), bias (vocab,).
    """

    def __init__(self, hidden_size: int, vocab_size: int, dtype=np.float64, seed: int = 0):
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(hidden_size)
        self.params = {
            "weight": rng.uniform(-k, k, (vocab_size, hidden_size)).astype(dtype),
            "bias": rng.uniform(-k, k, (vocab_size,)).astype(dtype),
        }

    def forward(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """h (batch, time, hidden) -> logits (batch, time, vocab), cache (= h)."""
        return h @ self.params["weight"].T + self.params["bias"], h

    def backward(self, d_logits: np.ndarray, h: np.ndarray) -> tuple[dict, np.ndarray]:
        """d_logits (batch, time, vocab), the cache h -> grads {weight, bias}, dh (batch, time, hidden)."""
        grads = {
            "weight": d_logits.reshape(-1, d_logits.shape[-1]).T @ h.reshape(-1, h.shape[-1]),
            "bias": d_logits.sum(axis=(0, 1)),
        }
        return grads, d_logits @ self.params["weight"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the max so exp never overflows."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None):
    """Mean cross-entropy and its gradient.

    logits (batch, time, vocab); targets (batch, time) integer ids; mask (batch, time) with 1 where
    the position counts and 0 at padding (None: all count).
    Returns (loss, d_logits (batch, time, vocab)).
    """
    targets = np.asarray(targets)
    mask = np.ones(targets.shape, logits.dtype) if mask is None else np.asarray(mask, logits.dtype)
    count = max(float(mask.sum()), 1.0)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    nll = -np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]  # (batch, time)
    loss = float((nll * mask).sum() / count)
    d_logits = np.exp(log_p)  # p - onehot(target), scaled by mask / count
    np.put_along_axis(d_logits, targets[..., None], np.take_along_axis(d_logits, targets[..., None], -1) - 1, -1)
    return loss, d_logits * (mask / count)[..., None]


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most max_norm (as
    torch.nn.utils.clip_grad_norm_). Returns the norm before clipping."""
    norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    scale = max_norm / (norm + 1e-6)
    if scale < 1:
        for g in grads.values():
            g *= scale
    return norm


class Adam:
    """Adam over a dict of parameter arrays, updated in place (torch.optim.Adam without weight decay).

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """grads: name -> gradient shaped like params[name] (names missing from grads are skipped)."""
        self.t += 1
        b1, b2 = self.betas
        for k, g in grads.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            denom = np.sqrt(self.v[k] / (1 - b2**self.t)) + self.eps
            self.params[k] -= self.lr * (self.m[k] / (1 - b1**self.t)) / denom


class Adagrad:
    """Adagrad over a dict of parameter arrays, updated in place (torch.optim.Adagrad's defaults).

    s += g^2;  p -= lr * g / (sqrt(s) + eps)
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-2, eps: float = 1e-10):
        self.params, self.lr, self.eps = params, lr, eps
        self.sum_sq = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """grads: name -> gradient shaped like params[name] (names missing from grads are skipped)."""
        for k, g in grads.items():
            self.sum_sq[k] += g * g
            self.params[k] -= self.lr * g / (np.sqrt(self.sum_sq[k]) + self.eps)
