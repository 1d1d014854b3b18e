"""Readers for the user's files: CSV/TSV tables with chosen columns, and plain text.

Every problem a user can fix is raised as a `UserError` naming the file, the line and the fix:
a missing or empty file, bytes that are not in the stated encoding, a missing column, a row
with the wrong number of fields. Files ending in `.gz` are decompressed transparently.

Lines are split on '\\n' only (never on U+0085 or other Unicode line breaks that
`str.splitlines` honours), so a stray NEL character inside a sentence does not make two rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path

from seqlab.errors import UserError

csv.field_size_limit(1 << 24)


def _read_regular(path: Path) -> bytes:
    """The bytes of `path`, refusing anything that is not a regular file (a FIFO, socket or
    device would block or stream forever) before reading it."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of hanging
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory; give a file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot open it ({e.strerror}); check the path and its permissions") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UserError(f"{path} is a directory; give a file")
        if not stat.S_ISREG(mode):
            raise UserError(f"{path} is not a regular file (a pipe, socket or device); save the data to a file "
                            "and give that")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read()
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror}); check the file") from None
    finally:
        if fd >= 0:
            os.close(fd)


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The whole file as one string, with '\\r\\n' turned into '\\n'."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file")
    if path.exists() and not path.is_file():  # checked before opening: a FIFO must not block us
        raise UserError(f"{path} is not a regular file (a pipe, socket or device); save the data to a file "
                        "and give that")
    raw = _read_regular(path)
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            why = "it is truncated" if isinstance(e, EOFError) else " ".join(str(e).split())[:120]
            raise UserError(f"{path} is not a valid gzip file ({why}); re-download or re-compress it, "
                            "or drop the .gz suffix if it is plain text") from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        bad = raw[e.start : e.start + 1].hex()
        raise UserError(
            f"{path}: line {line} is not valid {encoding} (byte 0x{bad}); "
            f"pass --encoding with the file's real encoding (for example latin-1)"
        ) from None
    except LookupError:
        raise UserError(f"unknown encoding {encoding!r}; use a Python codec name") from None
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    if not text.strip():
        raise UserError(f"{path}: the file is empty; give a file with data")
    return text


def read_lines(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """Non-blank lines of a plain-text file, one example per line, surrounding spaces stripped."""
    return [s.strip() for s in read_text(path, encoding).split("\n") if s.strip()]


@dataclass
class Table:
    """Selected columns of a CSV/TSV file.

    rows[i] holds the chosen columns of the i-th data row, in the order asked for;
    lines[i] is that row's line number in the file (1-based), for error messages.
    """

    path: Path
    columns: list[str]
    rows: list[tuple[str, ...]]
    lines: list[int]

    def column(self, j: int) -> list[str]:
        return [r[j] for r in self.rows]


def _delimiter(path: Path, first_line: str, delimiter: str | None) -> str:
    if delimiter:
        return "\t" if delimiter in ("\\t", "tab") else delimiter
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        return ","
    if name.endswith(".tsv") or "\t" in first_line:
        return "\t"
    return ","


def _resolve(col: str | int, header: list[str] | None, width: int, path: Path) -> int:
    if isinstance(col, str) and col.lstrip("-").isdigit():
        col = int(col)
    if isinstance(col, int):
        idx = col if col >= 0 else width + col
        if not 0 <= idx < width:
            raise UserError(f"{path}: column index {col} is out of range; the file has {width} columns")
        return idx
    if header is None:
        raise UserError(f"{path}: column {col!r} asked by name but the file has no header; give its index")
    if col not in header:
        have = ", ".join(repr(h) for h in header)
        raise UserError(f"{path}: no column named {col!r}; the columns are {have}")
    return header.index(col)


def _quote_opened(lines: list[str], start: int, end: int) -> int:
    """The line (1-based) in lines start..end where the quote still open at `end` was opened: the last
    line after which an odd number of quote characters had been read (a doubled "" counts twice)."""
    opened, n = start, 0
    for no in range(start, min(end, len(lines)) + 1):
        before = n % 2
        n += lines[no - 1].count('"')
        if before == 0 and n % 2 == 1:
            opened = no
    return opened


def read_table(
    path: str | Path,
    columns: list[str | int],
    delimiter: str | None = None,
    header: bool = True,
    encoding: str = "utf-8",
) -> Table:
    """Read the chosen `columns` (names, or 0-based indices; negative counts from the end).

    The delimiter is ',' for .csv, TAB for .tsv or when the first line holds a tab. CSV files
    use standard quoting; TSV files are read without quote processing, as TSV data usually
    contains bare quote characters.
    """
    path = Path(path)
    text = read_text(path, encoding)
    first = text.split("\n", 1)[0]
    delim = _delimiter(path, first, delimiter)
    quoting = csv.QUOTE_NONE if delim == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, quoting=quoting, strict=True)
    head: list[str | None] = [None]  # set by _records once it has read the first row
    rows: list[tuple[str, ...]] = []
    lines: list[int] = []
    idx: list[int] = []
    start = [1]  # the line the record being read begins on
    try:
        for rec, line in _records(reader, path, columns, header, delim, start, head, idx):
            rows.append(rec)
            lines.append(line)
    except csv.Error as e:
        start, head = start[0], head[0]
        end = max(reader.line_num, start)
        if end > start or "unexpected end of data" in str(e):  # a quoted field ran on past its line
            opened = _quote_opened(text.split("\n"), start, end)
            until = "the end of the file" if "unexpected end of data" in str(e) else f"line {end}"
            raise UserError(f"{path}: line {opened} opens a quoted field that is not closed on that line; it runs "
                            f"on to {until} ({e}); close the quote on line {opened}, or double a quote meant "
                            f"literally (\"\")") from None
        raise UserError(f"{path}: line {end} is not valid CSV ({e}); fix that line") from None
    if not rows:
        raise UserError(f"{path}: the file has a header but no data rows; give a file with data")
    names = [head[0][i] if head[0] else str(i) for i in idx]
    return Table(path, names, rows, lines)


def _records(reader, path: Path, columns: list, header: bool, delim: str, start: list, head: list, idx: list):
    """(chosen fields, line number) of each data row of a csv `reader`; the shared loop of `read_table`
    and `iter_table`. Fills `head[0]` (the header or None) and `idx` (the chosen column indices); keeps
    `start[0]` at the line the record being read begins on (for the message of a quote left open)."""
    width = None
    while True:
        start[0] = reader.line_num + 1
        rec = next(reader, None)
        if rec is None:
            return
        if not rec or (len(rec) == 1 and not rec[0].strip()):
            continue
        if width is None:
            width = len(rec)
            head[0] = [h.strip() for h in rec] if header else None
            idx[:] = [_resolve(c, head[0], width, path) for c in columns]
            if header:
                continue
        if len(rec) != width:
            raise UserError(
                f"{path}: line {reader.line_num} has {len(rec)} fields but the first row has "
                f"{width}; fix that line (quote fields that contain {delim!r})"
            )
        yield tuple(rec[i].strip() for i in idx), reader.line_num


def _stream_lines(f):
    """The lines of text file `f` as `read_text` would give them: BOM dropped, '\\r\\n' turned into '\\n'."""
    for no, line in enumerate(f):
        if no == 0:
            line = line.lstrip("\ufeff")
        yield line[:-2] + "\n" if line.endswith("\r\n") else line


def iter_table(path: str | Path, columns: list[str | int], delimiter: str | None = None, header: bool = True,
               encoding: str = "utf-8", chunk_rows: int = 50_000):
    """`read_table` in chunks, never the whole file in memory: yields (rows, lines) lists of up to
    `chunk_rows` data rows. The same rows and the same errors: on any problem the file is read again
    by `read_table`, which raises its one-line message (naming the line)."""
    path = Path(path)
    if not path.is_file():
        read_table(path, columns, delimiter, header, encoding)  # raises: missing, a directory, a FIFO
    n = 0
    try:
        with open(path, "rb") as raw, (gzip.open(raw) if path.suffix == ".gz" else raw) as binary, \
                io.TextIOWrapper(binary, encoding, newline="") as f:
            lines_in = _stream_lines(f)
            peek = next(lines_in, "")
            delim = _delimiter(path, peek.split("\n", 1)[0], delimiter)
            quoting = csv.QUOTE_NONE if delim == "\t" else csv.QUOTE_MINIMAL
            reader = csv.reader(itertools.chain([peek], lines_in), delimiter=delim, quoting=quoting, strict=True)
            rows: list[tuple[str, ...]] = []
            lines: list[int] = []
            for rec, line in _records(reader, path, columns, header, delim, [1], [None], []):
                rows.append(rec)
                lines.append(line)
                if len(rows) == chunk_rows:
                    n += len(rows)
                    yield rows, lines
                    rows, lines = [], []
            n += len(rows)
            if rows:
                yield rows, lines
    except (csv.Error, UnicodeDecodeError, LookupError, OSError, EOFError, zlib.error):
        n = 0
    if not n:
        read_table(path, columns, delimiter, header, encoding)  # raises the message of what is wrong
        raise UserError(f"{path}: cannot read it as a table; check the file")
