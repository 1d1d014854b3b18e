"""The user's own word vectors (--embeddings): formats, streaming filter, errors with line numbers,
coverage, and the start they give classify, tag and translate."""

import gzip
import struct

import numpy as np
import pytest
import torch

from seqlab.cli import main
from seqlab.data.vectors import init_embedding, load_vectors, read_vectors, vector_dim
from seqlab.data.vocab import Vocab
from seqlab.errors import UserError
from seqlab.pipelines import Classifier, Tagger, Translator

VOCAB = Vocab(["<pad>", "<unk>", "<bos>", "<eos>", "good", "bad", "Film", "plot"])
VECS = {"good": [1.0, 0.5, 0.0], "bad": [-1.0, -0.5, 0.25], "film": [0.0, 2.0, 1.0], "other": [9.0, 9.0, 9.0]}


def glove(path, vecs=VECS, header=False, extra=""):
    lines = [f"{len(vecs)} 3\n"] if header else []
    lines += [f"{w} {' '.join(map(str, v))}\n" for w, v in vecs.items()]
    path.write_text("".join(lines) + extra)
    return path


def w2v_binary(path, vecs=VECS):
    body = b"".join(w.encode() + b" " + struct.pack("<3f", *v) + b"\n" for w, v in vecs.items())
    path.write_bytes(f"{len(vecs)} 3\n".encode() + body)
    return path


@pytest.mark.parametrize("kind", ["glove", "word2vec", "gzip", "binary"])
def test_every_format_gives_the_vocabulary_words_and_nothing_else(tmp_path, kind):
    if kind == "binary":
        path = w2v_binary(tmp_path / "vectors.w2v")  # told apart by its content, not its name
    else:
        path = glove(tmp_path / "v.txt", header=kind != "glove")
        if kind == "gzip":
            gz = tmp_path / "v.txt.gz"
            gz.write_bytes(gzip.compress(path.read_bytes()))
            path = gz
    vecs = read_vectors(path, VOCAB)
    assert vecs.dim == vector_dim(path) == 3
    assert vecs.fmt == {"glove": "glove", "binary": "word2vec-binary"}.get(kind, "word2vec")
    assert sorted(vecs.found) == [4, 5, 6]  # good, bad, Film (by 'film'); plot is not in the file
    np.testing.assert_allclose(vecs.found[5], VECS["bad"])
    np.testing.assert_allclose(vecs.found[6], VECS["film"])
    assert vecs.by_lower == 1 and vecs.file_words == 4 and vecs.words == 4
    assert "75% of the vocabulary found (3 of 4, 1 by their lower-cased form)" in vecs.summary()


def test_duplicates_keep_the_first_vector_and_are_counted(tmp_path):
    path = glove(tmp_path / "v.txt", header=True, extra="good 7 7 7\n")
    vecs = read_vectors(path, VOCAB)
    np.testing.assert_allclose(vecs.found[4], VECS["good"])
    assert vecs.duplicates == 1 and "1 words listed twice" in vecs.summary()


def test_words_sharing_one_vector_are_counted_and_named_in_the_summary(tmp_path):
    same = {"good": [1.0, 0.5, 0.0], "bad": [1.0, 0.5, 0.0], "film": [0.0, 2.0, 1.0], "plot": [0.0, 2.0, 1.0]}
    emb = torch.nn.Embedding(len(VOCAB), 3)
    vecs = load_vectors(emb, VOCAB, glove(tmp_path / "pruned.txt", same))
    assert vecs.shared == 4 and vecs.shared_pair == ("good", "bad")
    assert "4 of the found words share their exact vector" in vecs.summary()
    assert "frozen they stay indistinguishable" in vecs.summary(frozen=True)
    distinct = load_vectors(emb, VOCAB, glove(tmp_path / "v.txt"))
    assert distinct.shared == 0 and "share" not in distinct.summary()


def test_cased_file_serves_a_lower_cased_vocabulary(tmp_path):
    path = glove(tmp_path / "v.txt", {"Good": [1, 2, 3], "good": [4, 5, 6], "PLOT": [7, 8, 9]})
    vecs = read_vectors(path, Vocab(["<pad>", "<unk>", "good", "plot"], ("<pad>", "<unk>")))
    np.testing.assert_allclose(vecs.found[2], [4, 5, 6])  # the exact form wins over the fallback
    np.testing.assert_allclose(vecs.found[3], [7, 8, 9])
    assert read_vectors(path, Vocab(["<pad>", "plot"], ("<pad>",)), lowercase_fallback=False).found == {}


def test_a_line_of_the_wrong_length_names_its_line(tmp_path):
    path = glove(tmp_path / "v.txt", header=True, extra="plot 1 2\n")
    with pytest.raises(UserError, match=r"v.txt: line 6 has 2 values but the file's vectors have 3 "
                                        r"\(from the header on line 1\)"):
        read_vectors(path, VOCAB)
    path = glove(tmp_path / "g.txt", extra="zzz 1 2 3 4\n")  # even a word the vocabulary does not need
    with pytest.raises(UserError, match=r"line 5 has 4 values .* have 3 \(from line 1\)"):
        read_vectors(path, VOCAB)
    (tmp_path / "n.txt").write_text("good 1 2 3\nbad 1 x 3\n")
    with pytest.raises(UserError, match=r"n.txt: line 2 has 'x' where a number should be"):
        read_vectors(tmp_path / "n.txt", VOCAB)


def test_missing_empty_and_cut_binary_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no such vectors file"):
        read_vectors(tmp_path / "none.txt", VOCAB)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="empty"):
        read_vectors(tmp_path / "empty.txt", VOCAB)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(w2v_binary(tmp_path / "b.bin").read_bytes()[:-10])
    with pytest.raises(UserError, match="ends inside vector 4 of the 4"):
        read_vectors(cut, VOCAB)


def test_init_embedding_copies_found_rows_keeps_pad_zero_and_freezes(tmp_path):
    vecs = read_vectors(glove(tmp_path / "v.txt"), VOCAB)
    torch.manual_seed(0)
    emb = torch.nn.Embedding(len(VOCAB), 3, padding_idx=0)
    init_embedding(emb, vecs, freeze=True)
    assert torch.equal(emb.weight[4], torch.tensor(VECS["good"]))
    assert torch.equal(emb.weight[0], torch.zeros(3)) and emb.weight[7].abs().sum() > 0
    assert not emb.weight.requires_grad
    with pytest.raises(UserError, match="vectors of 3 dimensions but the embedding has 5; set --embed 3"):
        init_embedding(torch.nn.Embedding(8, 5), vecs)


def _sentiment(n=40):
    return (["good film", "bad film", "good plot", "bad plot"] * (n // 4), ["p", "n", "p", "n"] * (n // 4))


def test_classifier_adopts_the_file_dimension_reports_coverage_and_keeps_frozen_vectors(tmp_path):
    path = glove(tmp_path / "v.txt")
    lines = []
    clf = Classifier.fit(_sentiment(), embeddings=str(path), freeze_embeddings=True, epochs=2, hidden=8, embed=64,
                         batch=8, save_every=0, log=lines.append)
    assert clf.model.encoder.embedding.weight.shape[1] == 3 and clf.config.model.embed == 3
    assert any("embed 3: the dimension of the vectors" in ln for ln in lines)
    assert any("of the vocabulary found" in ln and "frozen" in ln for ln in lines)
    row = clf.vocab.stoi["good"]
    assert torch.equal(clf.model.encoder.embedding.weight[row].detach(), torch.tensor(VECS["good"]))


def test_freezing_without_pretrained_vectors_is_an_error(tmp_path):
    with pytest.raises(UserError, match="--freeze-embeddings keeps pretrained vectors"):
        Classifier.fit(_sentiment(), freeze_embeddings=True, epochs=1, log=lambda s: None)


def test_tagger_and_translator_take_vectors(tmp_path):
    path = glove(tmp_path / "v.txt", {"john": [1, 0, 0], "paris": [0, 1, 0], "le": [0, 0, 1]})
    pairs = [(["John", "in", "Paris"], ["B-PER", "O", "B-LOC"])] * 8
    lines = []
    tag = Tagger.fit(pairs, embeddings=str(path), freeze_embeddings=True, epochs=1, hidden=8, char_out=8,
                     char_dim=4, min_freq=1, save_every=0, log=lines.append)
    assert tag.model.embedding.weight.shape[1] == 3
    assert torch.equal(tag.model.embedding.weight[tag.words.stoi["paris"]].detach(), torch.tensor([0.0, 1, 0]))
    assert any("67% of the vocabulary found" in ln for ln in lines)  # john and paris of john, in, paris
    pairs = [("le chat", "the cat"), ("le chien", "the dog"), ("le lit", "the bed")] * 8
    tr = Translator.fit(pairs, embeddings=str(path), epochs=1, hidden=8, save_every=0, log=lambda s: None)
    assert tr.model.encoder.embedding.weight.shape[1] == 3


def test_cli_reports_a_bad_vectors_file_as_one_line(tmp_path, capsys):
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},{lb}\n" for t, lb in zip(*_sentiment(8))))
    (tmp_path / "v.txt").write_text("good 1 2 3\nbad 1 2\n")
    rc = main(["classify", "train", "--train", str(train), "--embeddings", str(tmp_path / "v.txt"), "--epochs", "1",
               "--out", str(tmp_path / "run")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("seqlab: error: ") and "v.txt: line 2 has 2 values" in err[-1]
    assert not (tmp_path / "run" / "best").exists()
