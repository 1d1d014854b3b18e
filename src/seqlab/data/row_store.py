"""Tokenized rows (classification examples, one side of translation pairs) as one flat token array
plus an offsets index, on disk as memory maps or in memory as two NumPy arrays.

    rows = RowStore.build(texts, encode, vocab_size, cache=Path("runs/x/rows"), log=print)
    len(rows); rows[i]          # (length,) long tensor: ids[offsets[i] : offsets[i + 1]]
    rows.lengths                # (n,) long tensor of row lengths (what BucketBatcher sorts by)
    RowStore.build_from(id_chunks, vocab_size, key, cache)   # ids made chunk by chunk (a table streamed)

A list of 10 million small tensors costs ~150 bytes of object overhead per row plus 8 bytes per
token; here a row costs 8 bytes (its offset) plus 1-4 bytes per token (the smallest unsigned type
that holds the vocabulary, `token_store.dtype_for`). The texts are tokenized in chunks of
`chunk_rows` (never all rows' id lists at once).

Files, in the cache directory: `rows-<digest>.tokens` (the ids, raw little-endian), `rows-<digest>.offsets`
(int64, n + 1) and `rows-<digest>.json` (format, version, dtype, rows, tokens, key). The digest names the
recipe `key` plus a sha256 of the texts themselves, so the same texts tokenized the same way are read
back (`reused`, said in the log) and anything else is made afresh. Written like the LM's token store:
temporary names renamed, the header last, under a lock file (the ranks of one torchrun take turns).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from seqlab.data.token_store import _Lock, _mkdir, _write_json, dtype_for
from seqlab.errors import UserError

FORMAT, VERSION = "seqlab-row-store", 1


def texts_digest(texts: Iterable[str], h=None) -> str:
    """sha256 of the texts, each length-prefixed (so row boundaries count); with `h` (a hashlib sha256),
    the texts are added to it (a corpus digested chunk by chunk: `h.hexdigest()` at the end)."""
    h = hashlib.sha256() if h is None else h
    for t in texts:
        b = t.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


class RowStore(Sequence):
    """Rows of token ids: `tokens` (total,) and `offsets` (n + 1,) int64, memory maps or arrays."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, header: dict, path: Path | None = None,
                 reused: bool = False):
        self.tokens, self.offsets, self.header, self.path, self.reused = tokens, offsets, header, path, reused
        self.lengths = torch.from_numpy(np.diff(offsets).astype(np.int64))  # (n,)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> torch.Tensor:
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return torch.from_numpy(self.tokens[lo:hi].astype(np.int64))

    def __repr__(self) -> str:
        where = self.path or "(in memory)"
        return f"<RowStore {where} {len(self):,} rows, {len(self.tokens):,} tokens {self.tokens.dtype}>"

    # ---- files ---------------------------------------------------------------------------------
    @staticmethod
    def files(cache: Path, key: dict) -> tuple[Path, Path, Path, Path]:
        """(header, tokens, offsets, lock) of the store of `key` in `cache`."""
        name = "rows-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return tuple(cache / f"{name}.{ext}" for ext in ("json", "tokens", "offsets", "lock"))  # type: ignore[return-value]

    @classmethod
    def find(cls, key: dict, cache: Path) -> tuple[RowStore | None, str]:
        """(the store made with `key` in `cache`, "") when it is there and whole, else (None, why not)."""
        head, toks, offs, _ = cls.files(Path(cache), key)
        if not head.exists():
            return None, ""
        try:
            header = json.loads(head.read_text())
            dtype, n, total = np.dtype(header["dtype"]), int(header["rows"]), int(header["tokens"])
            if header.get("format") != FORMAT or header.get("version") != VERSION or header.get("key") != key:
                return None, f"{head} is from another version or recipe"
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
            return None, f"{head} is damaged ({type(e).__name__})"
        for path, size in ((toks, total * dtype.itemsize), (offs, (n + 1) * 8)):
            if not path.exists() or path.stat().st_size != size:
                return None, f"{path} is damaged (not {size:,} bytes)"
        tokens = np.memmap(toks, dtype=dtype, mode="r", shape=(total,)) if total else np.zeros(0, dtype)
        return cls(tokens, np.memmap(offs, dtype=np.int64, mode="r", shape=(n + 1,)), header, toks, reused=True), ""

    # ---- making one ------------------------------------------------------------------------------
    @classmethod
    def build(cls, texts: Sequence, encode: Callable[[Sequence], list[list[int]]], vocab_size: int, key: dict,
              cache: Path | None = None, *, chunk_rows: int = 20_000,
              log: Callable[[str], None] | None = None) -> RowStore:
        """Tokenize `texts` with `encode` (a chunk of texts -> their id lists) into a store; with `cache`, into
        files there, or read back the store of the same texts and `key` (the tokenizer and vocabulary)."""
        key = {**key, "texts": texts_digest(texts), "rows": len(texts)}
        chunks = (encode(texts[lo : lo + chunk_rows]) for lo in range(0, len(texts), chunk_rows))
        return cls.build_from(chunks, vocab_size, key, cache, log=log)

    @classmethod
    def build_from(cls, chunks: Iterable[list[list[int]]], vocab_size: int, key: dict, cache: Path | None = None,
                   *, log: Callable[[str], None] | None = None) -> RowStore:
        """`build` from the id lists of the rows, chunk by chunk (an iterator: it is consumed only when the
        store is not in `cache` already); `key` names the texts too (their digest and count, as `build`'s)."""
        dtype = dtype_for(vocab_size)
        if cache is None:
            toks, lens = [], []
            for rows in chunks:
                toks.append(np.fromiter((i for r in rows for i in r), dtype=dtype))
                lens.append(np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows)))
            return cls(np.concatenate(toks) if toks else np.zeros(0, dtype), _offsets(lens), _header(key, dtype, lens))
        head, toks_path, offs_path, lock = cls.files(_mkdir(Path(cache)), key)
        with _Lock(lock):
            found, why = cls.find(key, cache)
            if found is not None:
                if log:
                    log(f"tokenized rows reused from {found.path} ({len(found):,} rows; tokenizing skipped)")
                return found
            if why and log:
                log(f"tokenizing the rows again: {why}")
            t0, lens = time.perf_counter(), []
            tmp_t, tmp_o = (p.with_name(f".{p.name}.tmp-{os.getpid()}") for p in (toks_path, offs_path))
            try:
                with open(tmp_t, "wb") as out:
                    for rows in chunks:
                        out.write(np.fromiter((i for r in rows for i in r), dtype=dtype).tobytes())
                        lens.append(np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows)))
                _offsets(lens).tofile(tmp_o)
                head.unlink(missing_ok=True)  # never an old header beside new files
                os.replace(tmp_t, toks_path)
                os.replace(tmp_o, offs_path)
                _write_json(head, _header(key, dtype, lens) | {"seconds": round(time.perf_counter() - t0, 2)})
            except OSError as e:
                raise UserError(f"cannot write the tokenized rows in {cache} ({e.strerror}); free some disk space "
                                "or give --cache another directory") from None
            finally:
                tmp_t.unlink(missing_ok=True)
                tmp_o.unlink(missing_ok=True)
        found, _ = cls.find(key, cache)
        if log:
            log(f"tokenized {len(found):,} rows into {found.path} ({len(found.tokens):,} tokens, "
                f"{found.tokens.dtype}, {found.header['seconds']}s)")
        found.reused = False
        return found


def _offsets(lens: list[np.ndarray]) -> np.ndarray:
    """(n + 1,) int64: 0 and the running sum of the row lengths."""
    out = np.zeros(sum(len(x) for x in lens) + 1, dtype=np.int64)
    if len(out) > 1:
        np.cumsum(np.concatenate(lens), out=out[1:])
    return out


def _header(key: dict, dtype: np.dtype, lens: list[np.ndarray]) -> dict:
    return {"format": FORMAT, "version": VERSION, "dtype": dtype.name, "rows": int(sum(len(x) for x in lens)),
            "tokens": int(sum(int(x.sum()) for x in lens)), "key": key}
