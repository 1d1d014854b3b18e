"""Batches of acoustic frames for training, and SpecAugment.

`FrameBatcher` serves (batch, time, dim) zero-padded frames with their lengths, bucketed by length like
every seqlab batcher; targets are class ids (batch,) or label sequences, padded with 0 (the CTC blank,
never a target) to (batch, longest).

`spec_augment` (Park et al. 2019, without time warping) hides random bands of mel channels and random
stretches of frames of each training clip, so the model cannot lean on any one of them.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from seqlab.data.batching import Batch
from seqlab.data.features import FeatureBatcher


class FrameBatcher(FeatureBatcher):
    """FeatureBatcher whose targets may be variable-length label sequences (1-d long tensors)."""

    def make_batch(self, idx: torch.Tensor) -> Batch:
        x = pad_sequence([self.seqs[i] for i in idx.tolist()], batch_first=True)
        if isinstance(self.targets, torch.Tensor):
            targets = self.targets[idx]
        elif self.targets is not None:
            targets = pad_sequence([self.targets[i] for i in idx.tolist()], batch_first=True, padding_value=0)
        else:
            targets = None
        return Batch(x, self.lengths[idx], targets, idx)


def spec_augment(x: torch.Tensor, lengths: torch.Tensor, time_masks: int = 2, time_width: int = 8,
                 freq_masks: int = 2, freq_width: int = 6) -> torch.Tensor:
    """A copy of x (batch, time, dim) with, per clip, `freq_masks` bands of up to `freq_width` channels and
    `time_masks` stretches of up to `time_width` frames (and at most a fifth of the clip each) set to 0,
    the mean of normalised features. Draws from torch's global generator (seeded and resumed by the Trainer)."""
    if not (time_masks and time_width) and not (freq_masks and freq_width):
        return x
    b, t, d = x.shape
    keep = torch.ones(b, t, d, dtype=torch.bool)
    steps, chans = torch.arange(t)[None, :], torch.arange(d)[None, :]
    lengths = lengths.cpu()
    for _ in range(freq_masks if freq_width else 0):
        w = torch.randint(0, min(freq_width, d) + 1, (b,))
        f0 = (torch.rand(b) * (d - w + 1)).long()
        keep &= ~((chans >= f0[:, None]) & (chans < (f0 + w)[:, None]))[:, None, :]
    for _ in range(time_masks if time_width else 0):
        limit = torch.minimum(torch.full((b,), time_width), lengths // 5)
        w = (torch.rand(b) * (limit + 1)).long()
        t0 = (torch.rand(b) * (lengths - w + 1)).long()
        keep &= ~((steps >= t0[:, None]) & (steps < (t0 + w)[:, None]))[:, :, None]
    return x * keep.to(x.device, x.dtype)
