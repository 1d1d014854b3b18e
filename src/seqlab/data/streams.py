"""Stream batching: one long text as `batch` contiguous streams, read `seq_len` tokens at a time.

A language model learns from one long sequence, not from separate examples. To use a batch, the
token ids are cut into `batch` equal, contiguous streams, one row each, and read left to right:

    ids      a b c d e f g h i j k l m n o p q r s t u v w x y       (25 ids, batch = 3)
    inputs   row 0: a b c d e f g h     targets  row 0: b c d e f g h i
             row 1: i j k l m n o p              row 1: j k l m n o p q
             row 2: q r s t u v w x              row 2: r s t u v w x y

    chunk 0 (seq_len 3):  inputs [[a b c], [i j k], [q r s]]   targets [[b c d], [j k l], [r s t]]
    chunk 1:              inputs [[d e f], [l m n], [t u v]]   ...     chunk 2 is shorter: [[g h], ...]

The target of each input is the next token, so the streams cover `ids[:-1]` as inputs and
`ids[1:]` as targets: every target token appears exactly once per epoch, in order within its
stream. Fewer than `batch` tokens at the end, which cannot fill a row, are left out.

Row r of chunk k continues row r of chunk k-1, so the model's final state after chunk k-1 is the
right start state for chunk k: the training loop carries it across batches and detaches it
(truncated back-propagation through time: memory flows forward across chunks, gradients flow
back at most `seq_len` steps). The order never changes between epochs (shuffling chunks would
break the streams); the carried state must be reset to zeros when a new epoch starts, which a
step function can see from ``batch.index[0] == batcher.starts[0]`` (the first chunk of an epoch).

The ids may be a numpy array, typically the memory map of a token store (`seqlab.data.token_store`,
uint8/uint16/uint32): the streams are then views of the file and each chunk is read from it when it
is served (as int64), so a corpus larger than memory trains in constant memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from seqlab.data.batching import Batch
from seqlab.errors import UserError


class StreamBatcher:
    """Iterate over (batch, seq_len) chunks of `batch` contiguous streams of `ids`.

    Args:
        ids: the whole corpus as a 1-d tensor or numpy array of token ids (a memory map is read
            window by window), (n,) with n >= batch + 1.
        batch: number of streams (rows of every chunk).
        seq_len: time steps per chunk; the last chunk of an epoch may be shorter.
        limit: ids must be below this (the vocabulary size); a chunk with one that is not is a
            UserError naming `source` (a damaged token store), instead of an index error in the model.

    Each `Batch` has ids (batch, t) inputs, targets (batch, t) next tokens (int64), lengths None
    (every row fills all t steps, nothing to pack) and index (batch,): the corpus position of each
    row's first input, so ``ids[index[r] + j] == batch.ids[r, j]``.
    """

    def __init__(self, ids, batch: int, seq_len: int, limit: int | None = None, source: str = "the token ids"):
        if ids.ndim != 1:
            raise ValueError(f"ids must be 1-d (n,), got shape {tuple(ids.shape)}")
        if batch < 1 or seq_len < 1:
            raise ValueError(f"batch and seq_len must be >= 1, got {batch} and {seq_len}")
        self.ids, self.batch, self.seq_len = ids, batch, seq_len
        self._array = ids.numpy() if torch.is_tensor(ids) else ids
        self.limit, self.source = limit, source
        self.epoch = 0
        self.shard(0, 1)

    def shard(self, rank: int, world: int) -> None:
        """Data-parallel training: cut the text into batch * world streams; this rank reads rows
        rank*batch .. (rank+1)*batch - 1 of them. One rank of `world` sees exactly the rows a single
        process with batch * world streams would give it."""
        ids, total = self._array, self.batch * world
        self.stream_len = (len(ids) - 1) // total  # input (and target) tokens per stream
        if self.stream_len < 1:
            raise UserError(f"the training text has {len(ids)} tokens, too few for {total} streams (--batch "
                            f"{self.batch} x {world} processes); give a longer text, a smaller --batch or fewer "
                            "processes")
        used = total * self.stream_len
        rows = slice(rank * self.batch, (rank + 1) * self.batch)
        self.inputs = ids[:used].reshape(total, self.stream_len)[rows]  # (batch, stream_len), a view
        self.targets = ids[1 : used + 1].reshape(total, self.stream_len)[rows]  # (batch, stream_len)
        self.starts = torch.arange(total)[rows] * self.stream_len  # (batch,) corpus position of each row

    def set_epoch(self, epoch: int) -> None:
        """Record the epoch. The chunk order is the same in every epoch; a fresh epoch starts again
        at position 0 of every stream, so a carried state must be reset there (see module doc)."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Chunks per epoch: ceil(stream_len / seq_len)."""
        return -(-self.stream_len // self.seq_len)

    def _read(self, view: np.ndarray, pos: int) -> torch.Tensor:
        out = torch.from_numpy(np.ascontiguousarray(view, dtype=np.int64))
        if self.limit is not None and out.numel() and int(out.max()) >= self.limit:
            r, j = divmod(int(out.argmax()), out.shape[1])
            raise UserError(f"{self.source} is damaged: token id {int(out.max())} at position "
                            f"{int(self.starts[r]) + pos + j:,} is not in the vocabulary of {self.limit}; delete "
                            "it and train again (the text is then tokenized afresh)")
        return out

    def __iter__(self) -> Iterator[Batch]:
        for pos in range(0, self.stream_len, self.seq_len):
            end = min(pos + self.seq_len, self.stream_len)
            yield Batch(self._read(self.inputs[:, pos:end], pos), None, self._read(self.targets[:, pos:end], pos + 1),
                        self.starts + pos)
