"""The one dev hold-out: which examples of a training set are kept aside for model selection."""

from __future__ import annotations

import numpy as np


def holdout(n: int, fraction: float, seed: int = 1) -> tuple[list[int], list[int]]:
    """Seeded (train, dev) index lists: a random `fraction` of range(n) (at least 1) is dev.

    Both lists keep the original order of the examples.
    """
    dev = holdout_mask(n, fraction, seed)
    return np.flatnonzero(~dev).tolist(), np.flatnonzero(dev).tolist()


def holdout_mask(n: int, fraction: float, seed: int = 1) -> np.ndarray:
    """(n,) bool, True for the dev examples of `holdout` (no index lists: for millions of rows)."""
    perm = np.random.default_rng(seed).permutation(n)
    k = min(n - 1, max(1, int(n * fraction))) if n > 1 else 0
    dev = np.zeros(n, dtype=bool)
    dev[perm[:k]] = True
    return dev


def holdout_tail(n: int, fraction: float) -> int:
    """For ordered data (a text stream, a time series): the index where the last `fraction` begins."""
    return int(n * (1 - fraction))
