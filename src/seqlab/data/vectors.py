"""The user's own word vectors as the starting weights of a token embedding.

    vecs = read_vectors("glove.6B.100d.txt.gz", vocab)   # streams the file, keeps the vocabulary's words
    vecs.dim, vecs.coverage                              # 100, 0.71
    init_embedding(model.encoder.embedding, vecs, freeze=True)

Formats (gzip allowed, told apart by their content, `.bin` names binary):
  GloVe text          `word v1 ... vd` per line, no header
  word2vec text       a first line `count dim`, then as GloVe (fastText's `.vec` is this format)
  word2vec binary     `count dim\\n`, then per word `word ` and dim float32 (little-endian), an optional `\\n`
  a spaCy pipeline    a directory (en_core_web_md, _lg) with vocab/vectors and vocab/key2row: see
                      data/spacy_vectors.py

The file is read line by line (or record by record) and only the vectors of vocabulary tokens are
kept, so a multi-gigabyte file costs one pass and the memory of the vocabulary. A token missing
from the file takes the vector of its lower-cased form (or of a file word whose lower-cased form it
is), so cased vocabularies find uncased vectors and the other way round. A word listed twice keeps
its first vector. Tokens still not found (and the specials but PAD) keep a random start of the
found vectors' spread; PAD stays zero.

Why not gensim's KeyedVectors: it loads every vector of the file (or the first `limit`) before any
filtering, and its errors name no line; here a line of the wrong length is a `UserError` naming
the file and the line.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seqlab.data.spacy_vectors import find_vocab, read_spacy, spacy_dim
from seqlab.data.vocab import Vocab
from seqlab.errors import UserError

_NUMERIC = frozenset(b"0123456789.-+eEinfaINFAN \t\r\n")
_PEEK = 1 << 16


@dataclass
class Vectors:
    """The vectors of a file that a vocabulary needs.

    found: {vocabulary id: (dim,) float32 vector}; words: vocabulary tokens looked up (specials not
    counted); by_lower: how many of `found` came by the lower-case fallback; duplicates: words the
    file lists more than once (the first vector is kept); file_words: vectors in the file; shared: found
    words whose vector is exactly another found word's (a pruned table such as spaCy's en_core_web_md maps
    many words onto one vector, "good" and "bad" among them), with one such pair as `shared_pair`."""

    path: str
    fmt: str
    dim: int
    found: dict[int, np.ndarray] = field(default_factory=dict)
    words: int = 0
    by_lower: int = 0
    duplicates: int = 0
    file_words: int = 0
    shared: int = 0
    shared_pair: tuple[str, str] | None = None

    def count_shared(self, vocab: Vocab) -> None:
        """Set `shared` and `shared_pair` (the first two tokens, in vocabulary order, to share a vector)."""
        by_vector: dict[bytes, list[int]] = {}
        for i in sorted(self.found):
            by_vector.setdefault(self.found[i].tobytes(), []).append(i)
        groups = [g for g in by_vector.values() if len(g) > 1]
        self.shared = sum(map(len, groups))
        if groups:
            first = min(groups, key=lambda g: g[1])
            self.shared_pair = (vocab.itos[first[0]], vocab.itos[first[1]])

    @property
    def coverage(self) -> float:
        return len(self.found) / self.words if self.words else 0.0

    def summary(self, frozen: bool = False) -> str:
        lower = f", {self.by_lower} by their lower-cased form" if self.by_lower else ""
        dup = f"; {self.duplicates} words listed twice kept their first vector" if self.duplicates else ""
        shared = ""
        if self.shared:
            a, b = self.shared_pair or ("", "")
            shared = (f"; {self.shared:,} of the found words share their exact vector with another ({a!r} and {b!r} "
                      "among them): a pruned table, " + ("and frozen they stay indistinguishable (drop "
                      "--freeze-embeddings to let training part them)" if frozen else "which training parts"))
        return (f"{self.path}: {self.file_words:,} {self.fmt} vectors of {self.dim}; {self.coverage:.0%} of the "
                f"vocabulary found ({len(self.found):,} of {self.words:,}{lower}){dup}{shared}")


def _open(path: Path):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such vectors file; give a GloVe / word2vec / fastText file or a spaCy "
                        "pipeline directory to --embeddings") \
            from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the vectors file ({e.strerror})") from None
    if f.read(2) == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")
    f.seek(0)
    return f


def _header(first: bytes) -> tuple[int, int] | None:
    """(count, dim) when `first` is a word2vec header line `count dim`."""
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _sniff(path: Path) -> tuple[str, int, tuple[int, int] | None]:
    """(format, dim, header) from the file's first lines: 'glove', 'word2vec' (text) or 'word2vec-binary'."""
    with _open(path) as f:
        try:
            head = f.read(_PEEK)
        except (OSError, EOFError) as e:
            raise UserError(f"{path}: cannot read the vectors file ({e})") from None
    if not head.strip():
        raise UserError(f"{path}: the vectors file is empty")
    first, _, rest = head.partition(b"\n")
    header = _header(first)
    name = path.name.removesuffix(".gz")
    if header is None:
        dim = len(first.split()) - 1
        if dim < 1:
            raise UserError(f"{path}: line 1 holds no vector (`word v1 v2 ...`, or a word2vec header `count dim`)")
        return "glove", dim, None
    if header[1] < 1:
        raise UserError(f"{path}: line 1 says the vectors have {header[1]} dimensions; fix the header")
    second = rest.partition(b"\n")[0].split(b" ", 1)  # a text line: `word v1 ... vd`
    text = len(second) == 2 and bool(second[1].strip()) and set(second[1]) <= _NUMERIC
    binary = name.endswith(".bin") or (bool(rest.strip()) and not text)
    return ("word2vec-binary" if binary else "word2vec"), header[1], header


def vector_dim(path: str | Path) -> int:
    """The dimension of a vectors file, from its first line (or header) alone."""
    spacy = find_vocab(Path(path))
    return spacy_dim(spacy) if spacy else _sniff(Path(path))[1]


def _text_records(f, path: Path, dim: int, skip_header: bool):
    """(line number, word bytes, value fields) of each vector line; a line of the wrong length is an error."""
    origin = "the header on line 1" if skip_header else "line 1"
    for n, line in enumerate(f, 1):
        if n == 1 and skip_header:
            continue
        parts = line.split()
        if not parts:
            continue
        if len(parts) != dim + 1:
            raise UserError(f"{path}: line {n} has {len(parts) - 1} values but the file's vectors have {dim} "
                            f"(from {origin}); fix or remove that line")
        yield n, parts[0], parts[1:]


def _binary_records(f, path: Path, count: int, dim: int):
    """(record number, word bytes, raw float32 bytes) of a word2vec binary file after its header."""
    f.readline()
    size, buf, pos = 4 * dim, b"", 0
    for i in range(1, count + 1):
        while True:
            space = buf.find(b" ", pos)
            if space >= 0 and len(buf) - space - 1 >= size:
                break
            more = f.read(1 << 20)
            if not more:
                raise UserError(f"{path}: the file ends inside vector {i} of the {count} its header promises; "
                                "the file is cut short (download it again)")
            buf, pos = buf[pos:] + more, 0
        yield i, buf[pos:space].lstrip(b"\n\r"), buf[space + 1: space + 1 + size]
        pos = space + 1 + size


def read_vectors(path: str | Path, vocab: Vocab, lowercase_fallback: bool = True) -> Vectors:
    """Stream `path` and keep the vectors of `vocab`'s tokens (see the module docstring)."""
    path = Path(path)
    spacy = find_vocab(path)
    if spacy:
        return read_spacy(spacy, vocab, lowercase_fallback)
    fmt, dim, header = _sniff(path)
    wanted = {t: i for i, t in enumerate(vocab.itos) if t not in vocab.specials}
    lower_of = {t.lower() for t in wanted} if lowercase_fallback else set()
    exact: dict[str, np.ndarray] = {}
    lower: dict[str, np.ndarray] = {}
    seen: set[str] = set()
    out = Vectors(str(path), fmt, dim, words=len(wanted))
    with _open(path) as f:
        if fmt == "word2vec-binary":
            records = _binary_records(f, path, header[0], dim)
        else:
            records = _text_records(f, path, dim, header is not None)
        try:
            for n, raw, values in records:
                word = raw.decode("utf-8", errors="replace")
                out.file_words += 1
                if word in seen:
                    out.duplicates += 1
                    continue
                seen.add(word)
                key = word.lower()
                if word not in wanted and key not in lower_of:
                    continue
                vec = _parse(values, path, n, fmt)
                if word in wanted:
                    exact[word] = vec
                if key in lower_of:
                    lower.setdefault(key, vec)
        except (OSError, EOFError) as e:  # a damaged gzip stream
            raise UserError(f"{path}: cannot read the vectors file ({e}); the file is damaged") from None
    for tok, i in wanted.items():
        if tok in exact:
            out.found[i] = exact[tok]
        elif tok.lower() in lower:
            out.found[i] = lower[tok.lower()]
            out.by_lower += 1
    return out


def _parse(values, path: Path, n: int, fmt: str) -> np.ndarray:
    if fmt == "word2vec-binary":
        return np.frombuffer(values, dtype="<f4").astype(np.float32)
    try:
        vec = np.array(values, dtype=np.float32)
    except ValueError:
        bad = next(v for v in values if not _is_number(v))
        raise UserError(f"{path}: line {n} has {bad.decode('utf-8', 'replace')!r} where a number should be; "
                        "fix or remove that line") from None
    return vec


def _is_number(v: bytes) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def init_embedding(emb: torch.nn.Embedding, vecs: Vectors, freeze: bool = False, pad_id: int | None = None) -> None:
    """Copy the found vectors into `emb` (vocab, dim); the other rows start at random with the found
    vectors' spread (PAD zero). `freeze`: the embedding is not trained."""
    if emb.embedding_dim != vecs.dim:
        raise UserError(f"{vecs.path} has vectors of {vecs.dim} dimensions but the embedding has "
                        f"{emb.embedding_dim}; set --embed {vecs.dim}")
    with torch.no_grad():
        if vecs.found:
            ids = torch.tensor(sorted(vecs.found))
            mat = torch.from_numpy(np.stack([vecs.found[i] for i in ids.tolist()]))
            std = float(mat.std()) if mat.numel() > 1 else 1.0
            emb.weight.normal_(0.0, std or 1.0)
            emb.weight[ids] = mat.to(emb.weight.dtype)
        pad = emb.padding_idx if pad_id is None else pad_id
        if pad is not None:
            emb.weight[pad].zero_()
    emb.weight.requires_grad_(not freeze)


def load_vectors(emb: torch.nn.Embedding, vocab: Vocab, path: str | Path, freeze: bool = False,
                 lowercase_fallback: bool = True) -> Vectors:
    """`read_vectors` + `init_embedding`: what `--embeddings FILE` does to a model's embedding."""
    vecs = read_vectors(path, vocab, lowercase_fallback)
    vecs.count_shared(vocab)
    init_embedding(emb, vecs, freeze)
    return vecs
