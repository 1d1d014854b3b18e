"""A text read as a stream of decoded chunks, never as one string: what a corpus larger than memory needs.

    src = TextSource.open("big.txt")              # or TextSource.of_string(text, "the text")
    n = src.scan()                                # characters (as read_text counts them) + the file's sha256
    for chunk in src.chunks(0, n // 2):           # characters [0, n/2) in ~8 MB pieces ending at newlines
        ...

The characters are those `readers.read_text` returns for the same file: a leading BOM dropped and
'\\r\\n' read as '\\n' (a '\\r' at the end of a block waits for the next one), '.gz' decompressed on the
fly, a byte that is not in the encoding a `UserError` naming the line. Chunks end just after a newline
where the text has one within the chunk size, so a line (and a word) is never split between chunks
unless it is longer than a chunk (`whole_lines` keeps such a line whole instead).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import os
import stat
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from seqlab.errors import UserError

CHUNK_CHARS = 8 << 20  # characters per chunk (about 8 MB of ASCII text)
_BLOCK = 4 << 20  # bytes read at a time


class TextSource:
    """A text file (or a string of text) that can be read in character ranges, in chunks."""

    def __init__(self, name: str, path: Path | None = None, text: str | None = None, encoding: str = "utf-8"):
        self.name, self.path, self._text, self.encoding = name, path, text, encoding
        self.chars: int | None = len(text) if text is not None else None
        self.sha256: str | None = None

    @classmethod
    def open(cls, path: str | os.PathLike, encoding: str = "utf-8") -> TextSource:
        path = Path(path)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise UserError(f"{path}: no such file; check the path") from None
        except OSError as e:
            raise UserError(f"{path}: cannot open it ({e.strerror}); check the path and its permissions") from None
        if stat.S_ISDIR(mode):
            raise UserError(f"{path} is a directory; give a file")
        if not stat.S_ISREG(mode):
            raise UserError(f"{path} is not a regular file (a pipe, socket or device); save the data to a file "
                            "and give that")
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UserError(f"unknown encoding {encoding!r}; use a Python codec name") from None
        return cls(str(path), path, None, encoding)

    @classmethod
    def of_string(cls, text: str, name: str = "the text") -> TextSource:
        return cls(name, None, text)

    def identity(self) -> dict:
        """What says the file is unchanged without reading it: resolved path, size, mtime (ns)."""
        st = self.path.stat()
        return {"path": str(self.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def scan(self, progress: Callable[[int], None] | None = None) -> int:
        """Read the whole text once: count its characters (`chars`) and hash the file (`sha256`);
        an empty (all-whitespace) text is a UserError, as `read_text` has it."""
        if self.path is None:
            blank = not self._text.strip()
        else:
            h, n, blank = hashlib.sha256(), 0, True
            for piece in self._pieces(h, progress):
                n += len(piece)
                blank = blank and not piece.strip()
            self.chars, self.sha256 = n, h.hexdigest()
        if blank:
            raise UserError(f"{self.name}: the file is empty; give a file with data" if self.path else
                            f"{self.name} is empty; give some text")
        return self.chars

    def file_sha256(self) -> str:
        """sha256 of the bytes `scan` hashes (a .gz file's decompressed bytes)."""
        h = hashlib.sha256()
        raw, f = self._raw()
        try:
            while block := f.read(_BLOCK):
                h.update(block)
        except (OSError, EOFError, zlib.error):
            return ""  # unreadable: not the file that was stored
        finally:
            f.close()
            raw.close()
        return h.hexdigest()

    # ---- reading -----------------------------------------------------------------------------
    def _raw(self):
        f = open(self.path, "rb")  # noqa: SIM115 (closed by the caller)
        return f, (gzip.GzipFile(fileobj=f) if self.path.suffix == ".gz" else f)

    def _pieces(self, hasher=None, progress: Callable[[int], None] | None = None) -> Iterator[str]:
        """The decoded, normalised text of the file in pieces of any length (not yet cut at newlines)."""
        raw, f = self._raw()
        dec = codecs.getincrementaldecoder(self.encoding)("strict")
        start, carry_cr, lines = True, False, 0
        try:
            while True:
                try:
                    block = f.read(_BLOCK)
                except (OSError, EOFError, zlib.error) as e:
                    why = "it is truncated" if isinstance(e, EOFError) else " ".join(str(e).split())[:120]
                    raise UserError(f"{self.path} is not a valid gzip file ({why}); re-download or re-compress "
                                    "it, or drop the .gz suffix if it is plain text") from None
                if hasher is not None:
                    hasher.update(block)
                try:
                    text = dec.decode(block, final=not block)
                except UnicodeDecodeError as e:
                    line = lines + block[: max(0, e.start)].count(b"\n") + 1
                    bad = e.object[e.start : e.start + 1].hex()
                    raise UserError(f"{self.path}: line {line} is not valid {self.encoding} (byte 0x{bad}); "
                                    "pass --encoding with the file's real encoding (for example latin-1)") from None
                lines += block.count(b"\n")
                if progress is not None:
                    progress(raw.tell())
                if carry_cr:
                    text, carry_cr = "\r" + text, False
                if block and text.endswith("\r"):
                    text, carry_cr = text[:-1], True
                if start and text:
                    text = text.lstrip("\ufeff")
                    start = not text
                if text:
                    yield text.replace("\r\n", "\n")
                if not block:
                    break
        finally:
            f.close()
            raw.close()

    def _clipped(self, lo: int, hi: int | None, hasher, progress) -> Iterator[str]:
        """Characters [lo, hi) in pieces of any length (the whole file is read when `hasher` is given)."""
        if self.path is None:
            yield self._text[lo:hi]
            return
        pos = 0
        for piece in self._pieces(hasher, progress):
            end = pos + len(piece)
            a, b = max(lo, pos) - pos, (end if hi is None else min(hi, end)) - pos
            if b > a:
                yield piece if (a, b) == (0, len(piece)) else piece[a:b]
            pos = end
            if hi is not None and pos >= hi and hasher is None:
                break

    def chunks(self, lo: int = 0, hi: int | None = None, *, whole_lines: bool = True, size: int = CHUNK_CHARS,
               hasher=None, progress: Callable[[int], None] | None = None) -> Iterator[str]:
        """Characters [lo, hi) of the text in chunks of about `size`, each ending just after a newline
        where there is one; with `whole_lines` a chunk never ends inside a line (but at `hi`)."""
        buf = ""
        for part in self._clipped(lo, hi, hasher, progress):
            buf = buf + part if buf else part
            while len(buf) >= size:
                cut = buf.rfind("\n", 0, size) + 1
                if not cut:  # a line longer than a chunk
                    cut = buf.find("\n", size) + 1 if whole_lines else size
                    if not cut:
                        break  # read on to the end of the line
                yield buf[:cut]
                buf = buf[cut:]
        if buf:
            yield buf

    def lines(self, lo: int = 0, hi: int | None = None) -> Iterator[str]:
        """The lines of characters [lo, hi), as `text[lo:hi].split("\\n")` would give them."""
        tail = ""
        for chunk in self.chunks(lo, hi):
            parts = (tail + chunk).split("\n")
            tail = parts.pop()
            yield from parts
        yield tail


class Progress:
    """Progress of a long pass over a file: a tqdm bar on a terminal, else a `log` line every `every` seconds."""

    def __init__(self, what: str, total: int, log: Callable[[str], None] | None = None, every: float = 30.0):
        self.what, self.total, self.log, self.every = what, total, log, every
        self.t0 = self.t_last = time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=what, unit="B", unit_scale=True, leave=False, dynamic_ncols=True)
        self.done = 0

    def __call__(self, done: int) -> None:
        done = max(done, self.done)  # a second pass over the file (the held-out part) does not go back
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done
        now = time.perf_counter()
        if self.bar is None and self.log is not None and now - self.t_last >= self.every:
            self.t_last = now
            rate = done / max(now - self.t0, 1e-9) / 1e6
            self.log(f"{self.what}: {done / max(self.total, 1):.0%} ({done / 1e6:,.0f} of {self.total / 1e6:,.0f} MB, "
                     f"{rate:.0f} MB/s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
