"""Word vectors from a spaCy pipeline's directory: `--embeddings path/to/en_core_web_md`.

spaCy's medium and large English pipelines carry static vectors (en_core_web_md: 20,000 vectors of 300
for 684,830 words, trained by Explosion on OSCAR, Wikipedia, OpenSubtitles and WMT News Crawl; CC0),
the nearest thing to GloVe that installs with pip. A pipeline stores them in `vocab/`:

    vocab/vectors       a .npy array (rows, dim) float32
    vocab/key2row       a msgpack map {64-bit word hash: row}; many rare words share a row
    vocab/vectors.cfg   {"mode": "default"} (floret's hashed subword vectors are another mode: refused)

A word's key is spaCy's `hash_string`: MurmurHash64A of its UTF-8 bytes with seed 1, so only the
vocabulary's tokens are hashed and looked up, and neither spaCy nor its 700k-entry string table is
read. The path may be the pipeline directory (the one holding `config.cfg` and `vocab/`), its `vocab/`
folder, or an installed package directory holding one pipeline (`site-packages/en_core_web_md`).

    find_vocab(path)              the vocab/ directory, or None when `path` is no spaCy directory
    hash_string(word)             spaCy's 64-bit key of a word (hash_string("apple") == 8566208034543834098)
    read_spacy(vocab_dir, vocab)  a `Vectors` with the vocabulary's vectors (see data/vectors.py)
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from seqlab.data.vocab import Vocab
from seqlab.errors import UserError

_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1


def hash_string(word: str, seed: int = 1) -> int:
    """MurmurHash64A (Austin Appleby) of the UTF-8 bytes: the key spaCy stores for `word`."""
    data = word.encode("utf-8")
    n = len(data)
    h = (seed ^ (n * _M)) & _MASK
    body = n - n % 8
    for (k,) in struct.iter_unpack("<Q", data[:body]):
        k = (k * _M) & _MASK
        k ^= k >> 47
        h ^= (k * _M) & _MASK
        h = (h * _M) & _MASK
    if n > body:
        h ^= int.from_bytes(data[body:], "little")
        h = (h * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    return h ^ (h >> 47)


def find_vocab(path: Path) -> Path | None:
    """The spaCy `vocab/` directory at, in or one level below `path`; None when it is not a directory
    holding one (then it is a vectors file, or missing)."""
    if not path.is_dir():
        return None
    for d in (path, path / "vocab", *sorted(path.glob("*/vocab")), *sorted(path.glob("*/*/vocab"))):
        if (d / "vectors").is_file() and (d / "key2row").is_file():
            return d
    raise UserError(f"{path}: a directory without spaCy vectors (no vocab/vectors and vocab/key2row); give a "
                    "GloVe / word2vec / fastText file, or a spaCy pipeline with vectors (en_core_web_md or _lg: "
                    "the _sm pipelines have none) to --embeddings")


def _table(d: Path) -> np.ndarray:
    cfg = d / "vectors.cfg"
    mode = json.loads(cfg.read_text()).get("mode", "default") if cfg.is_file() else "default"
    if mode != "default":
        raise UserError(f"{d}: spaCy vectors of mode {mode!r} (hashed subwords) are not supported; use a pipeline "
                        "with a vector table (mode 'default', e.g. en_core_web_md)")
    try:
        table = np.load(d / "vectors", mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise UserError(f"{d / 'vectors'}: not a numpy array of vectors ({e}); the pipeline is damaged") from None
    if table.ndim != 2 or table.shape[1] < 1:
        raise UserError(f"{d / 'vectors'}: an array of shape {table.shape}, not (rows, dim); the pipeline is damaged")
    return table


def spacy_dim(d: Path) -> int:
    return int(_table(d).shape[1])


def read_spacy(d: Path, vocab: Vocab, lowercase_fallback: bool = True):
    """The vectors of `vocab`'s tokens from the spaCy vocab directory `d` (a `Vectors`, fmt 'spacy'). A token
    without a key of its own takes its lower-cased form's, then (for a lower-case token) its title-cased
    form's."""
    from seqlab.data.vectors import Vectors

    try:
        import msgpack
    except ImportError:
        raise UserError("reading spaCy vectors needs msgpack: pip install msgpack") from None
    table = _table(d)
    try:
        key2row = msgpack.unpackb((d / "key2row").read_bytes(), strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise UserError(f"{d / 'key2row'}: not a msgpack map of keys to rows ({e}); the pipeline is damaged") \
            from None
    out = Vectors(str(d.parent if d.name == "vocab" else d), "spacy", int(table.shape[1]), file_words=len(key2row))
    for i, tok in enumerate(vocab.itos):
        if tok in vocab.specials:
            continue
        out.words += 1
        forms = [tok]
        if lowercase_fallback:
            forms += [f for f in dict.fromkeys((tok.lower(), tok.title())) if f != tok]
        for k, form in enumerate(forms):
            row = key2row.get(hash_string(form))
            if row is not None and 0 <= row < len(table):
                out.found[i] = np.array(table[row], dtype=np.float32)
                out.by_lower += k > 0
                break
    return out
