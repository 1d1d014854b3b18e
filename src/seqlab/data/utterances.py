"""Which recordings say what: a `path,transcript` CSV, or labels parsed from file names, and the splits.

    utts = from_names("fsdd/recordings", "{label}_{speaker}_{index}")   # 7_jackson_3.wav -> "7", fields
    utts = read_manifest("train.csv")         # path,transcript[,speaker]; paths relative to the CSV's folder
    train, test = split(utts, where="index<5")            # the FSDD official split
    train, test = split(utts, speaker="nicolas")          # a speaker the model never hears

`where` compares one field with a value: `index<5`, `speaker==george`, `index>=45`, `label!=0`;
numbers compare as numbers, anything else as text. Transcripts are normalised by `normalise_text`
(lower case, single spaces, digits spelled as words with `spell_digits`), references and training
targets alike.
"""

from __future__ import annotations

import csv
import io
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

from seqlab.data.readers import _delimiter, read_table, read_text
from seqlab.errors import UserError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass
class Utterance:
    """One recording: its file, what is said in it, and the named fields of its file name / CSV row."""

    path: Path
    transcript: str
    fields: dict[str, str] = field(default_factory=dict)
    where: str = ""  # for messages: "train.csv line 4" or the file name


def normalise_text(text: str, lowercase: bool = True, spell_digits: bool = False) -> str:
    """The transcript as the model spells it: single spaces, lower case, and with `spell_digits` each
    digit a word ("7" -> "seven", "42" -> "four two")."""
    if spell_digits:
        text = re.sub(r"\d", lambda m: f" {DIGITS[int(m.group())]} ", text)
    text = " ".join(text.split())
    return text.lower() if lowercase else text


def name_pattern(pattern: str) -> re.Pattern:
    """'{label}_{speaker}_{index}' -> a regex with one named group per field, matched against file stems;
    a field {label} (or {transcript}) must be among them."""
    names = re.findall(r"{(\w*)}", pattern)
    if not names or any(not n.isidentifier() for n in names):
        raise UserError(f"--label-from-name {pattern!r}: name each part in braces, e.g. '{{label}}_{{speaker}}_"
                        "{index}'")
    if len(set(names)) != len(names):
        raise UserError(f"--label-from-name {pattern!r}: a field appears twice")
    if not {"label", "transcript"} & set(names):
        raise UserError(f"--label-from-name {pattern!r} has no {{label}} field; which part of the name is said?")
    parts = re.split(r"{\w*}", pattern)
    rx = "".join(re.escape(p) + (f"(?P<{n}>.+?)" if i < len(names) else "") for i, (p, n) in
                 enumerate(zip(parts, [*names, ""])))
    return re.compile(rx + r"\Z")


def from_names(folder: str | Path, pattern: str) -> list[Utterance]:
    """Every audio file in `folder` (not recursive), labelled by its name under `pattern`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder; give the folder of the recordings")
    rx = name_pattern(pattern)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"{folder}: no .wav files in it")
    out = []
    for p in files:
        m = rx.match(p.stem)
        if not m:
            raise UserError(f"{p}: the name does not match --label-from-name {pattern!r}; rename it, or move it out")
        f = m.groupdict()
        out.append(Utterance(p, f.get("label", f.get("transcript", "")), f, p.name))
    return out


def read_manifest(path: str | Path, path_col: str = "path", text_col: str = "transcript",
                  delimiter: str | None = None, encoding: str = "utf-8", need_text: bool = True) -> list[Utterance]:
    """The rows of a CSV/TSV of audio paths (absolute, or relative to the CSV's folder) and transcripts;
    a `speaker` column, when present, becomes a field (for `split(speaker=...)`)."""
    path = Path(path)
    header = [h.strip() for h in _first_row(path, delimiter, encoding)]
    for col in (path_col, text_col) if need_text else (path_col,):
        if col not in header:
            raise UserError(f"{path}: no column named {col!r} (the columns are {header}); a speech CSV has "
                            f"'{path_col},{text_col}' columns (--path-col, --transcript-col)")
    extra = [c for c in header if c not in (path_col, text_col) and c]
    cols = [path_col] + ([text_col] if text_col in header else []) + extra
    table = read_table(path, cols, delimiter, True, encoding)
    out = []
    for row, line in zip(table.rows, table.lines):
        audio = Path(row[0]).expanduser()
        audio = audio if audio.is_absolute() else path.parent / audio
        where = f"{path} line {line}"
        if not row[0]:
            raise UserError(f"{where}: the path is empty; fill it or remove the row")
        if not audio.is_file():
            raise UserError(f"{where}: no such audio file {audio} (relative paths start at the CSV's folder, "
                            f"{path.parent}); fix the path")
        text = row[1] if text_col in header else ""
        if need_text and not text:
            raise UserError(f"{where}: the transcript is empty; fill it or remove the row")
        out.append(Utterance(audio, text, dict(zip(extra, row[len(cols) - len(extra):])), where))
    return out


def _first_row(path: Path, delimiter, encoding) -> list[str]:
    first = read_text(path, encoding).split("\n", 1)[0]
    return next(csv.reader(io.StringIO(first), delimiter=_delimiter(path, first, delimiter)))


def list_utterances(source: str | Path, label_from_name: str | None = None, path_col: str = "path",
                    text_col: str = "transcript", need_text: bool = True) -> list[Utterance]:
    """A folder (with `label_from_name`), a single audio file, or a CSV/TSV manifest."""
    p = Path(source)
    if p.is_dir():
        if not label_from_name:
            if need_text:
                raise UserError(f"{p} is a folder; say how its file names give the transcript with "
                                "--label-from-name (e.g. '{label}_{speaker}_{index}'), or give a path,transcript CSV")
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
            if not files:
                raise UserError(f"{p}: no .wav files in it")
            return [Utterance(f, "", {}, f.name) for f in files]
        return from_names(p, label_from_name)
    if p.suffix.lower() in AUDIO_SUFFIXES:
        if need_text:
            raise UserError(f"{p} is one recording; give a folder with --label-from-name, or a path,transcript CSV")
        return [Utterance(p, "", {}, p.name)]
    return read_manifest(p, path_col, text_col, need_text=need_text)


_OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
        ">": operator.gt, "=": operator.eq}


def parse_where(expr: str):
    """'index<5' -> (field, predicate on a field's text)."""
    m = re.fullmatch(r"\s*(\w+)\s*(<=|>=|==|!=|<|>|=)\s*(.*?)\s*", expr or "")
    if not m or not m.group(3):
        raise UserError(f"--test-where {expr!r}: write FIELD OP VALUE, e.g. 'index<5' or 'speaker==george' "
                        "(OP one of < <= > >= == !=)")
    name, op, value = m.group(1), _OPS[m.group(2)], m.group(3).strip("'\"")

    def pred(text: str) -> bool:
        try:
            return op(float(text), float(value))
        except ValueError:
            return op(text, value)

    return name, pred


def select(utts: list[Utterance], where: str | None = None, speaker: str | None = None) -> list[bool]:
    """Which utterances match `where` and/or are said by `speaker` (a mask in the order of `utts`)."""
    mask = [True] * len(utts)
    for kind, expr in (("where", where), ("speaker", speaker)):
        if not expr:
            continue
        name, pred = parse_where(expr) if kind == "where" else ("speaker", lambda t, s=expr: t == s)
        missing = next((u for u in utts if name not in u.fields), None)
        if missing is not None:
            known = ", ".join(sorted(missing.fields)) or "none"
            raise UserError(f"{missing.where} has no field {name!r} (its fields: {known}); name it in "
                            "--label-from-name or add a column to the CSV")
        mask = [m and pred(u.fields[name]) for m, u in zip(mask, utts)]
    return mask


def split(utts: list[Utterance], where: str | None = None, speaker: str | None = None):
    """(rest, test): the utterances matching `where` / `speaker` are the test set."""
    mask = select(utts, where, speaker)
    test = [u for u, m in zip(utts, mask) if m]
    rest = [u for u, m in zip(utts, mask) if not m]
    what = " and ".join(x for x in (where and f"--test-where {where!r}", speaker and f"--test-speaker {speaker!r}")
                        if x)
    if not test:
        raise UserError(f"{what} selects no recording; check the field and value")
    if not rest:
        raise UserError(f"{what} selects every recording; nothing is left to train on")
    return rest, test


def copy_examples(items: list, folder: str | Path, n: int = 8) -> list[Path]:
    """Copy up to `n` of the audio files among `items` (spread over the list), each at most 1 MB, into
    `folder` under their own names (atomically); (wave, rate) items are skipped."""
    from seqlab.pipelines.base import write_bytes_atomic

    paths = [Path(p) for p in items if isinstance(p, (str, Path))]
    picked = paths[:: max(1, len(paths) // n)][:n]
    out = []
    for p in picked:
        if p.is_file() and p.stat().st_size <= 1_000_000:
            out.append(Path(folder) / p.name)
            write_bytes_atomic(out[-1], p.read_bytes())
    return out
