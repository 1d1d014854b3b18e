"""Sequence tagging: one tag per token, read from a bidirectional encoder over the sentence.

    word ids (batch, time) -> word embedding (batch, time, word_dim)
    [+ character features of each word (batch, time, char_out): a char BiLSTM or a char CNN]
    [+ case pattern embedding (batch, time, case_dim), when words are lower-cased]
    [+ a pretrained word-level LM's encoder over the words (batch, time, lm_hidden): `lm`, TagLM-style]
    [+ a backward LM's, reading each sentence from its end, re-reversed to the words' order: `lm_back`]
      -> concatenated (batch, time, input_dim) -> shared RecurrentEncoder (BiLSTM)
      -> dropout -> linear -> emissions (batch, time, num_tags)
      -> softmax per token (cross-entropy; argmax), or a CRF over the sentence (NLL; Viterbi)

Character features are computed once per distinct word form in a batch: the batch carries the
forms' characters `chars (forms, chars)` and `form_index (batch, time)`, the row of each token.
The char BiLSTM is a second `RecurrentEncoder` over characters; its final states (both directions)
are the word's features. The char CNN is a convolution over characters, max-pooled over the word.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.data.batching import BucketBatcher, pad_batch
from seqlab.models.crf import CRF, lengths_to_mask
from seqlab.models.encoder import EncoderConfig, RecurrentEncoder, reverse_padded

CHAR_FEATURES = ("none", "lstm", "cnn")
CASES = ("<pad>", "lower", "Title", "UPPER", "mIxed", "digits", "has-digit", "other")


def case_of(word: str) -> int:
    """Index in CASES of a word's case pattern (what lower-casing the word throws away)."""
    if word.isdigit():
        return 5
    if any(c.isdigit() for c in word):
        return 6
    if not any(c.isalpha() for c in word):
        return 7
    if word.islower():
        return 1
    if word.isupper():
        return 3
    if word[0].isupper() and (len(word) == 1 or word[1:].islower()):
        return 2
    return 4


@dataclass
class TaggerConfig:
    """encoder: the sentence encoder, with vocab_size 0 and input_dim = word_dim + char_out + case_dim.
    char: 'none', 'lstm' or 'cnn'; char_out: size of a word's character features (lstm: both
    directions together). word_dropout: share of training tokens replaced by <unk>, so the model
    learns to tag words it has never seen from their characters and context."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    word_vocab: int = 0
    word_dim: int = 100
    num_tags: int = 2
    char: str = "none"
    char_vocab: int = 0
    char_dim: int = 30
    char_out: int = 50
    case_dim: int = 0
    crf: bool = False
    dropout: float = 0.5
    word_dropout: float = 0.0
    pad_id: int = 0
    unk_id: int = 1
    lm: EncoderConfig | None = None  # a pretrained LM's encoder over the word vocabulary (seqlab.pipelines.lm_transfer)
    lm_back: EncoderConfig | None = None  # beside `lm`: a backward LM's encoder, reading each sentence from its end

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> TaggerConfig:
        lm = EncoderConfig(**d["lm"]) if d.get("lm") else None
        back = EncoderConfig(**d["lm_back"]) if d.get("lm_back") else None
        return cls(**{**d, "encoder": EncoderConfig(**d["encoder"]), "lm": lm, "lm_back": back})


@dataclass
class TagBatch:
    """One batch of sentences.

    words (batch, time) word ids padded with PAD; lengths (batch,) on the CPU; targets (batch, time)
    tag ids padded with -100, or None; index (batch,) sentence positions in the dataset;
    chars (forms, chars) char ids of the distinct word forms, padded; char_lengths (forms,) on the
    CPU; form_index (batch, time): the row of `chars` of each token; case (batch, time) CASES ids.
    The char and case fields are None when the model does not use them.
    """

    words: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor | None
    index: torch.Tensor
    chars: torch.Tensor | None = None
    char_lengths: torch.Tensor | None = None
    form_index: torch.Tensor | None = None
    case: torch.Tensor | None = None

    def to(self, device) -> TagBatch:
        def mv(x):
            return None if x is None else x.to(device, non_blocking=True)

        return TagBatch(mv(self.words), self.lengths, mv(self.targets), self.index, mv(self.chars),
                        self.char_lengths, mv(self.form_index), mv(self.case))

    def __len__(self) -> int:
        return self.words.shape[0]


class TagBatcher:
    """Length-bucketed `TagBatch`es (the order and padding of `BucketBatcher`).

    Args:
        words: per sentence, a (n,) tensor of word ids.
        forms: per sentence, a (n,) tensor of rows of `form_chars` (its word forms), or None.
        form_chars: (num_forms, max_chars) char ids of each word form; form_lengths (num_forms,).
        form_case: (num_forms,) CASES id of each form, or None.
        targets: per sentence, a (n,) tensor of tag ids, or None.
    Other keyword arguments go to `BucketBatcher` (shuffle, bucket, seed, ...).
    """

    def __init__(self, words, targets, batch_size: int, pad_id: int = 0, forms=None, form_chars=None,
                 form_lengths=None, form_case=None, **kw):
        self.inner = BucketBatcher(words, targets, batch_size, pad_id, **kw)
        self.forms, self.form_chars, self.form_lengths, self.form_case = forms, form_chars, form_lengths, form_case

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def shard(self, rank: int, world: int) -> None:
        self.inner.shard(rank, world)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self):
        for idx in self.inner.batch_indices():
            b = self.inner.make_batch(idx)
            batch = TagBatch(b.ids, b.lengths, b.targets, b.index)
            if self.forms is not None:
                fidx, _ = pad_batch([self.forms[i] for i in idx.tolist()], 0)  # (batch, time)
                if self.form_chars is not None:
                    uniq, inv = torch.unique(fidx, return_inverse=True)
                    lens = self.form_lengths[uniq]
                    batch.chars = self.form_chars[uniq, : int(lens.max())]
                    batch.char_lengths, batch.form_index = lens, inv
                if self.form_case is not None:
                    batch.case = self.form_case[fidx]
            yield batch


class CharCNN(nn.Module):
    """chars (forms, chars), lengths (forms,) -> (forms, out): conv width 3, max over the real chars."""

    def __init__(self, vocab: int, dim: int, out: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, out, kernel_size=3, padding=1)

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.embedding(chars).transpose(1, 2)).transpose(1, 2)  # (forms, chars, out)
        mask = lengths_to_mask(lengths, chars.shape[1], chars.device)
        return h.masked_fill(~mask[..., None], float("-inf")).max(1).values


class Tagger(nn.Module):
    """BiLSTM(-CRF) tagger; see the module docstring for the data flow."""

    def __init__(self, cfg: TaggerConfig):
        super().__init__()
        if cfg.char not in CHAR_FEATURES:
            raise ValueError(f"unknown char features {cfg.char!r}; choose one of {', '.join(CHAR_FEATURES)}")
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.word_vocab, cfg.word_dim, padding_idx=cfg.pad_id)
        self.chars: nn.Module | None = None
        if cfg.char == "lstm":
            self.chars = RecurrentEncoder(EncoderConfig(vocab_size=cfg.char_vocab, embed_dim=cfg.char_dim,
                                                        hidden=cfg.char_out // 2, bidirectional=True))
        elif cfg.char == "cnn":
            self.chars = CharCNN(cfg.char_vocab, cfg.char_dim, cfg.char_out)
        self.case = nn.Embedding(len(CASES), cfg.case_dim, padding_idx=0) if cfg.case_dim else None
        self.lm = RecurrentEncoder(cfg.lm) if cfg.lm is not None else None
        self.lm_back = RecurrentEncoder(cfg.lm_back) if cfg.lm_back is not None else None
        self.encoder = RecurrentEncoder(cfg.encoder)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.encoder.output_dim, cfg.num_tags)
        self.crf = CRF(cfg.num_tags) if cfg.crf else None

    @property
    def input_dim(self) -> int:
        c = self.cfg
        lms = sum(e.output_dim for e in (c.lm, c.lm_back) if e is not None)
        return c.word_dim + (c.char_out if c.char != "none" else 0) + c.case_dim + lms

    def features(self, b: TagBatch) -> torch.Tensor:
        """The encoder's input: (batch, time, input_dim)."""
        words = b.words
        if self.training and self.cfg.word_dropout > 0:
            drop = torch.rand(words.shape, device=words.device) < self.cfg.word_dropout
            words = words.masked_fill(drop & (words != self.cfg.pad_id), self.cfg.unk_id)
        parts = [self.embedding(words)]
        if self.chars is not None:
            if isinstance(self.chars, RecurrentEncoder):
                per_form = self.chars(b.chars, b.char_lengths).final_hidden()  # (forms, char_out)
            else:
                per_form = self.chars(b.chars, b.char_lengths)
            parts.append(per_form[b.form_index])
        if self.case is not None:
            parts.append(self.case(b.case))
        if self.lm is not None:
            parts.append(self.lm(words, b.lengths).outputs)
        if self.lm_back is not None:  # read from the end; its output at step t has seen words t..end
            back = self.lm_back(reverse_padded(words, b.lengths), b.lengths).outputs
            parts.append(reverse_padded(back, b.lengths))
        return torch.cat(parts, -1)

    def forward(self, b: TagBatch) -> torch.Tensor:
        """Emission scores (batch, time, num_tags); zero-input steps at padding are ignored later."""
        enc = self.encoder(self.features(b), b.lengths)
        return self.out(self.dropout(enc.outputs))

    def mask(self, b: TagBatch) -> torch.Tensor:
        """(batch, time) bool, True at real tokens."""
        return lengths_to_mask(b.lengths, b.words.shape[1], b.words.device)

    def sentence_loss(self, b: TagBatch, emissions: torch.Tensor | None = None) -> torch.Tensor:
        """(batch,) summed loss of each sentence: CRF negative log-likelihood, or token cross-entropy."""
        em = self(b) if emissions is None else emissions
        if self.crf is not None:
            return self.crf.nll(em, b.targets, self.mask(b))
        ce = F.cross_entropy(em.transpose(1, 2), b.targets, ignore_index=-100, reduction="none")
        return ce.sum(1)

    def loss(self, b: TagBatch) -> torch.Tensor:
        """Scalar training loss: the summed sentence losses divided by the number of tokens."""
        return self.sentence_loss(b).sum() / b.lengths.sum().to(b.words.device)

    @torch.no_grad()
    def decode(self, b: TagBatch) -> torch.Tensor:
        """Best tag ids (batch, time), -100 at padded steps: Viterbi with a CRF, else per-token argmax."""
        em = self(b)
        mask = self.mask(b)
        if self.crf is not None:
            return self.crf.decode(em, mask)
        return em.argmax(-1).masked_fill(~mask, -100)


def tag_marginals(model, batch: TagBatch) -> torch.Tensor:
    """p(tag_t = k | sentence) (batch, time, tags): the CRF's marginals (the gradient of log Z
    with respect to the emissions, by the CRF's own forward algorithm in float64), or a softmax over
    the emissions without a CRF. `model`: a Tagger or an exported stand-in of one."""
    with torch.no_grad():
        em = model(batch)
    if model.crf is None:
        return torch.softmax(em.double(), -1)
    crf = copy.deepcopy(model.crf).double()
    with torch.enable_grad():
        em = em.detach().double().requires_grad_(True)
        (grad,) = torch.autograd.grad(crf.log_partition(em, model.mask(batch)).sum(), em)
    return grad


def tag_log_scores(model, batch: TagBatch) -> torch.Tensor:
    """log p(tag_t = k | sentence), differentiable (batch, time, tags): with a CRF its log-marginals
    (the gradient of log Z, kept in the graph: what the backward view and saliency differentiate),
    without one the emission scores (their softmax is p; under no_grad, the values only)."""
    em = model(batch)
    if model.crf is None:
        return em
    graph = em.requires_grad
    with torch.enable_grad():
        em = em if graph else em.detach().requires_grad_(True)
        (marg,) = torch.autograd.grad(model.crf.log_partition(em, model.mask(batch)).sum(), em, create_graph=graph)
    return marg.clamp_min(1e-300).log()
