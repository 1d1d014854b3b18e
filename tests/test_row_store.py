"""Tokenized classification rows as one flat token file + an offsets index (seqlab.data.row_store)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqlab.data.batching import BucketBatcher
from seqlab.data.row_store import RowStore
from seqlab.pipelines import Classifier

TEXTS = [f"{'good fine great' if i % 2 else 'bad awful poor'} film {i % 7} " + "x " * (i % 5) for i in range(60)]
LABELS = ["pos" if i % 2 else "neg" for i in range(60)]


def _encode(chunk):
    return [[len(w) + 3 for w in t.split()] or [1] for t in chunk]


def test_rows_read_back_what_was_encoded_in_memory_and_on_disk(tmp_path):
    for cache in (None, tmp_path / "rows"):
        rows = RowStore.build(TEXTS, _encode, 20, {"recipe": 1}, cache, chunk_rows=7)
        assert len(rows) == len(TEXTS) and rows.tokens.dtype == np.uint8  # 20 ids fit in a byte
        for i, ids in enumerate(_encode(TEXTS)):
            assert rows[i].tolist() == ids and rows[i].dtype == torch.long
        assert rows.lengths.tolist() == [len(r) for r in _encode(TEXTS)]
    assert isinstance(rows.tokens, np.memmap) and isinstance(rows.offsets, np.memmap)
    assert RowStore.build(TEXTS, _encode, 300, {"recipe": 1}).tokens.dtype == np.uint16


def test_a_store_is_reused_for_the_same_texts_and_recipe_only(tmp_path):
    lines = []
    first = RowStore.build(TEXTS, _encode, 20, {"recipe": 1}, tmp_path, log=lines.append)
    assert not first.reused and "tokenized 60 rows" in lines[-1]
    again = RowStore.build(TEXTS, lambda c: 1 / 0, 20, {"recipe": 1}, tmp_path, log=lines.append)  # never encodes
    assert again.reused and "tokenizing skipped" in lines[-1] and again.path == first.path
    other = RowStore.build(TEXTS[:-1], _encode, 20, {"recipe": 1}, tmp_path)  # other texts: another store
    assert not other.reused and len(other) == 59 and other.path != first.path
    assert RowStore.build(TEXTS, _encode, 20, {"recipe": 2}, tmp_path).path != first.path
    offsets = next(tmp_path.glob(f"{first.path.stem}.offsets"))
    offsets.write_bytes(offsets.read_bytes()[:-8])  # damaged: made again, said why
    fixed = RowStore.build(TEXTS, _encode, 20, {"recipe": 1}, tmp_path, log=lines.append)
    assert not fixed.reused and "damaged" in lines[-2] and fixed[5].tolist() == _encode(TEXTS)[5]


def test_bucket_batcher_serves_the_same_batches_from_a_store_as_from_tensors():
    tensors = [torch.tensor(r) for r in _encode(TEXTS)]
    targets = torch.arange(len(TEXTS))
    store = RowStore.build(TEXTS, _encode, 20, {})
    for rank in (0, 1):
        a, b = BucketBatcher(tensors, targets, 4, shuffle=True, seed=2), BucketBatcher(store, targets, 4, shuffle=True,
                                                                                        seed=2)
        a.shard(rank, 2)
        b.shard(rank, 2)
        a.set_epoch(1)
        b.set_epoch(1)
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x.ids, y.ids) and torch.equal(x.lengths, y.lengths) and torch.equal(x.targets, y.targets)


def test_classifier_trains_the_same_from_its_row_store_and_reuses_it(tmp_path):
    kw = dict(epochs=2, hidden=8, embed=8, batch=8, dropout=0.0, embed_dropout=0.0, threads=1, log=lambda s: None)
    plain = Classifier.fit((TEXTS, LABELS), **kw)
    lines = []
    stored = Classifier.fit((TEXTS, LABELS), cache=str(tmp_path / "rows"), **{**kw, "log": lines.append})
    assert any("tokenized" in line and "rows into" in line for line in lines)
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, stored.model.state_dict()[k]), k
    lines.clear()
    Classifier.fit((TEXTS, LABELS), cache=str(tmp_path / "rows"), **{**kw, "log": lines.append})
    assert any("tokenizing skipped" in line for line in lines)
    assert len(list((tmp_path / "rows").glob("rows-*.tokens"))) == 1


def test_a_table_read_in_chunks_gives_the_rows_and_errors_of_read_table(tmp_path):
    from seqlab.data.readers import iter_table, read_table
    from seqlab.errors import UserError

    path = tmp_path / "t.csv"
    path.write_bytes('\ufefftext,label\r\n"two\r\nlines",a\r\n\r\nplain , b\n'.encode() + b"x,c\n" * 7)
    whole = read_table(path, ["text", "label"])
    chunks = list(iter_table(path, ["text", "label"], chunk_rows=3))
    assert [len(r) for r, _ in chunks] == [3, 3, 3]
    assert [r for rows, _ in chunks for r in rows] == whole.rows and whole.rows[0] == ("two\nlines", "a")
    assert [n for _, lines in chunks for n in lines] == whole.lines
    for bad in (b"text,label\nfine,a\nthree,b,c\n", b"text,label\nfine,a\n\xff,b\n", b"text,label\n\"open,a\n"):
        path.write_bytes(bad + b"x,c\n" * 5)
        try:
            read_table(path, ["text", "label"])
        except UserError as e:
            expected = str(e)
        with pytest.raises(UserError) as got:
            list(iter_table(path, ["text", "label"], chunk_rows=2))
        assert str(got.value) == expected and "line" in expected


@pytest.mark.parametrize("with_dev", [False, True])
def test_a_table_streamed_into_the_store_trains_the_same_as_the_list(tmp_path, with_dev):
    kw = dict(epochs=2, hidden=8, embed=8, batch=8, dropout=0.0, embed_dropout=0.0, threads=1, dev_fraction=0.2,
              log=lambda s: None)
    path, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    path.write_text("text,label\n" + "".join(f"{t},{lb}\n" for t, lb in zip(TEXTS, LABELS)))
    dev.write_text("text,label\ngood film,pos\nbad film 3,neg\n")
    dev_arg = str(dev) if with_dev else None
    plain = Classifier.fit(str(path), dev_arg, **kw)  # a small file, no cache: the lists
    lines = []
    streamed = Classifier.fit(str(path), dev_arg, cache=str(tmp_path / "rows"), **{**kw, "log": lines.append})
    assert any("read in chunks" in line for line in lines) and any("rows into" in line for line in lines)
    assert streamed.vocab == plain.vocab and streamed.labels == plain.labels
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, streamed.model.state_dict()[k]), k
    assert streamed.evaluate(str(path)) == plain.evaluate(str(path))
    lines.clear()  # the lists with the same cache find the store the table made (the same training texts)
    again = Classifier.fit(([t.strip() for t in TEXTS], LABELS), dev_arg, cache=str(tmp_path / "rows"),
                           **{**kw, "log": lines.append})
    assert any("tokenizing skipped" in line for line in lines) and not any("in chunks" in line for line in lines)
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k


def test_a_large_table_streams_by_itself_and_a_small_one_keeps_the_lists(tmp_path, monkeypatch):
    from seqlab.pipelines import classify, classify_rows

    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{lb}\n" for t, lb in zip(TEXTS, LABELS)))
    monkeypatch.setattr(classify_rows, "STREAM_BYTES", 0)  # every file is counted first
    kw = dict(epochs=1, hidden=8, embed=8, batch=8, threads=1, overwrite=True)
    for min_rows, streamed in ((40, True), (1000, False)):
        monkeypatch.setattr(classify, "ROW_STORE_ROWS", min_rows)
        lines = []
        Classifier.fit(str(path), out=str(tmp_path / "run"), log=lines.append, **kw)
        assert any("read in chunks" in line for line in lines) == streamed
        assert any("rows into" in line for line in lines) == streamed  # the store in OUT/rows, or no store
