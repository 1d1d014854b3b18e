"""The token store: a text tokenized once, streaming, into a memory-mapped file of the smallest dtype, reused
while the source and the settings are unchanged, made again (or refused, naming the file) when damaged."""

import json
import os
import random

import numpy as np
import pytest
import torch

from seqlab.cli import main
from seqlab.data import Vocab, build_tokenizer
from seqlab.data import text_stream as ts
from seqlab.data.chunk_tokens import ChunkTokens
from seqlab.data.readers import read_text
from seqlab.data.streams import StreamBatcher
from seqlab.data.text_stream import TextSource
from seqlab.data.token_store import TokenStore, dtype_for
from seqlab.errors import UserError
from seqlab.pipelines.lm import LM, text_tokens

LINES = ["the cat sat on the mat.", "A dog ran; in the Fog!", "", "ΑΣ é naïve — “quotes” 😀", "isn't it"]
TINY = dict(hidden=16, embed=16, seq_len=16, batch=4, dropout=0.0, epochs=1, save_every=0, log=lambda s: None)


def _text(n=600, end="\n", seed=0):
    rnd = random.Random(seed)
    return "\n".join(rnd.choice(LINES) for _ in range(n)) + end


def _store(path, cache, level="char", key=None):
    src = TextSource.open(path)
    src.scan()
    tok = build_tokenizer(level, read_text(path).split("\n"), False, 60)
    vocab = Vocab.build([text_tokens(tok, read_text(path))])
    store = TokenStore.build(src, ChunkTokens(tok), vocab, [("all", 0, None)], key or {"level": level}, cache)
    return store, vocab, tok


def test_dtype_is_the_smallest_that_holds_the_vocabulary():
    assert [dtype_for(n).name for n in (2, 256, 257, 65536, 65537)] == ["uint8", "uint8", "uint16", "uint16",
                                                                         "uint32"]


def test_round_trip_through_the_files(tmp_path):
    (tmp_path / "t.txt").write_text(_text())
    store, vocab, tok = _store(tmp_path / "t.txt", tmp_path / "cache")
    again, why = TokenStore.find(TextSource.open(tmp_path / "t.txt"), {"level": "char"}, tmp_path / "cache")
    assert why == "" and again.reused and isinstance(again.ids, np.memmap) and again.ids.dtype == np.uint8
    want = vocab.encode(text_tokens(tok, read_text(tmp_path / "t.txt")))
    assert again.ids.tolist() == store.ids.tolist() == want
    files = sorted(p.suffix for p in (tmp_path / "cache").iterdir())
    assert files == [".json", ".lock", ".tokens"]  # raw ids + a JSON header: no pickle anywhere
    head = json.loads(again.path.with_suffix(".json").read_text())
    assert head["vocab"] == vocab.to_json() and head["tokenizer"] == tok.to_json() and head["tokens"] == len(want)
    assert head["source"]["size"] == os.path.getsize(tmp_path / "t.txt") and len(head["source"]["sha256"]) == 64
    assert again.path.stat().st_size == len(want)  # one byte per token
    words, _, _ = _store(tmp_path / "t.txt", tmp_path / "cache", "subword")  # 60+ subwords and specials
    assert words.ids.dtype == np.uint8 and len(words.vocab) < 256


def test_reuse_and_invalidation_when_the_source_changes(tmp_path):
    path, cache, key = tmp_path / "t.txt", tmp_path / "cache", {"level": "char"}
    path.write_text(_text())
    _store(path, cache)
    os.utime(path, ns=(1, 10**18))  # touched, not changed: the checksum says it is the same text
    found, why = TokenStore.find(TextSource.open(path), key, cache)
    assert found is not None and why == ""
    assert json.loads(found.path.with_suffix(".json").read_text())["source"]["mtime_ns"] == 10**18
    path.write_text(_text().replace("cat", "cow"))  # same size, other text
    found, why = TokenStore.find(TextSource.open(path), key, cache)
    assert found is None and "t.txt changed since its tokens were stored" in why
    assert TokenStore.find(TextSource.open(path), {"level": "word"}, cache) == (None, "")  # other settings


def test_streaming_equals_in_memory_tokenization(tmp_path, monkeypatch):
    monkeypatch.setattr(ts, "_BLOCK", 5)  # blocks that split characters, '\r\n' and lines
    for end in ("", "\n"):
        text = "\ufeff" + _text(200, end).replace("\n", "\r\n")
        (tmp_path / "t.txt").write_bytes(text.encode("utf-8"))
        want_text = read_text(tmp_path / "t.txt")
        src = TextSource.open(tmp_path / "t.txt")
        assert src.scan() == len(want_text)
        for level in ("char", "word", "subword"):
            for lower in (False, True):
                tok = build_tokenizer(level, want_text.split("\n"), lower, 80)
                want = text_tokens(tok, want_text)
                vocab = Vocab.build([want], 2, 40)
                ct = ChunkTokens(tok)
                for size in (3, 101, 1 << 20):
                    chunks = list(src.chunks(size=size, whole_lines=level != "char"))
                    assert "".join(chunks) == want_text
                    assert Vocab.from_counts(ct.count(chunks), 2, 40) == vocab
                    ids = np.concatenate([ct.encode(c, vocab, np.uint16) for c in chunks])
                    assert ids.tolist() == vocab.encode(want), (level, lower, size)
        cut = len(want_text) // 3
        assert "".join(src.chunks(cut, 2 * cut, size=7)) == want_text[cut:2 * cut]
        assert list(src.lines(cut, 2 * cut)) == want_text[cut:2 * cut].split("\n")


def test_memmap_batches_equal_the_tensor_batcher(tmp_path):
    ids = torch.randint(0, 250, (1003,), generator=torch.Generator().manual_seed(0))
    ids.numpy().astype(np.uint8).tofile(tmp_path / "ids.tokens")
    mm = np.memmap(tmp_path / "ids.tokens", dtype=np.uint8, mode="r")
    for rank, world in ((0, 1), (1, 2)):
        a, b = StreamBatcher(ids, 4, 13), StreamBatcher(mm, 4, 13, limit=250)
        a.shard(rank, world)
        b.shard(rank, world)
        pairs = list(zip(a, b, strict=True))
        assert len(pairs) == len(a) == len(b) and a.stream_len == b.stream_len
        for x, y in pairs:
            assert y.ids.dtype == torch.long and torch.equal(x.ids, y.ids) and torch.equal(x.targets, y.targets)
            assert torch.equal(x.index, y.index)


def test_fit_stores_tokens_and_the_next_run_reuses_them(tmp_path):
    (tmp_path / "t.txt").write_text(_text(400))
    lines = []
    lm = LM.fit(tmp_path / "t.txt", cache=str(tmp_path / "c"), out=tmp_path / "a", **{**TINY, "log": lines.append})
    assert any(ln.startswith("tokenized ") for ln in lines) and lm.results["token_store"].endswith(".tokens")
    lines.clear()
    lm2 = LM.fit(tmp_path / "t.txt", cache=str(tmp_path / "c"), out=tmp_path / "b", **{**TINY, "log": lines.append})
    assert any("tokenizing skipped" in ln for ln in lines), lines
    assert lm2.results["tokenize_seconds"] == 0 and lm2.vocab == lm.vocab
    assert lm2.results["valid_loss"] == lm.results["valid_loss"]  # the same ids, the same run
    small = LM.fit(tmp_path / "t.txt", out=tmp_path / "d", **TINY)  # a small file, no --cache: in memory
    assert small.results["token_store"] == "" and not (tmp_path / "d" / "tokens").exists()
    assert small.results["valid_loss"] == lm.results["valid_loss"]


def test_a_validation_file_has_its_own_store_made_with_the_training_vocabulary(tmp_path):
    t, v, cache = tmp_path / "t.txt", tmp_path / "v.txt", str(tmp_path / "c")
    t.write_text(_text(400))
    v.write_text(_text(100, seed=1).replace("dog", "zog"))  # "z" is not in the training text: <unk>
    made = lambda lines: sorted(ln.split()[0] for ln in lines if ln.startswith(("tokenized", "token store")))  # noqa: E731
    runs = []
    for _ in range(2):
        lines = []
        lm = LM.fit(t, valid=v, cache=cache, **{**TINY, "log": lines.append})
        runs.append((made(lines), lm.results["valid_loss"]))
    assert runs[0][0] == ["tokenized", "tokenized"] and runs[1][0] == ["token", "token"]  # reused: both
    assert runs[0][1] == runs[1][1]
    assert len(list((tmp_path / "c").glob("*.tokens"))) == 2
    assert lm.evaluate(v)["unk_rate"] > 0


def test_a_damaged_store_is_named_and_made_again_or_refused(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(_text(400))
    cache = tmp_path / "c"
    LM.fit(tmp_path / "t.txt", cache=str(cache), **TINY)
    data = next(cache.glob("*.tokens"))
    head = data.with_suffix(".json")
    for damage, said in ((lambda: data.write_bytes(data.read_bytes()[:-3]), f"{data} is damaged ("),
                         (lambda: head.write_text("{not json"), f"{head} is damaged (")):
        damage()
        lines = []
        LM.fit(tmp_path / "t.txt", cache=str(cache), **{**TINY, "log": lines.append})
        notes = [ln for ln in lines if ln.startswith(said)]
        assert len(notes) == 1 and notes[0].endswith("tokenizing again"), lines
        assert any(ln.startswith("tokenized ") for ln in lines)
    raw = bytearray(data.read_bytes())
    raw[0] = 250  # a token id no vocabulary of this text has, in a file of the right size
    data.write_bytes(bytes(raw))
    capsys.readouterr()
    argv = ["lm", "train", "--data", str(tmp_path / "t.txt"), "--cache", str(cache), "--hidden", "16", "--embed",
            "16", "--batch", "4", "--seq-len", "16", "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"seqlab: error: {data} is damaged: token id 250 at position 0 ") and err.count("\n") == 1
    assert "delete it" in err


def test_stream_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"fine\nalso fine\nbad \xff here\n")
    with pytest.raises(UserError, match=r"bad.txt: line 3 is not valid utf-8 \(byte 0xff\)"):
        TextSource.open(tmp_path / "bad.txt").scan()
    (tmp_path / "blank.txt").write_text(" \n\n")
    with pytest.raises(UserError, match="blank.txt: the file is empty"):
        LM.fit(tmp_path / "blank.txt", **TINY)
    with pytest.raises(UserError, match="no such file"):
        TextSource.open(tmp_path / "missing.txt")
