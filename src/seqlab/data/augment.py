"""Batches of acoustic frames for training, and SpecAugment.

`FrameBatcher` serves (batch, time, dim) zero-padded frames with their lengths, bucketed by length like
every seqlab batcher; targets are class ids (batch,) or label sequences, padded with 0 (the CTC blank,
never a target) to (batch, longest).

`spec_augment` (Park et al. 2019, without time warping) hides random bands of mel channels and random
stretches of frames of each training clip, so the model cannot lean on any one of them.

`vtlp_frames` (vocal-tract-length perturbation, Jaitly & Hinton 2013) makes a batch's frames from its
power spectra through a mel filterbank warped by a random factor per clip (1 +- max_warp), so every
epoch hears each speaker with a slightly longer or shorter vocal tract.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from seqlab.data import audio
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


def vtlp_frames(power: torch.Tensor, lengths: torch.Tensor, spec: audio.FeatureSpec, max_warp: float,
                normalize: str, stats: dict | None = None) -> torch.Tensor:
    """Normalised frames (batch, time, dim) of padded power spectra (batch, time, freq), each clip through
    the mel filterbank warped by a factor drawn uniformly from [1 - max_warp, 1 + max_warp] (in steps of
    0.005, from torch's global generator); padded frames are 0, as `FrameBatcher` pads normalised frames."""
    warps = (1 + (2 * torch.rand(len(power)) - 1) * max_warp).mul(200).round().div(200).tolist()
    x = audio.warped_features(power, spec, warps)
    mask = (torch.arange(x.shape[1])[None, :] < lengths.cpu()[:, None]).to(x.device, x.dtype)[..., None]
    if normalize in ("utterance", "cmn"):
        n = mask.sum(1, keepdim=True).clamp_min(1)
        mean = (x * mask).sum(1, keepdim=True) / n
        std = (((x - mean) * mask) ** 2).sum(1, keepdim=True).div(n).sqrt().clamp_min(1e-3)
        x = (x - mean) / (std if normalize == "utterance" else torch.tensor(stats["std"]).to(x))
    else:
        x = audio.normalise(x, normalize, stats)
    return x * mask
