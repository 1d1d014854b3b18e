"""Sequence classification: the shared encoder, a pooling step, a linear layer.

    ids (batch, time) -> encoder outputs (batch, time, d) -> pooled (batch, d) -> logits (batch, classes)

Pooling choices:
  last  the final hidden state of the top layer (both directions for a BiLSTM); the classic RNN
        classifier, where the last state must remember everything that matters
  mean  the average of the outputs over the valid (non-padded) steps
  max   the element-wise maximum over the valid steps
  concat  [last; max; mean] side by side (batch, 3d): ULMFiT's concat pooling (Howard & Ruder 2018)
With cell 'none' the encoder has no recurrence and 'mean' gives the bag-of-embeddings baseline,
which cannot tell "good, not bad" from "bad, not good".

With `bag=True` the classifier is a two-member ensemble: the recurrent classifier above and a bag of
embeddings with its own embedding table (models/bag.py: mean of token and, with `bag_buckets`, hashed
bigram embeddings, then a linear layer). Each member is trained on its own
cross-entropy (`member_logits`; the parameters are disjoint, so this is the same as training them apart),
and `forward` returns the log of their averaged probabilities, which softmax, argmax and export read
as logits. On small text sets a word's polarity carries most of the signal, which the bag learns directly
and the recurrent model learns noisily; the average beats either alone there.

With `backward=True` a second recurrent member (its own encoder and output layer, the same sizes) reads
each text from its last token to its first (`reverse_padded`): ULMFiT's bidirectional setup, where a
classifier fine-tuned from a forward LM and one from a backward LM average their predictions. Members
are then [forward, backward] (and the bag last), averaged the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.models.bag import BagOfEmbeddings
from seqlab.models.encoder import EncoderConfig, RecurrentEncoder, reverse_padded

POOLINGS = ("last", "mean", "max", "concat")


@dataclass
class ClassifierConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    num_classes: int = 2
    pooling: str = "last"
    head_dropout: float = 0.0
    bag: bool = False  # average with a bag-of-embeddings member (see the module docstring)
    bag_buckets: int = 0  # the bag member's hashed bigram embeddings (0: tokens only); see models/bag.py
    backward: bool = False  # a second recurrent member reading each text backward (see the module docstring)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ClassifierConfig:
        return cls(**{**d, "encoder": EncoderConfig(**d["encoder"])})


def pool(outputs: torch.Tensor, lengths: torch.Tensor | None, how: str) -> torch.Tensor:
    """Pool (batch, time, d) outputs over the valid steps of each sequence -> (batch, d)."""
    if lengths is None:
        return outputs.mean(1) if how == "mean" else outputs.max(1).values
    mask = (torch.arange(outputs.shape[1])[None, :] < lengths[:, None]).to(outputs.device)
    if how == "mean":
        return (outputs * mask[..., None]).sum(1) / lengths.to(outputs.device)[:, None].clamp(min=1)
    if how == "max":
        return outputs.masked_fill(~mask[..., None], float("-inf")).max(1).values
    raise ValueError(f"unknown pooling {how!r}; choose one of {', '.join(POOLINGS)}")


class TextClassifier(nn.Module):
    """Classify whole sequences (token ids or numeric feature sequences)."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        if cfg.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {cfg.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if cfg.encoder.cell == "none" and cfg.pooling in ("last", "concat"):
            raise ValueError("cell 'none' has no final state; use pooling 'mean' or 'max'")
        self.cfg = cfg
        self.encoder = RecurrentEncoder(cfg.encoder)
        self.dropout = nn.Dropout(cfg.head_dropout)
        width = 3 if cfg.pooling == "concat" else 1
        self.out = nn.Linear(width * cfg.encoder.output_dim, cfg.num_classes)
        self.back_encoder = self.back_out = None
        if cfg.backward:
            if cfg.num_classes < 2:
                raise ValueError("a backward member averages class probabilities; regression has none")
            self.back_encoder = RecurrentEncoder(cfg.encoder)
            self.back_out = nn.Linear(width * cfg.encoder.output_dim, cfg.num_classes)
        self.bag = None
        if cfg.bag:
            if cfg.encoder.vocab_size == 0:
                raise ValueError("a bag-of-embeddings member needs token ids; feature sequences have no vocabulary")
            if cfg.num_classes < 2:
                raise ValueError("a bag-of-embeddings member averages class probabilities; regression has none")
            e = cfg.encoder
            self.bag = BagOfEmbeddings(e.vocab_size, e.embed_dim, cfg.num_classes, e.pad_id, e.embed_dropout,
                                       cfg.head_dropout, cfg.bag_buckets)

    def _logits(self, ids: torch.Tensor, lengths: torch.Tensor | None, backward: bool = False) -> torch.Tensor:
        """A recurrent member (the forward one, or the backward one reading the texts reversed):
        (batch, time) ids -> (batch, num_classes) logits."""
        encoder, out = (self.back_encoder, self.back_out) if backward else (self.encoder, self.out)
        enc = encoder(reverse_padded(ids, lengths) if backward else ids, lengths)
        if self.cfg.pooling == "last":
            pooled = enc.final_hidden()
        elif self.cfg.pooling == "concat":
            pooled = torch.cat([enc.final_hidden(), pool(enc.outputs, lengths, "max"),
                                pool(enc.outputs, lengths, "mean")], -1)
        else:
            pooled = pool(enc.outputs, lengths, self.cfg.pooling)
        return out(self.dropout(pooled))

    def member_logits(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each member's own logits, [(batch, num_classes), ...]: the recurrent member, then the backward
        one and the bag where the model has them."""
        members = [self._logits(ids, lengths)]
        if self.back_encoder is not None:
            members.append(self._logits(ids, lengths, backward=True))
        return members if self.bag is None else [*members, self.bag(ids, lengths)]

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """ids (batch, time) [or features (batch, time, input_dim)], lengths (batch,)
        -> logits (batch, num_classes); with more members, log of their mean probabilities."""
        if self.bag is None and self.back_encoder is None:
            return self._logits(ids, lengths)
        members = torch.stack([F.log_softmax(x.float(), -1) for x in self.member_logits(ids, lengths)])
        return torch.logsumexp(members, 0) - math.log(len(members))  # (batch, num_classes)
