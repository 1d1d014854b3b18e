"""Token counts and ids of a text read chunk by chunk, the same as tokenizing the whole text at once.

A language model's text becomes tokens as `seqlab.pipelines.lm.text_tokens` has it: characters as
they are (char), or each line's tokens followed by <eos> (word, subword). `ChunkTokens` gives the
same tokens for the chunks of `TextSource.chunks` (which end at newlines), without ever holding the
token strings of the whole text:

    ct = ChunkTokens(tokenizer)
    counts = ct.count(src.chunks(0, cut))            # {token: count}, for Vocab.from_counts
    ids = ct.encode(chunk, vocab)                    # np.int64 (t,), unknown tokens as <unk>

char: the chunk's code points, looked up in a table (ASCII chunks without a copy per character);
word: one regular expression over the chunk, each newline an <eos>; subword: the `tokenizers`
package's batch encoding of the chunk's lines (in parallel threads), its ids mapped to the vocabulary.
A chunk that does not end with a newline (the end of a text) ends its last line with <eos> too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from itertools import chain

import numpy as np
import torch

from seqlab.data.tokenizers import _WORD_RE, Tokenizer
from seqlab.data.vocab import EOS, Vocab

_LINE_WORDS = re.compile(_WORD_RE.pattern + r"|\n")
CHUNK_CHARS = {"char": 8 << 20, "word": 2 << 20, "subword": 1 << 20}  # what a chunk's tokens cost in memory


class ChunkTokens:
    """Counts and ids of text chunks for one tokenizer (and, for ids, one vocabulary)."""

    def __init__(self, tokenizer: Tokenizer):
        self.tok, self.kind = tokenizer, tokenizer.kind
        if self.kind not in CHUNK_CHARS:
            raise ValueError(f"no chunked tokenization for tokenizer kind {self.kind!r}")
        self.chunk_chars = CHUNK_CHARS[self.kind]
        self._vocab: tuple | None = None  # (vocabulary, dtype) of the tables
        self._lut: np.ndarray | None = None

    def _prep(self, chunk: str) -> str:
        return chunk.lower() if self.tok.lowercase else chunk

    # ---- raw tokens: code points, strings or subword ids ---------------------------------------
    @staticmethod
    def _code_points(chunk: str) -> np.ndarray:
        if chunk.isascii():
            return np.frombuffer(chunk.encode("ascii"), dtype=np.uint8)
        return np.frombuffer(chunk.encode("utf-32-le"), dtype="<i4")  # code points < 2**21

    @staticmethod
    def _bincount(raw: np.ndarray) -> np.ndarray:
        """np.bincount, 10x faster (torch's, without numpy's copy to int64)."""
        return torch.bincount(torch.from_numpy(raw.copy())).numpy() if len(raw) else np.zeros(0, np.int64)

    def _subword_ids(self, chunk: str) -> np.ndarray:
        """The chunk's subword ids, each line's followed by the sentinel id len(subword vocabulary)."""
        hf = self.tok._hf
        lines = chunk.split("\n")
        if lines[-1] == "":
            lines.pop()
        encode = getattr(hf, "encode_batch_fast", hf.encode_batch)
        eos = hf.get_vocab_size(with_added_tokens=True)
        ids = chain.from_iterable((*e.ids, eos) for e in encode(lines))
        return np.fromiter(ids, dtype=np.int64)

    def _words(self, chunk: str) -> list[str]:
        words = _LINE_WORDS.findall(chunk)
        if chunk and not chunk.endswith("\n"):
            words.append("\n")  # the last line of the text ends too
        return words

    # ---- counts --------------------------------------------------------------------------------
    def count(self, chunks: Iterable[str]) -> Counter:
        """{token: count} over the chunks of one text."""
        counts: Counter = Counter()
        for chunk in chunks:
            chunk = self._prep(chunk)
            if self.kind == "char":
                bins = self._bincount(self._code_points(chunk))
                counts.update({chr(int(c)): int(bins[c]) for c in np.flatnonzero(bins)})
            elif self.kind == "word":
                counts.update(self._words(chunk))
            else:
                hf, eos = self.tok._hf, self._sentinel()
                bins = self._bincount(self._subword_ids(chunk))
                for i in np.flatnonzero(bins):
                    counts[EOS if i == eos else hf.id_to_token(int(i))] += int(bins[i])
        if self.kind == "word" and "\n" in counts:
            counts[EOS] += counts.pop("\n")
        return counts

    def _sentinel(self) -> int:
        return self.tok._hf.get_vocab_size(with_added_tokens=True)

    # ---- ids -------------------------------------------------------------------------------------
    def _table(self, vocab: Vocab) -> np.ndarray:
        """raw token -> vocabulary id: by code point (char) or by subword id (subword)."""
        unk = vocab.unk_id if vocab.unk_id is not None else 0
        if self.kind == "char":
            singles = {ord(t): i for t, i in vocab.stoi.items() if len(t) == 1 and t not in vocab.specials}
            lut = np.full(max(max(singles, default=0) + 1, 128), unk, dtype=np.int64)
            for cp, i in singles.items():
                lut[cp] = i
            return lut
        hf, eos = self.tok._hf, self._sentinel()
        lut = np.full(eos + 1, unk, dtype=np.int64)
        for tok, i in hf.get_vocab(with_added_tokens=True).items():
            lut[i] = vocab.stoi.get(tok, unk)
        lut[eos] = vocab.eos_id
        return lut

    def encode(self, chunk: str, vocab: Vocab, dtype=np.int64) -> np.ndarray:
        """The chunk's token ids in `vocab`, as `dtype` (t,); unknown tokens become <unk>."""
        dtype = np.dtype(dtype)
        if (vocab, dtype) != self._vocab:
            self._vocab, self._lut = (vocab, dtype), (self._table(vocab).astype(dtype) if self.kind != "word" else None)
            self._ascii = bytes(self._lut[:128].tolist() + [0] * 128) if self.kind == "char" and dtype == np.uint8 \
                and len(self._lut) >= 128 else None
        chunk = self._prep(chunk)
        if self.kind == "word":
            stoi, unk = vocab.stoi, vocab.unk_id
            eos = vocab.eos_id
            words = self._words(chunk)
            return np.fromiter((eos if w == "\n" else stoi.get(w, unk) for w in words), dtype=dtype,
                               count=len(words))
        if self._ascii is not None and chunk.isascii():  # bytes in, bytes of ids out
            return np.frombuffer(chunk.encode("ascii").translate(self._ascii), dtype=np.uint8)
        raw = self._code_points(chunk) if self.kind == "char" else self._subword_ids(chunk)
        lut = self._lut
        if len(raw) and int(raw.max()) >= len(lut):  # code points above every character of the vocabulary
            unk = vocab.unk_id if vocab.unk_id is not None else 0
            return np.where(raw < len(lut), lut[np.minimum(raw, len(lut) - 1)], dtype.type(unk))
        return lut[raw]
