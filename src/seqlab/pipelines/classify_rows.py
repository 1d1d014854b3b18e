"""The training data of a text classifier: a file or an (inputs, labels) pair as lists (`labelled`), or a
large CSV/TSV streamed into a `RowStore` without ever holding its texts as Python strings (`TableRows`).

`TableRows.open` reads the file in chunks (`readers.iter_table`: the same rows and errors as `read_table`),
three times (twice with a dev file: pass 1 is done in pass 0): pass 0 checks every row and keeps the labels
as small integer codes (the dev hold-out of
`dev_fraction` is the same seeded `holdout` of the row count); pass 1 counts the training tokens
(`Vocab.from_counts`: the vocabulary `Vocab.build` makes from the list) and keeps the dev texts; pass 2,
run by `Classifier.rows` only when the store is not in the cache already, writes the ids chunk by chunk.
Small files (no cache, fewer than `classify.ROW_STORE_ROWS` training rows) keep the list path.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from seqlab.data import Vocab, build_tokenizer, features, read_table
from seqlab.data.readers import iter_table
from seqlab.data.row_store import texts_digest
from seqlab.data.split import holdout_mask
from seqlab.errors import UserError
from seqlab.pipelines.transfer import pretrained_tokenizer

STREAM_BYTES = 4 << 20  # from this file size (without a cache) the rows are counted first, to see if they stream


def labelled(source, d: dict, name: str) -> tuple[list, list, list | None]:
    """(inputs, labels, line numbers or None) from a path or an (inputs, labels) pair."""
    if isinstance(source, (str, Path)):
        if d.get("features"):
            return features.read_labelled(source, d)
        table = read_table(source, [d["text_col"], d["label_col"]], d["delimiter"], d["header"], d["encoding"])
        _check_filled(source, table.column(0), table.column(1), table.lines)
        return table.column(0), table.column(1), table.lines
    try:
        inputs, labels = source
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a file path or an (inputs, labels) pair") from None
    inputs, labels = list(inputs), [lb if d.get("regression") else str(lb) for lb in labels]
    if len(inputs) != len(labels) or not inputs:
        raise UserError(f"{name}: {len(inputs)} inputs and {len(labels)} labels; give one label per input")
    if d.get("features"):
        inputs = [np.asarray(x, dtype=np.float64) for x in inputs]
    return inputs, labels, None


def _check_filled(source, texts, labels, lines) -> None:
    for text, label, line in zip(texts, labels, lines):
        if not text:
            raise UserError(f"{source}: line {line} has an empty text; remove or fill that row")
        if not label:
            raise UserError(f"{source}: line {line} has an empty label; remove or fill that row")


def check_labels(label_vocab: Vocab, dev_labels: list, dev_lines, train_name: str, dev, label_col: str) -> None:
    """At least two classes, and no dev label the training data lacks."""
    if len(label_vocab) < 2:
        raise UserError(f"{train_name}: the label column {label_col!r} has only one class "
                        f"({label_vocab.itos[0]!r}); a classifier needs at least two")
    unseen = sorted(set(dev_labels) - set(label_vocab.itos))
    if unseen:
        where = f" (line {dev_lines[dev_labels.index(unseen[0])]})" if dev_lines else ""
        raise UserError(f"{dev}: label {unseen[0]!r}{where} never occurs in {train_name}; "
                        "fix the label or add training examples of it")


class TableRows:
    """The training rows of a large table: `len()` rows, `targets` (n,) long class ids, `key` (the texts'
    digest and count, for the RowStore), `id_chunks(encode)` (pass 2); with tokenizer, vocab, labels, dev."""

    def __init__(self, path: Path, d: dict, dev_mask: np.ndarray | None):
        self.path, self.d, self.dev_mask = path, d, dev_mask

    def _chunks(self) -> Iterator[tuple[int, list, list]]:
        """(index of the chunk's first row, rows, lines) of the whole file."""
        lo, d = 0, self.d
        for rows, lines in iter_table(self.path, [d["text_col"], d["label_col"]], d["delimiter"], d["header"],
                                      d["encoding"]):
            yield lo, rows, lines
            lo += len(rows)

    def _train_texts(self, lo: int, rows: list) -> list[str]:
        if self.dev_mask is None:
            return [r[0] for r in rows]
        dev = self.dev_mask[lo : lo + len(rows)]
        return [r[0] for r, is_dev in zip(rows, dev) if not is_dev]

    def _count(self, texts: list[str], counts: Counter, h) -> None:
        """The tokens of training texts into `counts`, the texts into the digest `h`."""
        counts.update(itertools.chain.from_iterable(map(self.tok.tokenize, texts)))
        texts_digest(texts, h)

    def __len__(self) -> int:
        return self.n

    def id_chunks(self, encode: Callable[[list], list[list[int]]]) -> Iterator[list[list[int]]]:
        for lo, rows, _ in self._chunks():
            yield encode(self._train_texts(lo, rows))

    @classmethod
    def open(cls, train, dev, d: dict, dc, m, tc, log, min_rows: int) -> TableRows | None:
        """The rows of `train` streamed (see the module), or None where the list path is the one to take
        (without a cache: fewer than `min_rows` training rows)."""
        if not isinstance(train, (str, Path)) or dc.features or dc.regression or not Path(train).is_file():
            return None
        tok = pretrained_tokenizer(m)
        if tok is None and dc.tokenizer == "subword":
            return None  # a subword tokenizer learns from the list of texts
        if not dc.cache and Path(train).stat().st_size < STREAM_BYTES:
            return None
        self = cls(Path(train), d, None)
        self.tok = tok or build_tokenizer(dc.tokenizer, None, dc.lowercase, dc.subword_vocab)
        names: dict[str, int] = {}
        codes, counts, h = [], Counter(), hashlib.sha256()
        for _, rows, lines in self._chunks():  # pass 0: every row checked, the labels as codes
            texts, labels = [r[0] for r in rows], [r[1] for r in rows]
            _check_filled(train, texts, labels, lines)
            if dev is not None:  # every row trains: pass 1 is done here
                self._count(texts, counts, h)
            codes.append(np.fromiter((names.setdefault(lb, len(names)) for lb in labels), np.int32, len(labels)))
        code = np.concatenate(codes)
        if dev is None:
            if len(code) < 2:
                return None  # the list path says what is wrong
            self.dev_mask = holdout_mask(len(code), tc.dev_fraction, tc.seed)
        self.n = len(code) if self.dev_mask is None else int((~self.dev_mask).sum())
        if not dc.cache and self.n < min_rows:
            return None
        itos = sorted(names, key=names.get)
        train_code = code if self.dev_mask is None else code[~self.dev_mask]
        present = np.unique(train_code)
        self.labels = Vocab.labels([itos[c] for c in present])
        lut = np.full(len(itos), -1, dtype=np.int64)
        lut[present] = self.labels.encode([itos[c] for c in present])
        self.targets = torch.from_numpy(lut[train_code])
        if dev is None:
            self.dev_labels, self.dev_lines = [itos[c] for c in code[self.dev_mask]], None
        else:
            self.dev_texts, self.dev_labels, self.dev_lines = labelled(dev, d, "dev")
        check_labels(self.labels, self.dev_labels, self.dev_lines, str(train), dev, dc.label_col)
        if dev is None:
            self.dev_texts = []
            for lo, rows, _ in self._chunks():  # pass 1: the training tokens counted, the dev texts kept
                self._count(self._train_texts(lo, rows), counts, h)
                self.dev_texts += [r[0] for r, is_dev in zip(rows, self.dev_mask[lo : lo + len(rows)]) if is_dev]
        self.vocab = Vocab.from_counts(counts, dc.min_freq, dc.max_vocab)
        self.key = {"texts": h.hexdigest(), "rows": self.n}
        log(f"{train}: {len(code):,} rows read in chunks (the texts are never all in memory)")
        return self
