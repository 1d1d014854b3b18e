"""Forecast windows: the (input, target) pairs a forecaster trains on, cut so the input never reaches
the future.

    origin o:  inputs are steps [o - lookback, o),  targets are steps [o, o + horizon)

`window_origins` picks the origins whose targets lie in a part of the series; `gather` cuts the
windows from arrays of shape (time, k), vectorised; `WindowBatcher` serves them to the Trainer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from seqlab.data.batching import split_batches
from seqlab.errors import UserError


def window_origins(first: int, end: int, lookback: int, horizon: int, stride: int = 1) -> np.ndarray:
    """Forecast origins o (the first predicted step) whose targets [o, o + horizon) lie in [first, end)
    and whose inputs [o - lookback, o) start at step 0 or later."""
    lo = max(first, lookback)
    return np.arange(lo, end - horizon + 1, stride, dtype=np.int64)


def gather(a: np.ndarray, origins: np.ndarray, start: int, length: int) -> np.ndarray:
    """a (time, k) -> (len(origins), length, k): rows [o + start, o + start + length) for each origin."""
    idx = origins[:, None] + np.arange(start, start + length)[None, :]
    return a[idx]


def check_length(n: int, lookback: int, horizon: int, source: str, where: str = "") -> None:
    if n < lookback + horizon:
        raise UserError(f"{source}: {where}the series has {n} steps, fewer than lookback + horizon = "
                        f"{lookback} + {horizon}; use a smaller --lookback or --horizon")


@dataclass
class WindowBatch:
    """x (batch, lookback, targets + covariates): scaled inputs; future (batch, horizon, covariates):
    the known covariates of the forecast steps; y (batch, horizon, targets): scaled targets;
    index (batch,): window numbers."""

    x: torch.Tensor
    future: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor

    def to(self, device) -> WindowBatch:
        return WindowBatch(self.x.to(device), self.future.to(device), self.y.to(device), self.index)

    def __len__(self) -> int:
        return self.x.shape[0]


class WindowBatcher:
    """Mini-batches of forecast windows, reshuffled each epoch from (seed, epoch) like BucketBatcher."""

    def __init__(self, x: torch.Tensor, future: torch.Tensor, y: torch.Tensor, batch_size: int,
                 shuffle: bool = False, seed: int = 0):
        self.x, self.future, self.y = x, future, y
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0
        self.rank, self.world = 0, 1

    def shard(self, rank: int, world: int) -> None:
        """Serve rank `rank`'s share of each global batch of batch_size * world windows."""
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(len(self.x), self.batch_size * self.world)
        return full + int(rest >= self.world)

    def __iter__(self) -> Iterator[WindowBatch]:
        n = len(self.x)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        for idx in split_batches(list(torch.split(order, self.batch_size * self.world)), self.rank, self.world):
            yield WindowBatch(self.x[idx], self.future[idx], self.y[idx], idx)
