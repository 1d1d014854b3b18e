"""Sentence pairs for seq2seq: reading, normalising, filtering, splitting and batching.

Two ways in, both returning `Pairs` (source and target strings plus each pair's line number):
  read_pairs_table   a CSV/TSV file with the two columns by name or 0-based index (the shared
                     `read_table`: gzip, encodings, CRLF, quoting, errors with line numbers)
  read_parallel      two line-aligned files, line i of one translating line i of the other
                     (`--src train.de.gz --tgt train.en.gz`), gzip read transparently
An empty source or target is an error naming the file and line.

Normalisation (`normalize`): lower-casing, Unicode NFKC (full-width letters, ligatures and
compatibility forms folded), and splitting punctuation from words ("cold." -> "cold .").
Filters (`filter_pairs`): both sides under a number of tokens, and a source (or target) that
starts with one of some prefixes. `TUTORIAL_PREFIXES` are those of the PyTorch seq2seq tutorial's
English-French subset ("i am", "he is", ... and the contractions "i m", "he s", ...); prefixes are
matched case-insensitively with apostrophes read as spaces, so "I'm cold." starts with "i m ".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqlab.data.batching import Batch, BucketBatcher, pad_batch
from seqlab.data.readers import read_table, read_text
from seqlab.errors import UserError

TUTORIAL_PREFIXES = ("i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are", "you re ",
                     "we are", "we re ", "they are", "they re ")
_PUNCT_RE = re.compile(r"([^\w\s'’])")
_SPACE_RE = re.compile(r"\s+")
_NONWORD_RE = re.compile(r"[^\w\s]")


@dataclass
class Pairs:
    """Aligned source/target strings; lines[i] is pair i's line number in `origin` (1-based)."""

    src: list[str]
    tgt: list[str]
    lines: list[int]
    origin: str

    def __len__(self) -> int:
        return len(self.src)

    def subset(self, idx: Sequence[int]) -> Pairs:
        return Pairs([self.src[i] for i in idx], [self.tgt[i] for i in idx], [self.lines[i] for i in idx],
                     self.origin)


def _is_name(col: str | int) -> bool:
    return isinstance(col, str) and not col.lstrip("-").isdigit()


def read_pairs_table(path: str | Path, src_col: str | int, tgt_col: str | int, delimiter: str | None = None,
                     header: str = "auto", encoding: str = "utf-8") -> Pairs:
    """Pairs from two columns of a CSV/TSV file.

    header: 'yes', 'no', or 'auto' = a header row exactly when a column is given by name
    (so `--src-col 0 --tgt-col 1` reads a headerless file such as the tutorial's eng-fra.txt).
    """
    if header not in ("auto", "yes", "no"):
        raise UserError(f"header must be auto, yes or no, not {header!r}")
    has_header = header == "yes" or (header == "auto" and (_is_name(src_col) or _is_name(tgt_col)))
    table = read_table(path, [src_col, tgt_col], delimiter, has_header, encoding)
    for s, t, line in zip(table.column(0), table.column(1), table.lines):
        side = "source" if not s else "target" if not t else None
        if side:
            col = table.columns[0] if side == "source" else table.columns[1]
            raise UserError(f"{path}: line {line} has an empty {side} (column {col!r}); remove or fill that row")
    return Pairs(table.column(0), table.column(1), table.lines, str(path))


def _file_lines(path: str | Path, encoding: str) -> list[str]:
    lines = read_text(path, encoding).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [s.strip() for s in lines]


def read_parallel(src_path: str | Path, tgt_path: str | Path, encoding: str = "utf-8") -> Pairs:
    """Pairs from two line-aligned files (line i of `src_path` pairs with line i of `tgt_path`)."""
    src, tgt = _file_lines(src_path, encoding), _file_lines(tgt_path, encoding)
    if len(src) != len(tgt):
        raise UserError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}; "
                        "parallel files must be line-aligned, one sentence per line")
    for i, (s, t) in enumerate(zip(src, tgt)):
        if not s or not t:
            path = src_path if not s else tgt_path
            raise UserError(f"{path}: line {i + 1} is empty, so pair {i + 1} has an empty side; "
                            "remove that line from both files or fill it")
    return Pairs(src, tgt, list(range(1, len(src) + 1)), f"{src_path} + {tgt_path}")


def normalize(text: str, lowercase: bool = False, nfkc: bool = False, split_punct: bool = False) -> str:
    """The text after optional NFKC folding, lower-casing and punctuation splitting (apostrophes
    stay inside words: "I'm cold." -> "i'm cold ."), with runs of white space made one space."""
    if nfkc:
        text = unicodedata.normalize("NFKC", text)
    if lowercase:
        text = text.lower()
    if split_punct:
        text = _PUNCT_RE.sub(r" \1 ", text)
    return _SPACE_RE.sub(" ", text).strip()


def prefix_key(text: str, sentence: bool = True) -> str:
    """The form prefixes are matched in: lower case, apostrophes and other punctuation as spaces,
    single spaces. A sentence also gets a trailing space (so "I'm." matches the prefix "i m ");
    a prefix keeps its own trailing space or lack of one ("he is" also matches "he isn't")."""
    key = _SPACE_RE.sub(" ", _NONWORD_RE.sub(" ", text.lower())).lstrip()
    return key.rstrip() + " " if sentence else key


def filter_pairs(pairs: Pairs, max_tokens: int = 0, prefixes: Sequence[str] = (), prefix_side: str = "src",
                 count: Callable[[str], int] = lambda s: len(s.split())) -> Pairs:
    """Keep pairs whose sides both have fewer than `max_tokens` tokens (0 = no limit; `count`
    counts a side's tokens) and whose `prefix_side` ('src' or 'tgt') starts with a prefix."""
    keys = tuple(prefix_key(p, sentence=False) for p in prefixes)
    side = pairs.src if prefix_side == "src" else pairs.tgt
    keep = []
    for i in range(len(pairs)):
        if max_tokens and (count(pairs.src[i]) >= max_tokens or count(pairs.tgt[i]) >= max_tokens):
            continue
        if keys and not prefix_key(side[i]).startswith(keys):
            continue
        keep.append(i)
    return pairs.subset(keep)


def split_pairs(pairs: Pairs, valid_fraction: float, test_fraction: float, seed: int = 1,
                ) -> tuple[list[int], list[int], list[int]]:
    """Seeded (train, valid, test) index lists. Pairs with the same source sentence stay in one
    split, so a test sentence is never seen in training with another of its translations."""
    if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise UserError("--valid-fraction and --test-fraction must be in [0, 1) and sum to less than 1")
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(pairs.src):
        groups.setdefault(s, []).append(i)
    members = list(groups.values())
    order = np.random.default_rng(seed).permutation(len(members))
    n = len(pairs)
    want_valid, want_test = round(n * valid_fraction), round(n * test_fraction)
    train, valid, test = [], [], []
    for g in order:
        if len(valid) < want_valid:
            valid.extend(members[g])
        elif len(test) < want_test:
            test.extend(members[g])
        else:
            train.extend(members[g])
    return sorted(train), sorted(valid), sorted(test)


class PairBatcher(BucketBatcher):
    """Batches of encoded pairs, bucketed by total length.

    `src` and `tgt` are lists of 1-d id tensors or two `RowStore`s (one per side, see
    `Seq2SeqPipeline.rows`: the ids stay in their flat token files until a batch is made).
    Each `Batch` has ids (batch, src) padded with `pad_id`, lengths (batch,) of the sources, and
    targets (batch, tgt) = the target ids (each ending in <eos>) padded with -100.
    """

    def __init__(self, src: Sequence[torch.Tensor], tgt: Sequence[torch.Tensor], batch_size: int,
                 pad_id: int = 0, shuffle: bool = False, seed: int = 0, bucket: bool = True):
        stored = hasattr(tgt, "lengths")  # a RowStore stays a memory map
        super().__init__(src, tgt if stored else list(tgt), batch_size, pad_id, shuffle=shuffle, bucket=bucket,
                         seed=seed)
        if len(self.targets) != len(self.seqs):
            raise ValueError(f"{len(self.seqs)} sources but {len(self.targets)} targets")
        tgt_lengths = tgt.lengths if stored else torch.tensor([len(t) for t in self.targets], dtype=torch.long)
        self.lengths = self.lengths + tgt_lengths

    def make_batch(self, idx: torch.Tensor) -> Batch:
        ids, lengths = pad_batch([self.seqs[i] for i in idx.tolist()], self.pad_id)
        targets, _ = pad_batch([self.targets[i] for i in idx.tolist()], -100)
        return Batch(ids, lengths, targets, idx)
