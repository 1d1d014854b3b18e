"""How a seq2seq pipeline turns text into ids: normalisation, tokenizing, the maximum source length,
and the training pairs as two `RowStore`s (sources, targets) for large data.

`PairEncoding` is a mixin of `Seq2SeqPipeline` (it reads `data`, `src_tok`, `tgt_tok`, `src_vocab`
and `tgt_vocab`); translation and question answering (seq2seq mode) both encode through it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from seqlab.data.pairs import PairBatcher, normalize
from seqlab.data.row_store import RowStore, texts_digest


class SourceTruncated(UserWarning):
    """Some source texts were longer than the model's maximum source length and were cut."""


class PairEncoding:
    """Source text -> source ids (cut at data["max_src_len"]), target text -> target ids + <eos>, batches."""

    def norm(self, text: str) -> str:
        d = self.data
        return normalize(text, d["lowercase"], d["nfkc"], d["split_punct"])

    def src_tokens(self, text: str) -> list[str]:
        return self.src_tok.tokenize(self.norm(text))[: self.data["max_src_len"]] or ["<unk>"]

    def encode_src(self, texts: list[str]) -> list[torch.Tensor]:
        """Source ids (1-d each), cut at the model's maximum source length with a SourceTruncated warning."""
        long: list[int] = []
        out = [torch.tensor(ids) for ids in self._src_ids(texts, long)]
        self._warn_long(long, 3)
        return out

    def _src_ids(self, texts, long: list[int], start: int = 0) -> list[list[int]]:
        """Source id lists; the positions (+ start) of the sources cut at the maximum length go to `long`."""
        limit, out = self.data["max_src_len"], []
        for i, t in enumerate(texts):
            toks = self.src_tok.tokenize(self.norm(t))
            if len(toks) > limit:
                long.append(start + i)
            out.append(self.src_vocab.encode(toks[:limit]) or [self.src_vocab.unk_id])
        return out

    def _warn_long(self, long: list[int], stacklevel: int) -> None:
        if long:
            warnings.warn(f"{len(long)} source text(s) longer than the model's maximum of {self.data['max_src_len']} "
                          f"tokens were truncated (the first is input {long[0] + 1})", SourceTruncated,
                          stacklevel=stacklevel)

    def encode_tgt(self, texts: list[str]) -> list[torch.Tensor]:
        """Target ids ending in <eos> (1-d each)."""
        return [torch.tensor(ids) for ids in self._tgt_ids(texts)]

    def _tgt_ids(self, texts) -> list[list[int]]:
        eos = self.tgt_vocab.eos_id
        return [self.tgt_vocab.encode(self.tgt_tok.tokenize(self.norm(t))) + [eos] for t in texts]

    def rows(self, src: list[str], tgt: list[str], cache: str | Path | None = None, log=None,
             ) -> tuple[RowStore, RowStore]:
        """The pairs as two `RowStore`s (sources, targets with <eos>: one flat id array + offsets each), as
        `encode_src`/`encode_tgt` make them: files in `cache` (reused when the texts, normalisation,
        tokenizers and vocabularies are the same), or in memory."""
        d, long, seen = self.data, [], [0]

        def src_ids(chunk):  # RowStore.build encodes the texts in order, chunk by chunk
            seen[0] += len(chunk)
            return self._src_ids(chunk, long, seen[0] - len(chunk))

        stores = []
        for side, texts, tok, vocab, ids in (("src", src, self.src_tok, self.src_vocab, src_ids),
                                             ("tgt", tgt, self.tgt_tok, self.tgt_vocab, self._tgt_ids)):
            key = {"side": side, **{k: d[k] for k in ("lowercase", "nfkc", "split_punct")},
                   "max_src_len": d["max_src_len"] if side == "src" else 0,
                   "tokenizer": texts_digest([json.dumps(tok.to_json(), sort_keys=True)]),
                   "vocab": texts_digest([json.dumps(vocab.to_json(), sort_keys=True)])}
            stores.append(RowStore.build(texts, ids, len(vocab), key, Path(cache) if cache else None, log=log))
        self._warn_long(long, 3)
        return stores[0], stores[1]

    def reference(self, text: str) -> str:
        """A reference as the model would write it (normalised, tokenized, detokenized)."""
        return self.tgt_tok.detokenize(self.tgt_tok.tokenize(self.norm(text)))

    def batches(self, src: list[str], tgt: list[str], batch_size: int, rows: tuple | None = None, **kw,
                ) -> PairBatcher:
        """Batches of the pairs; `rows`: their two RowStores (`rows()`) instead of encoding them here."""
        src_ids, tgt_ids = rows or (self.encode_src(src), self.encode_tgt(tgt))
        return PairBatcher(src_ids, tgt_ids, batch_size, self.src_vocab.pad_id, **kw)
