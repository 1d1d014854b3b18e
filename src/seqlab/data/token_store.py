"""A corpus tokenized once, on disk: a memory-mapped array of token ids and a JSON header.

    store = TokenStore.build(src, ChunkTokens(tok), vocab, [("train", 0, cut), ("valid", cut, None)],
                             key, cache_dir, counts, log=print)
    store.ids                     # np.memmap (n,) of uint8 / uint16 / uint32: the smallest that holds the vocabulary
    store.segment("valid")        # a view of the ids of one part of the text
    again, why = TokenStore.find(src, key, cache_dir)    # the same store, if the source and the recipe are unchanged

Files, in the cache directory: `<name>-<key>.tokens` (the ids, raw little-endian) and `<name>-<key>.json`,
the header: format and version, dtype, token count, the segments (name, characters, tokens), the
tokenizer and vocabulary (as in a checkpoint's vocab.json), the token counts of the first segment
(what the vocabulary was built from), the source file's path, size, mtime and sha256, and the
recipe `key` (tokenizer settings, hold-out fraction, ...). `<key>` is a digest of the source path and
the recipe, so one cache directory holds the stores of many texts and settings side by side.

Reuse: the header names the same source and recipe; the source's size and mtime are those recorded
(or, when only the mtime moved, its sha256 is). A source that changed, a header from another format
version, a header that is not JSON or a .tokens file of the wrong size: the store is made again
(with a one-line note saying why). Written atomically: both files go to temporary names and are
renamed, the header last, so a store that is there is complete; a lock file keeps two processes
(the ranks of one torchrun) from writing one store at the same time. Never pickle: JSON and raw ids.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from seqlab.data.chunk_tokens import ChunkTokens
from seqlab.data.text_stream import Progress, TextSource
from seqlab.data.vocab import Vocab
from seqlab.errors import UserError

FORMAT, VERSION = "seqlab-token-store", 1


def dtype_for(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds ids 0 .. vocab_size - 1."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"a vocabulary of {vocab_size} tokens does not fit in 32 bits")


def store_name(src: TextSource, key: dict) -> str:
    """`<file stem>-<12 hex digits>` of the source path and the recipe."""
    ident = json.dumps({"source": str(src.path.resolve()), **key}, sort_keys=True)
    stem = re.sub(r"[^\w.-]+", "_", src.path.name)[:48]
    return f"{stem}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


def store_files(cache: Path, src: TextSource, key: dict) -> tuple[Path, Path, Path]:
    """The header, ids and lock files of the store of `src` made with `key` in `cache`."""
    name = store_name(src, key)
    return cache / f"{name}.json", cache / f"{name}.tokens", cache / f"{name}.lock"


class _Lock:
    """An exclusive flock on `path` while a store is checked or written (blocking: the others wait)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _mkdir(cache: Path) -> Path:
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = cache / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write the token store in {cache} ({e.strerror}); give --cache a writable "
                        "directory") from None
    return cache


class TokenStore:
    """Token ids (a memory map, or an array in memory) and the header that says what they are."""

    def __init__(self, ids: np.ndarray, header: dict, path: Path | None = None, reused: bool = False):
        self.ids, self.header, self.path, self.reused = ids, header, path, reused

    def __repr__(self) -> str:
        return f"<TokenStore {self.path or '(in memory)'} {len(self.ids):,} tokens {self.ids.dtype}>"

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "the token ids in memory"

    def segment(self, name: str) -> np.ndarray:
        start = 0
        for seg in self.header["segments"]:
            if seg["name"] == name:
                return self.ids[start : start + seg["tokens"]]
            start += seg["tokens"]
        raise KeyError(name)

    def chars(self, name: str) -> int:
        return next(s["chars"] for s in self.header["segments"] if s["name"] == name)

    @property
    def vocab(self) -> Vocab:
        return Vocab.from_json(self.header["vocab"])

    @property
    def counts(self) -> np.ndarray:
        """Token id counts of the first segment (the text the vocabulary was built from)."""
        return np.asarray(self.header["counts"], dtype=np.int64)

    # ---- finding a store that is still good --------------------------------------------------------
    @classmethod
    def find(cls, src: TextSource, key: dict, cache: Path) -> tuple[TokenStore | None, str]:
        """(the stored tokens of `src` made with `key`, "") when they are there and still good, else
        (None, why not: "" when there is none)."""
        head, data, _ = store_files(Path(cache), src, key)
        if not head.exists():
            return None, ""
        try:
            header = json.loads(head.read_text())
            ok = isinstance(header, dict) and header.get("format") == FORMAT
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            return None, f"{head} is damaged ({type(e).__name__}: not a readable JSON header)"
        if not ok:
            return None, f"{head} is damaged (not a {FORMAT} header)"
        if header.get("version") != VERSION:
            return None, f"{head} was written by another version of seqlab (format {header.get('version')})"
        try:
            dtype, n = np.dtype(header["dtype"]), int(header["tokens"])
            if header["key"] != key:
                return None, f"{head} was made with other settings"
            size = data.stat().st_size if data.exists() else -1
            if size != n * dtype.itemsize:
                what = "missing" if size < 0 else f"{size:,} bytes, not {n * dtype.itemsize:,}"
                return None, f"{data} is damaged ({what})"
            was, now = header["source"], src.identity()
        except (KeyError, TypeError, ValueError) as e:
            return None, f"{head} is damaged (no valid {e} in the header)"
        if (was["size"], was["mtime_ns"]) != (now["size"], now["mtime_ns"]):
            if was["size"] != now["size"] or was["sha256"] != src.file_sha256():
                return None, f"{src.path} changed since its tokens were stored in {data}"
            header["source"] = {**was, "mtime_ns": now["mtime_ns"]}  # touched, not changed
            try:
                _write_json(head, header)
            except OSError:  # a cache that is read-only here: the checksum is compared again next time
                pass
        ids = np.memmap(data, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype)
        return cls(ids, header, data, reused=True), ""

    # ---- making one ------------------------------------------------------------------------------
    @classmethod
    def build(cls, src: TextSource, tokens: ChunkTokens, vocab: Vocab, segments: Sequence[tuple[str, int, int | None]],
              key: dict, cache: Path | None = None, counts=None, *,
              log: Callable[[str], None] | None = None) -> TokenStore:
        """Tokenize characters [lo, hi) of `src` for each (name, lo, hi) of `segments`, in order, into one
        array: a file in `cache` (None: in memory). `key` is the recipe that `find` checks; `counts`, the
        token id counts of the first segment, goes into the header."""
        if cache is None:
            parts: list[np.ndarray] = []
            header = _tokenize(src, tokens, vocab, segments, key, counts, parts.append, log)
            dtype = np.dtype(header["dtype"])
            return cls(np.concatenate(parts) if parts else np.zeros(0, dtype), header)
        head, data, lock = store_files(_mkdir(Path(cache)), src, key)
        with _Lock(lock):
            found, _ = cls.find(src, key, cache)  # another process made it while this one waited
            if found is not None:
                return found
            tmp = data.with_name(f".{data.name}.tmp-{os.getpid()}")
            try:
                with open(tmp, "wb") as out:
                    header = _tokenize(src, tokens, vocab, segments, key, counts, out.write, log)
                head.unlink(missing_ok=True)  # never an old header beside new ids
                os.replace(tmp, data)
                _write_json(head, header)
            except OSError as e:
                raise UserError(f"cannot write the token store {data} ({e.strerror}); free some disk space or "
                                "give --cache another directory") from None
            finally:
                tmp.unlink(missing_ok=True)
        n, dtype = header["tokens"], np.dtype(header["dtype"])
        return cls(np.memmap(data, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype), header, data)


def _tokenize(src: TextSource, tokens: ChunkTokens, vocab: Vocab, segments, key: dict, counts,
              write: Callable[[np.ndarray], object], log) -> dict:
    """Tokenize the segments of `src` in order, handing each chunk's ids (of the store's dtype) to
    `write`; the header."""
    dtype = dtype_for(len(vocab))
    t0 = time.perf_counter()
    progress = Progress(f"tokenizing {src.name}", src.path.stat().st_size, log) if src.path is not None else None
    sha = hashlib.sha256() if src.path is not None and src.sha256 is None else None
    header = {"format": FORMAT, "version": VERSION, "dtype": dtype.name, "tokens": 0, "segments": [], "key": key,
              "tokenizer": tokens.tok.to_json(), "vocab": vocab.to_json(),
              "counts": None if counts is None else [int(c) for c in counts], "source": None}
    ident, blank = src.identity() if src.path is not None else None, True
    try:
        for i, (name, lo, hi) in enumerate(segments):
            n = chars = 0
            for chunk in src.chunks(lo, hi, whole_lines=tokens.kind != "char", size=tokens.chunk_chars,
                                    hasher=sha if i == 0 else None, progress=progress):
                blank = blank and chunk.isspace()
                ids = tokens.encode(chunk, vocab, dtype)
                write(ids)
                n, chars = n + len(ids), chars + len(chunk)
            header["segments"].append({"name": name, "chars": chars, "tokens": n})
            header["tokens"] += n
    finally:
        if progress is not None:
            progress.close()
    if src.path is not None:
        header["source"] = {**ident, "sha256": src.sha256 or sha.hexdigest()}
    header["blank"] = blank  # nothing but white space (a text file that is empty, for its reader)
    header["seconds"] = round(time.perf_counter() - t0, 2)
    return header


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)
