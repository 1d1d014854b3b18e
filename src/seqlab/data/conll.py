"""CoNLL and CoNLL-U readers, and the entity tag schemes (BIO, IOB1, BIOES).

CoNLL ("conll"): one token per line, columns separated by spaces or tabs, a blank line between
sentences, `-DOCSTART-` lines between documents (skipped), e.g. CoNLL-2003's `word POS chunk NER`:

    EU NNP B-NP B-ORG
    rejects VBZ B-VP O

CoNLL-U ("conllu"): 10 tab-separated columns `ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC`,
`#` comment lines; multiword-token lines (ID `3-4`) and empty nodes (ID `5.1`) are skipped, so
the tokens are the syntactic words. Columns are chosen by 0-based index (negative counts from the
end) or, for CoNLL-U, by name (form, upos, xpos, ...).

Entity schemes. An entity ("chunk") is a typed span of tokens:
  bio   (IOB2)  B-X starts every entity, I-X continues it, O is outside
  iob1          I-X starts an entity too; B-X only starts one right after an entity of type X
  bioes         B-X begin, I-X inside, E-X end, S-X single-token entity, O outside
  none          plain tags (POS): no entities, scored by token accuracy
`spans` reads all three the way CoNLL's conlleval script does (an I-X after O or after another
type starts an entity), so `to_scheme(tags, s)` converts between them without losing entities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from seqlab.data.readers import read_text
from seqlab.errors import UserError

FORMATS = ("auto", "conll", "conllu")
SCHEMES = ("auto", "bio", "iob1", "bioes", "none")
ENTITY_SCHEMES = ("bio", "iob1", "bioes")
DOCSTART = "-DOCSTART-"
CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
DEFAULT_COLUMNS = {"conll": ("0", "-1"), "conllu": ("form", "upos")}  # (word, tag)
_PREFIXES = {"bio": "BI", "iob1": "BI", "bioes": "BIES"}
_TAG = re.compile(r"^([BIES])-(.+)$")


@dataclass
class TaggedCorpus:
    """Sentences of a CoNLL(-U) file.

    words[i] are the tokens of sentence i; tags[i] their tags (None when the tags were not read);
    lines[i][j] is the file line (1-based) of token j of sentence i, for error messages.
    """

    path: Path
    words: list[list[str]]
    tags: list[list[str]] | None
    lines: list[list[int]]
    docs: int = 0

    def __len__(self) -> int:
        return len(self.words)

    @property
    def tokens(self) -> int:
        return sum(len(w) for w in self.words)


def detect_format(path: str | Path, fmt: str = "auto") -> str:
    """'conllu' for *.conllu(.gz) files when `fmt` is 'auto', else 'conll'; checks the name."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt != "auto":
        return fmt
    return "conllu" if Path(path).name.removesuffix(".gz").endswith(".conllu") else "conll"


def _column(col: str | int, fmt: str, width: int, path: Path, what: str) -> int:
    s = str(col).strip().lower()
    if s.lstrip("-").isdigit():
        idx = int(s) if int(s) >= 0 else width + int(s)
        if not 0 <= idx < width:
            raise UserError(f"{path}: {what} column {col} is out of range; the file has {width} columns")
        return idx
    if fmt == "conllu" and s in CONLLU_COLUMNS:
        return CONLLU_COLUMNS.index(s)
    names = f"a 0-based index or one of {', '.join(CONLLU_COLUMNS)}" if fmt == "conllu" else "a 0-based index"
    raise UserError(f"{path}: bad {what} column {col!r}; give {names}")


def read_conll(
    path: str | Path,
    word_col: str | int | None = None,
    tag_col: str | int | None = None,
    fmt: str = "auto",
    encoding: str = "utf-8",
    with_tags: bool = True,
) -> TaggedCorpus:
    """Read the sentences of a CoNLL or CoNLL-U file (optionally .gz).

    word_col / tag_col default to 0 / -1 (CoNLL) or form / upos (CoNLL-U). Every token line must
    have as many columns as the first one; with `with_tags=False` only the word column is read.
    """
    path = Path(path)
    fmt = detect_format(path, fmt)
    word_col = DEFAULT_COLUMNS[fmt][0] if word_col is None else word_col
    tag_col = DEFAULT_COLUMNS[fmt][1] if tag_col is None else tag_col
    text = read_text(path, encoding)
    words: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[list[int]] = []
    cur_w: list[str] = []
    cur_t: list[str] = []
    cur_l: list[int] = []
    width = first = wi = ti = None
    docs = 0

    def flush():
        if cur_w:
            words.append(list(cur_w))
            tags.append(list(cur_t))
            lines.append(list(cur_l))
            cur_w.clear()
            cur_t.clear()
            cur_l.clear()

    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            flush()
            continue
        if fmt == "conllu":
            if line.startswith("#"):
                docs += line.startswith("# newdoc")
                continue
            cols = raw.rstrip("\r\n").split("\t")
            if len(cols) != 10:
                raise UserError(f"{path}: line {n} has {len(cols)} tab-separated columns; CoNLL-U needs 10 "
                                "(ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC); fix that line")
            if "-" in cols[0] or "." in cols[0]:  # multiword token or empty node
                continue
        else:
            cols = line.split()
            if cols[0] == DOCSTART:
                flush()
                docs += 1
                continue
        if width is None:
            width, first = len(cols), n
            wi = _column(word_col, fmt, width, path, "word")
            ti = _column(tag_col, fmt, width, path, "tag") if with_tags else None
        elif len(cols) != width:
            raise UserError(f"{path}: line {n} has {len(cols)} columns but line {first} has {width}; "
                            "every token line needs the same columns, with a blank line between sentences")
        cur_w.append(cols[wi])
        cur_t.append(cols[ti] if ti is not None else "")
        cur_l.append(n)
    flush()
    if not words:
        raise UserError(f"{path}: no sentences found (only blank, comment or {DOCSTART} lines); give one token "
                        "per line with a blank line between sentences")
    return TaggedCorpus(path, words, tags if with_tags else None, lines, docs)


# ---- tag schemes --------------------------------------------------------------------------------
def split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', ''); anything else -> ('', tag)."""
    if tag == "O":
        return "O", ""
    m = _TAG.match(tag)
    return (m.group(1), m.group(2)) if m else ("", tag)


def spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """The entities of one sentence as (type, start, end) with `end` exclusive.

    Read as conlleval reads them: B-X (and S-X) always start an entity; I-X (or E-X) starts one
    after O, after another type, or after the end of an entity (E-/S-); E-X and S-X end one. So
    BIO, IOB1 and BIOES tags of the same entities give the same spans. Tags that are not entity
    tags count as O.
    """
    out = []
    start, typ, prev = None, "", "O"
    for i, tag in enumerate(tags):
        p, t = split_tag(tag)
        if p not in "BIES" or not p:
            p, t = "O", ""
        begins = p in "BS" or (p in "IE" and (prev in "OES" or t != typ))
        if start is not None and (begins or p == "O"):
            out.append((typ, start, i))
            start = None
        if begins:
            start, typ = i, t
        if start is not None and p in "ES":
            out.append((typ, start, i + 1))
            start = None
        prev = p
    if start is not None:
        out.append((typ, start, len(tags)))
    return out


def from_spans(found: list[tuple[str, int, int]], n: int, scheme: str) -> list[str]:
    """Render entity spans as `n` tags in scheme 'bio', 'iob1' or 'bioes'."""
    tags = ["O"] * n
    last_end, last_typ = -1, ""
    for typ, s, e in found:
        if scheme == "bioes" and e - s == 1:
            tags[s] = f"S-{typ}"
            continue
        for i in range(s, e):
            tags[i] = f"I-{typ}"
        if scheme == "bio" or scheme == "bioes" or (last_end == s and last_typ == typ):
            tags[s] = f"B-{typ}"
        if scheme == "bioes":
            tags[e - 1] = f"E-{typ}"
        last_end, last_typ = e, typ
    return tags


def to_scheme(tags: list[str], scheme: str) -> list[str]:
    """Convert one sentence's entity tags to `scheme` ('none' leaves them as they are)."""
    if scheme == "none":
        return list(tags)
    return from_spans(spans(tags), len(tags), scheme)


def detect_scheme(tag_lists: list[list[str]]) -> str:
    """'bioes' if the tags are entity tags with some E-/S-, 'bio' if only B-/I-/O, else 'none'."""
    prefixes = {split_tag(t)[0] for tags in tag_lists for t in tags}
    if "" in prefixes or prefixes <= {"O"}:
        return "none"
    return "bioes" if prefixes & {"E", "S"} else "bio"


def check_scheme(corpus: TaggedCorpus, scheme: str) -> str:
    """Resolve 'auto' and check every tag fits the scheme; returns the scheme.

    Raises UserError for an unknown scheme name, or naming the first tag (file and line) that is
    not a tag of the scheme.
    """
    if scheme not in SCHEMES:
        raise UserError(f"unknown tag scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if scheme == "auto":
        return detect_scheme(corpus.tags)
    if scheme == "none":
        return scheme
    allowed = _PREFIXES[scheme]
    for tags, lines in zip(corpus.tags, corpus.lines):
        for tag, line in zip(tags, lines):
            p, t = split_tag(tag)
            if p != "O" and (p == "" or p not in allowed or not t):
                shown = ", ".join(f"{x}-TYPE" for x in allowed)
                raise UserError(f"{corpus.path}: line {line}: tag {tag!r} is not a {scheme.upper()} tag "
                                f"(O, {shown}); fix it, or pass --scheme none to learn the tags as plain labels")
    return scheme
