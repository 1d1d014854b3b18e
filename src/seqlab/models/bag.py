"""A bag of embeddings: the mean of a text's token embeddings (and, optionally, of hashed bigram embeddings),
then a linear layer. The classifier's second member (`ClassifierConfig.bag`), the fastText design
(Joulin et al. 2017): order-blind apart from the bigrams, fast, and hard to beat on short texts.

    ids (batch, time) -> embeddings (batch, time, d) [+ bigrams (batch, time-1, d)] -> mean (batch, d)
        -> logits (batch, classes)

Bigram (a, b) has the embedding row (a * 1_000_003 + b) mod `buckets`: no bigram vocabulary to store,
collisions shared (as fastText's hashing trick). Every step is plain tensor arithmetic, so it exports.
"""

from __future__ import annotations

import torch
from torch import nn

BIGRAM_PRIME = 1_000_003


class BagOfEmbeddings(nn.Module):
    def __init__(self, vocab_size: int, dim: int, classes: int, pad_id: int = 0, embed_dropout: float = 0.0,
                 dropout: float = 0.0, buckets: int = 0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.bigrams = nn.Embedding(buckets, dim) if buckets else None
        self.embed_dropout, self.dropout = nn.Dropout(embed_dropout), nn.Dropout(dropout)
        self.out = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """ids (batch, time), lengths (batch,) or None (all full) -> logits (batch, classes)."""
        batch, time = ids.shape
        if lengths is None:
            lengths = torch.full((batch,), time, dtype=torch.long)
        lengths = lengths.to(ids.device)
        mask = torch.arange(time, device=ids.device)[None, :] < lengths[:, None]  # (batch, time)
        total = (self.embed_dropout(self.embedding(ids)) * mask[..., None]).sum(1)  # (batch, d)
        count = lengths.clamp(min=1).to(total.dtype)
        if self.bigrams is not None and time > 1:
            pairs = (ids[:, :-1] * BIGRAM_PRIME + ids[:, 1:]) % self.bigrams.num_embeddings  # (batch, time-1)
            both = mask[:, 1:]  # the bigram ends at a valid step
            total = total + (self.embed_dropout(self.bigrams(pairs)) * both[..., None]).sum(1)
            count = count + both.sum(1).to(total.dtype)
        return self.out(self.dropout(total / count[:, None]))
