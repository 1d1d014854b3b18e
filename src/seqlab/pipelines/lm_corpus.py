"""The language model's text as token ids: a token store on disk for files, arrays in memory for strings,
and the scoring of held-out text as parallel streams (`seqlab.pipelines.lm` is the pipeline).

    corpus = prepare_corpus("big.txt", None, cfg, cache=Path("run/tokens"), log=print)
    corpus.train, corpus.valid           # token ids: memory maps of the store (or arrays for a string)
    score(model, corpus.valid, corpus.valid_chars, level, streams=32, max_tokens=None)

A file is tokenized streaming, in chunks (`seqlab.data.text_stream`, `seqlab.data.chunk_tokens`):
one pass counts its characters (and hashes it), one counts the tokens of the training part (the
vocabulary: counts, then ids; a subword tokenizer learns from a pass over its lines), one writes
the ids (`seqlab.data.token_store`). The next run with the same text and the same tokenizer
settings finds the store and skips all of it. A string of text is tokenized the same way into
arrays in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqlab.data import Vocab, build_tokenizer, tokenizer_from_json
from seqlab.data.chunk_tokens import ChunkTokens
from seqlab.data.split import holdout_tail
from seqlab.data.text_stream import TextSource
from seqlab.data.token_store import TokenStore
from seqlab.data.vocab import EOS
from seqlab.errors import UserError
from seqlab.models.language_model import lm_metrics, sequence_nll, stream_nll

STORE_MIN_BYTES = 4 << 20  # without an explicit cache, smaller files are tokenized in memory (well under 1 s)
EVAL_SHARE = 0.05  # --valid-tokens auto: one evaluation costs about this share of the --time budget ...
REFERENCE_FLOPS = 50e9  # ... on a machine that does this many FLOP/s (one CPU core; a GPU does more)
MIN_VALID_TOKENS = 250_000  # ... but reads at least this many tokens (all of a smaller held-out text)
UNK_SAMPLE = 1 << 24  # unk_rate from the first 16M tokens of a text


def text_tokens(tokenizer, text: str) -> list[str]:
    """The token strings of a whole text: characters as they are, or each line's tokens + <eos>."""
    if tokenizer.kind == "char":
        return tokenizer.tokenize(text)
    lines = text.split("\n")
    if lines and lines[-1] == "":  # a final newline ends the last line; it opens no new one
        lines.pop()
    return [t for line in lines for t in (*tokenizer.tokenize(line), EOS)]


_FILE_SUFFIX = re.compile(r"\.(txt|text|gz|md|rst|csv|tsv|json|jsonl|py|html?|xml|tex)$", re.I)


def is_path(source) -> bool:
    """A Path, or a str that names a file: one line, and an existing file or a file-like name."""
    if isinstance(source, os.PathLike):
        return True
    return (isinstance(source, str) and "\n" not in source and len(source) < 4096
            and (os.path.isfile(source) or bool(_FILE_SUFFIX.search(source.strip()))))


def read_source(source, encoding: str = "utf-8", name: str = "the text") -> tuple[str, str]:
    """(text, how to name it in messages) from a path, a string of text or a list of lines."""
    if is_path(source):
        from seqlab.data.readers import read_text

        return read_text(source, encoding), str(source)
    if isinstance(source, (list, tuple)) and all(isinstance(s, str) for s in source):
        source = "".join(s if s.endswith("\n") else s + "\n" for s in source)
    if not isinstance(source, str):
        raise UserError(f"{name} must be a file path, a string of text or a list of lines, "
                        f"not {type(source).__name__}")
    if not source.strip():
        raise UserError(f"{name} is empty; give some text")
    return source.replace("\r\n", "\n"), name


def text_source(source, encoding: str = "utf-8", name: str = "the text") -> TextSource:
    """A file to stream (never read whole), or a string / list of lines already in memory."""
    if is_path(source):
        return TextSource.open(source, encoding)
    text, name = read_source(source, encoding, name)
    return TextSource.of_string(text, name)


@dataclass
class Corpus:
    """Tokenizer, vocabulary and the token ids of the training and validation text."""

    tokenizer: object
    vocab: Vocab
    train: np.ndarray
    valid: np.ndarray
    valid_chars: int
    train_name: str
    valid_name: str
    counts: np.ndarray  # token id counts of the training text
    store: TokenStore
    seconds: float = 0.0  # spent tokenizing (0 when the store was reused)

    def check(self, batch: int, seq_len: int, level: str) -> np.ndarray:
        """The training ids, when there are enough of them for a batch, and 2 tokens to validate on."""
        need = batch * seq_len + 1
        if len(self.train) < need:
            raise UserError(f"{self.train_name}: the training text has {len(self.train)} {level} tokens, fewer "
                            f"than one batch (batch {batch} x seq_len {seq_len} + 1 = {need}); give more text or "
                            "a smaller batch or seq_len")
        if len(self.valid) < 2:
            raise UserError(f"{self.valid_name}: the validation text has fewer than 2 tokens; give a longer "
                            "validation text or a larger valid fraction")
        return self.train


def oriented(ids, backward: bool):
    """`ids` (a tensor, array, memory map or list of tokens) as the model reads them: as they are, or (a
    backward LM) from the last token to the first. A memory map stays a memory map (a view with a negative
    stride, read window by window)."""
    return ids.flip(0) if backward and torch.is_tensor(ids) else ids[::-1] if backward else ids


def _cache_for(src: TextSource, cache: Path | None, explicit: bool) -> Path | None:
    if src.path is None or cache is None:
        return None
    return cache if explicit or src.path.stat().st_size >= STORE_MIN_BYTES else None


def _store(src: TextSource, key: dict, cache: Path | None, log, make: Callable[[], tuple]) -> tuple[TokenStore, float]:
    """The store of `src` for `key`: found in `cache`, or made with make() -> (tokenizer, vocab, segments,
    token id counts of the first segment)."""
    if cache is not None:
        found, why = TokenStore.find(src, key, cache)
        if found is not None:
            _check_blank(src, found)
            log(f"token store {found.path}: reused ({len(found.ids):,} tokens, {found.ids.dtype}); tokenizing skipped")
            return found, 0.0
        if why:
            log(f"{why}; tokenizing again")
    t0 = time.perf_counter()
    tok, vocab, segments, counts = make()
    store = TokenStore.build(src, ChunkTokens(tok), vocab, segments, key, cache, counts, log=log)
    _check_blank(src, store)
    seconds = time.perf_counter() - t0
    if src.path is not None:
        mb = src.path.stat().st_size / 1e6
        where = f" -> {store.path}" if store.path is not None else " (in memory)"
        log(f"tokenized {src.name} ({mb:,.1f} MB) in {seconds:.1f}s ({mb / max(seconds, 1e-9):,.1f} MB/s): "
            f"{len(store.ids):,} {tok.kind} tokens as {store.ids.dtype}{where}")
    return store, seconds


def prepare_corpus(train, valid, dc, dev_fraction: float, cache: Path | None = None, explicit: bool = False,
                   log: Callable[[str], None] = print, tokenizer=None) -> Corpus:
    """Tokenizer, vocabulary and ids of `train` (and `valid`, or the last `dev_fraction` of `train`).

    `dc`: the LM's data settings (level, lowercase, min_freq, max_vocab, subword_vocab, encoding). Files
    are stored in `cache` (a directory; None: in memory); without `explicit`, only files of at least
    STORE_MIN_BYTES are. `tokenizer`: use this one (a pretrained LM's) instead of making one."""
    src = text_source(train, dc.encoding, "the training text")
    key = {"level": dc.level, "lowercase": dc.lowercase, "min_freq": dc.min_freq, "max_vocab": dc.max_vocab,
           "subword_vocab": dc.subword_vocab if dc.level == "subword" else None, "encoding": dc.encoding,
           "holdout": dev_fraction if valid is None else None}
    if tokenizer is not None:
        key["tokenizer"] = hashlib.sha256(json.dumps(tokenizer.to_json()).encode()).hexdigest()[:16]
    made = {}

    def make():
        cut = holdout_tail(src.scan(), dev_fraction) if valid is None else None  # the cut needs the length
        lines = src.lines(0, cut) if dc.level == "subword" else None
        tok = tokenizer or build_tokenizer(dc.level, lines, dc.lowercase, dc.subword_vocab)
        ct = ChunkTokens(tok)
        counts = ct.count(src.chunks(0, cut, whole_lines=dc.level != "char", size=ct.chunk_chars))
        made["tok"] = tok
        vocab = Vocab.from_counts(counts, dc.min_freq, dc.max_vocab)
        ids = np.zeros(len(vocab), dtype=np.int64)
        for t, c in counts.items():
            ids[vocab.stoi.get(t, vocab.unk_id)] += c
        return tok, vocab, [("train", 0, cut)] + ([("valid", cut, None)] if valid is None else []), ids

    store, seconds = _store(src, key, _cache_for(src, cache, explicit), log, make)
    tok = made.get("tok") or tokenizer_from_json(store.header["tokenizer"])
    vocab = store.vocab
    if valid is None:
        v_ids, v_chars = store.segment("valid"), store.chars("valid")
        v_name = f"the last {dev_fraction:.0%} of {src.name}"
    else:
        vsrc = text_source(valid, dc.encoding, "the validation text")
        digest = hashlib.sha256(json.dumps([store.header["tokenizer"], store.header["vocab"]]).encode()).hexdigest()
        vkey = {**key, "holdout": None, "vocab": digest[:16]}

        def make_valid():
            return tok, vocab, [("valid", 0, None)], None

        vstore, vseconds = _store(vsrc, vkey, _cache_for(vsrc, cache, explicit), log, make_valid)
        seconds += vseconds
        v_ids, v_chars, v_name = vstore.ids, vstore.chars("valid"), vsrc.name
    return Corpus(tok, vocab, store.segment("train"), v_ids, v_chars, src.name, v_name, store.counts, store, seconds)


def encode_text(source, tokenizer, vocab: Vocab, encoding: str = "utf-8",
                name: str = "the text") -> tuple[np.ndarray, int, str]:
    """(ids, characters, name) of a text file (streamed) or a string, in memory as the smallest dtype."""
    src = text_source(source, encoding, name)
    store = TokenStore.build(src, ChunkTokens(tokenizer), vocab, [("all", 0, None)], {}, None)
    _check_blank(src, store)
    return store.ids, store.chars("all"), src.name


def _check_blank(src: TextSource, store: TokenStore) -> None:
    if store.header.get("blank"):
        raise UserError(f"{src.name}: the file is empty; give a file with data")


def unigram_bits_of_counts(counts) -> float:
    """Entropy of token frequencies (counts per id) in bits/token: the loss of the best context-free model."""
    c = torch.as_tensor(np.asarray(counts), dtype=torch.float64)
    p = c[c > 0] / c.sum()
    return max(0.0, float(-(p * p.log2()).sum()))  # one token type: 0.0, never -0.0


def score(model, ids, chars: int, level: str, unk_id: int | None, *, streams: int = 32,
          max_tokens: int | None = None, exact: bool = False, unk: bool = True) -> dict:
    """loss (nats/token), perplexity, bits_per_char, tokens (scored), streams, unk_rate of the ids of a
    text of `chars` characters: read as one sequence (`exact`) or as `streams` parallel streams
    (`stream_nll`), up to `max_tokens` targets. bits_per_char of a word or subword text scored in part
    counts the characters in proportion; unk_rate (with `unk`) is that of the first UNK_SAMPLE tokens."""
    if exact:
        ids = ids[: max_tokens + 1] if max_tokens else ids
        total, n = sequence_nll(model, ids)
        rows = 1
    else:
        total, n, rows = stream_nll(model, ids, streams, max_tokens)
    covered = n if level == "char" else chars if n == len(ids) - 1 else chars * n / max(1, len(ids) - 1)
    res = {**lm_metrics(total, n, math.ceil(covered)), "tokens": n, "streams": rows}
    if unk:
        sample = np.asarray(ids[: min(len(ids), UNK_SAMPLE)])
        res["unk_rate"] = float((sample == unk_id).mean()) if unk_id is not None and len(sample) else 0.0
    return res


class Validation:
    """The eval_fn of the LM's training: the held-out ids scored as parallel streams (`score`), up to
    `cap` tokens (0: all). It keeps the figures of the best evaluation, so that fit's final figures
    for best/ need no second pass over the held-out text (`final`)."""

    KEEP = ("loss", "perplexity", "bits_per_char")

    def __init__(self, corpus: Corpus, level: str, streams: int, cap: int = 0):
        self.corpus, self.level, self.streams, self.cap = corpus, level, streams, cap
        self.best: dict = {}

    def __str__(self) -> str:
        n = len(self.corpus.valid) - 1
        scored = f"{self.cap:,} of {n:,}" if self.cap and self.cap < n else f"{n:,}"
        return f"{scored} tokens scored as up to {self.streams} parallel streams"

    def scores(self, model) -> dict:
        c = self.corpus
        return score(model, c.valid, c.valid_chars, self.level, c.vocab.unk_id, streams=self.streams,
                     max_tokens=self.cap or None, unk=False)

    def __call__(self, model) -> dict:
        res = self.scores(model)
        if "loss" not in self.best or res["loss"] < self.best["loss"]:
            self.best = res
        return {k: res[k] for k in self.KEEP}

    def final(self, model, best_loss) -> dict:
        """The figures of best/ (in `model`): those of its evaluation, or (a run resumed after it) anew."""
        return self.best if self.best.get("loss") == best_loss else self.scores(model)


def flops_per_token(cfg) -> float:
    """Multiply-adds x 2 that the model (a LanguageModel's cfg) spends reading one token: cells and output layer."""
    enc = cfg.encoder
    gates = {"lstm": 4, "gru": 3}.get(enc.cell, 0 if enc.cell == "none" else 1)
    width, total = enc.embed_dim, 0.0
    for _ in range(enc.layers):
        total += 2 * gates * enc.hidden * (width + enc.hidden)
        width = enc.hidden
    return total + 2 * enc.output_dim * enc.vocab_size


def auto_valid_tokens(model, n_valid: int, minutes: float) -> int:
    """--valid-tokens 0 (auto): all of the held-out text without a time budget; under `minutes`, as many
    tokens as one evaluation reads in EVAL_SHARE of the budget at REFERENCE_FLOPS (`flops_per_token`),
    at least MIN_VALID_TOKENS, to two significant digits; 0 (all) when that is all of them. It depends on
    the settings alone, so that the same run gives the same figures (and a resumed run comparable ones)."""
    if not minutes or n_valid <= MIN_VALID_TOKENS:
        return 0
    cap = max(MIN_VALID_TOKENS, int(EVAL_SHARE * minutes * 60 * REFERENCE_FLOPS / flops_per_token(model.cfg)))
    cap = int(float(f"{cap:.2g}"))
    return 0 if cap >= n_valid else cap
