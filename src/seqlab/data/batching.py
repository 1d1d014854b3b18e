"""Batching: length bucketing, padding, and what the encoder needs to pack.

Sequences of different lengths are put in one (batch, time) tensor by padding them with PAD up
to the longest in the batch. Padding costs compute twice: the padded steps are computed, and
(without packing) they leak into the final hidden state. seqlab avoids both:

* `BucketBatcher` groups examples of similar length (sort within a shuffled pool of many
  batches, then shuffle the batches), so little padding is needed;
* each `Batch` carries `lengths`, and the encoder packs the batch with
  `torch.nn.utils.rnn.pack_padded_sequence`, so padded positions never reach the cell.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


def pad_batch(seqs: Sequence[torch.Tensor], pad_id: int, pad_to: int | None = None):
    """Stack 1-d id tensors into `ids` of shape (batch, time), padded with `pad_id`.

    Returns (ids, lengths): ids (batch, time) long, lengths (batch,) long on the CPU.
    `pad_to` pads to at least that many steps (the naive "pad to the longest in the data").
    """
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    width = int(lengths.max()) if len(seqs) else 0
    if pad_to is not None:
        width = max(width, pad_to)
    ids = torch.full((len(seqs), width), pad_id, dtype=seqs[0].dtype if len(seqs) else torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    return ids, lengths


def split_batches(batches: list[torch.Tensor], rank: int, world: int) -> list[torch.Tensor]:
    """Data-parallel sharding: each global batch of example indices cut into `world` near-equal parts,
    rank `rank`'s part of each. A final batch with fewer examples than ranks is dropped (every rank
    must get one); the same count of batches on every rank."""
    if world == 1:
        return batches
    return [b.tensor_split(world)[rank] for b in batches if len(b) >= world]


@dataclass
class Batch:
    """One mini-batch.

    ids:      (batch, time) token ids, padded with PAD
    lengths:  (batch,) true lengths, on the CPU (pack_padded_sequence wants them there)
    targets:  (batch,) class ids, or (batch, time) per-step targets padded with -100, or None
    index:    (batch,) positions of these examples in the dataset, to restore input order
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor | None
    index: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        t = self.targets.to(device, non_blocking=True) if self.targets is not None else None
        return Batch(self.ids.to(device, non_blocking=True), self.lengths, t, self.index)

    def __len__(self) -> int:
        return self.ids.shape[0]


class BucketBatcher:
    """Iterate over `Batch`es of encoded sequences, optionally bucketed by length.

    Args:
        seqs: encoded examples, each a 1-d long tensor of token ids (length >= 1), or a `RowStore`
            (its `lengths`, rows read from its token file when a batch is made).
        targets: a (n,) tensor of class ids, a list of 1-d per-step target tensors, or None.
        batch_size: examples per batch.
        pad_id: the id used for padding `ids`.
        shuffle: new random order each epoch (seeded by `seed` and the epoch, see `set_epoch`).
        bucket: sort by length inside pools of `pool` batches (shuffle) or overall (no shuffle).
        pad_to: pad every batch to at least this many steps (naive padding, for benchmarks).
        drop_last: skip a final incomplete batch.
    """

    def __init__(
        self,
        seqs: Sequence[torch.Tensor],
        targets: torch.Tensor | Sequence[torch.Tensor] | None,
        batch_size: int,
        pad_id: int = 0,
        shuffle: bool = False,
        bucket: bool = True,
        seed: int = 0,
        pool: int = 50,
        pad_to: int | None = None,
        drop_last: bool = False,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.seqs = seqs if hasattr(seqs, "lengths") else list(seqs)  # a RowStore stays a memory map
        self.targets = targets
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.shuffle = shuffle
        self.bucket = bucket
        self.seed = seed
        self.pool = pool
        self.pad_to = pad_to
        self.drop_last = drop_last
        self.lengths = seqs.lengths if hasattr(seqs, "lengths") else \
            torch.tensor([len(s) for s in self.seqs], dtype=torch.long)
        self.epoch = 0
        self.rank, self.world = 0, 1

    def shard(self, rank: int, world: int) -> None:
        """Serve rank `rank`'s share of each global batch of batch_size * world examples (data-parallel
        training: every rank gets batch_size examples of the same global batch, see `split_batches`)."""
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of `epoch` (same seed and epoch, same order)."""
        self.epoch = epoch

    def batch_indices(self) -> list[torch.Tensor]:
        """The example indices of each batch, in the order they will be served."""
        n, bs = len(self.seqs), self.batch_size * self.world
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        if self.bucket:
            if self.shuffle:
                chunk = bs * self.pool
                parts = []
                for s in range(0, n, chunk):
                    part = order[s : s + chunk]
                    parts.append(part[torch.argsort(self.lengths[part], stable=True)])
                order = torch.cat(parts) if parts else order
            else:
                order = order[torch.argsort(self.lengths[order], stable=True, descending=True)]
        batches = list(torch.split(order, bs))
        if self.drop_last and batches and len(batches[-1]) < bs:
            batches.pop()
        if self.shuffle and self.bucket:
            perm = torch.randperm(len(batches), generator=g).tolist()
            batches = [batches[i] for i in perm]
        return split_batches(batches, self.rank, self.world)

    def __len__(self) -> int:
        full, rest = divmod(len(self.seqs), self.batch_size * self.world)
        return full + int(not self.drop_last and rest >= self.world)

    def make_batch(self, idx: torch.Tensor) -> Batch:
        ids, lengths = pad_batch([self.seqs[i] for i in idx.tolist()], self.pad_id, self.pad_to)
        targets = None
        if isinstance(self.targets, torch.Tensor):
            targets = self.targets[idx]
        elif self.targets is not None:
            targets, _ = pad_batch([self.targets[i] for i in idx.tolist()], -100, ids.shape[1])
        return Batch(ids, lengths, targets, idx)

    def __iter__(self) -> Iterator[Batch]:
        for idx in self.batch_indices():
            yield self.make_batch(idx)
