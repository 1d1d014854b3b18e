"""Translation (and seq2seq QA) pairs as two RowStores, one per side (seqlab.pipelines.pair_encoding)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from seqlab.cli import main
from seqlab.data.pairs import PairBatcher, Pairs
from seqlab.pipelines import QA, Translator
from seqlab.pipelines import seq2seq as s2s
from seqlab.pipelines.pair_encoding import SourceTruncated

ADJ = dict(red="rouge", big="grand", small="petit", blue="bleu", old="vieux")
NOUN = dict(cat="chat", dog="chien", bird="oiseau", car="camion", tree="arbre")
VERB = dict(sleeps="dort", eats="mange", runs="court")
PAIRS = [(f"The {a} {n} {v} " + "very " * (i % 4), f"le {NOUN[n]} {ADJ[a]} {VERB[v]}" + " !" * (i % 3))
         for i, (a, n, v) in enumerate(itertools.product(ADJ, NOUN, VERB))]
SRC, TGT = [s for s, _ in PAIRS], [t for _, t in PAIRS]
TINY = dict(hidden=8, embed=8, batch=8, lr=0.01, dropout=0.0, patience=0, save_every=0, threads=1, beam=1)


@pytest.fixture(scope="module")
def pipe():
    data = {"lowercase": True, "nfkc": False, "split_punct": False}
    return s2s.build(s2s.Seq2SeqPipeline, "translate", s2s.Seq2SeqModel(hidden=8, embed=8),
                     s2s.Seq2SeqTokens(lowercase=True), Pairs(SRC, TGT, list(range(1, 76)), "toy"), data, 0)


def test_pairs_read_back_what_encode_src_and_encode_tgt_make(pipe, tmp_path):
    for cache in (None, tmp_path / "rows"):
        src, tgt = pipe.rows(SRC, TGT, cache)
        assert len(src) == len(tgt) == len(PAIRS) and src.tokens.dtype == tgt.tokens.dtype == np.uint8
        for i, (s, t) in enumerate(zip(pipe.encode_src(SRC), pipe.encode_tgt(TGT))):
            assert torch.equal(src[i], s) and torch.equal(tgt[i], t)
        assert tgt[0][-1] == pipe.tgt_vocab.eos_id and src[0][0] == pipe.src_vocab.stoi["the"]  # lower-cased
    assert sorted(p.suffix for p in (tmp_path / "rows").iterdir() if p.suffix != ".lock") == \
        [".json", ".json", ".offsets", ".offsets", ".tokens", ".tokens"]  # one store per side
    lines = []
    again = pipe.rows(SRC, TGT, tmp_path / "rows", lines.append)
    assert all(r.reused for r in again) and sum("tokenizing skipped" in line for line in lines) == 2


def test_sources_over_the_maximum_are_cut_with_one_warning_and_a_new_store(pipe, tmp_path):
    short = s2s.Seq2SeqPipeline("translate", pipe.src_tok, pipe.tgt_tok, pipe.src_vocab, pipe.tgt_vocab, pipe.model,
                                {**pipe.data, "max_src_len": 5})
    with pytest.warns(SourceTruncated, match=r"^\d+ source text\(s\) longer than the model's maximum of 5 .*"
                                               r"the first is input 3\)"):
        src, _ = short.rows(SRC, TGT, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SourceTruncated)
        assert [r.tolist() for r in src] == [r.tolist() for r in short.encode_src(SRC)]
    assert int(src.lengths.max()) == 5 and src.path != pipe.rows(SRC, TGT, tmp_path)[0].path


def test_pair_batcher_serves_the_same_batches_from_stores_as_from_tensors(pipe):
    lists, stores = (pipe.encode_src(SRC), pipe.encode_tgt(TGT)), pipe.rows(SRC, TGT)
    for rank, world, shuffle in ((0, 1, False), (0, 2, True), (1, 2, True)):
        a, b = (PairBatcher(*x, 4, pipe.src_vocab.pad_id, shuffle=shuffle, seed=3) for x in (lists, stores))
        assert torch.equal(a.lengths, b.lengths)
        for x in (a, b):
            x.shard(rank, world)
            x.set_epoch(2)
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x.ids, y.ids) and torch.equal(x.lengths, y.lengths)
            assert torch.equal(x.targets, y.targets) and torch.equal(x.index, y.index)
    with pytest.raises(ValueError, match="75 sources but 74 targets"):
        PairBatcher(lists[0], lists[1][:-1], 4)


def test_translator_trains_the_same_from_its_pair_stores_and_reuses_them(tmp_path, monkeypatch):
    plain = Translator.fit(PAIRS, epochs=2, log=lambda s: None, **TINY)
    lines = []
    stored = Translator.fit(PAIRS, epochs=2, cache=str(tmp_path / "c"), log=lines.append, **TINY)
    assert sum("rows into" in line for line in lines) == 2  # sources and targets tokenized into their stores
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, stored.model.state_dict()[k]), k
    lines.clear()
    Translator.fit(PAIRS, epochs=2, cache=str(tmp_path / "c"), log=lines.append, **TINY)
    assert sum("tokenizing skipped" in line for line in lines) == 2
    assert len(list((tmp_path / "c").glob("rows-*.tokens"))) == 2
    monkeypatch.setattr(s2s, "ROW_STORE_ROWS", 50)  # large data: the stores go to OUT/rows by themselves
    Translator.fit(PAIRS, epochs=1, out=tmp_path / "run", log=lambda s: None, **TINY)
    assert len(list((tmp_path / "run" / "rows").glob("rows-*.tokens"))) == 2


def test_seq2seq_qa_keeps_its_pairs_in_stores_too(tmp_path):
    lines = []
    qa = QA.fit([(f"what is {s} ?", t) for s, t in PAIRS], epochs=1, hidden=8, embed=8, batch=16, threads=1,
                cache=str(tmp_path), log=lines.append)
    assert qa.data["mode"] == "seq2seq" and sum("rows into" in line for line in lines) == 2
    assert len(list(tmp_path.glob("rows-*.tokens"))) == 2


def test_cli_cache_flag_keeps_the_pair_stores_in_dir(tmp_path, capsys):
    (tmp_path / "train.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS))
    args = ["translate", "train", "--data", str(tmp_path / "train.tsv"), "--epochs", "1", "--embed", "8",
            "--hidden", "8", "--batch", "16", "--save-every", "0", "--beam", "1", "--threads", "1",
            "--cache", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "tokenizing skipped" in capsys.readouterr().out
    assert len(list((tmp_path / "cache").glob("rows-*.tokens"))) == 2 and not (tmp_path / "b" / "rows").exists()
