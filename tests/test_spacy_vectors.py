"""Vectors from a spaCy pipeline directory (`--embeddings en_core_web_md/`): spaCy's word keys, the lookup
of only the vocabulary's tokens, case fallbacks, the directory layouts found, and one-line errors."""

import json

import msgpack
import numpy as np
import pytest
import torch

from seqlab.cli import main
from seqlab.data.spacy_vectors import hash_string
from seqlab.data.vectors import read_vectors, vector_dim
from seqlab.data.vocab import Vocab
from seqlab.errors import UserError
from seqlab.pipelines import Classifier

VOCAB = Vocab(["<pad>", "<unk>", "<bos>", "<eos>", "good", "bad", "Film", "paris", "plot"])
TABLE = np.array([[1.0, 0.5, 0.0], [-1.0, -0.5, 0.25], [0.0, 2.0, 1.0], [3.0, 3.0, 3.0]], np.float32)
KEYS = {"good": 0, "bad": 1, "film": 2, "Paris": 3, "awful": 1}  # awful shares bad's row, as pruned words do


def pipeline(root, keys=KEYS, table=TABLE, mode="default"):
    """A spaCy pipeline directory as spaCy writes it: config.cfg beside vocab/{vectors,key2row,vectors.cfg}."""
    vocab = root / "vocab"
    vocab.mkdir(parents=True)
    (root / "config.cfg").write_text("[nlp]\nlang = \"en\"\n")
    with open(vocab / "vectors", "wb") as f:  # np.save to a handle: the file keeps spaCy's name, no .npy
        np.save(f, table)
    (vocab / "key2row").write_bytes(msgpack.packb({hash_string(w): r for w, r in keys.items()}))
    (vocab / "vectors.cfg").write_text(json.dumps({"mode": mode}))
    return root


def test_hash_string_is_spacys_key():
    # the values spaCy's documentation prints for nlp.vocab.strings["apple"] / ["coffee"]
    assert hash_string("apple") == 8566208034543834098
    assert hash_string("coffee") == 3197928453018144401
    assert hash_string("") != hash_string(" ") and hash_string("a" * 8) != hash_string("a" * 9)
    assert hash_string("été") == hash_string("été") < 2 ** 64


@pytest.mark.parametrize("where", ["pipeline", "vocab", "package"])
def test_pipeline_vectors_are_found_by_key_with_case_fallbacks(tmp_path, where):
    root = pipeline(tmp_path / "pkg" / "en_core_web_md-3.8.0" if where == "package" else tmp_path / "md")
    path = {"pipeline": root, "vocab": root / "vocab", "package": tmp_path / "pkg"}[where]
    vecs = read_vectors(path, VOCAB)
    assert vecs.fmt == "spacy" and vecs.dim == vector_dim(path) == 3
    assert vecs.file_words == len(KEYS) and vecs.words == 5
    assert sorted(vecs.found) == [4, 5, 6, 7]  # plot has no key
    np.testing.assert_array_equal(vecs.found[5], TABLE[1])
    np.testing.assert_array_equal(vecs.found[6], TABLE[2])  # Film by film (lower-cased)
    np.testing.assert_array_equal(vecs.found[7], TABLE[3])  # paris by Paris (title-cased)
    assert vecs.by_lower == 2 and "80% of the vocabulary found (4 of 5, 2 by" in vecs.summary()
    exact = read_vectors(path, VOCAB, lowercase_fallback=False)
    assert sorted(exact.found) == [4, 5]


def test_directories_without_vectors_and_floret_vectors_are_one_line_errors(tmp_path):
    (tmp_path / "sm" / "vocab").mkdir(parents=True)  # an _sm pipeline: a vocab without vectors
    with pytest.raises(UserError, match="the _sm pipelines have none"):
        read_vectors(tmp_path / "sm", VOCAB)
    with pytest.raises(UserError, match="mode 'floret'"):
        read_vectors(pipeline(tmp_path / "fl", mode="floret"), VOCAB)
    bad = pipeline(tmp_path / "bad")
    (bad / "vocab" / "vectors").write_bytes(b"not an array")
    with pytest.raises(UserError, match="the pipeline is damaged"):
        vector_dim(bad)


def test_classifier_and_cli_train_from_a_pipeline_directory(tmp_path, capsys):
    root = pipeline(tmp_path / "md")
    texts, labels = ["good film", "bad film", "good plot", "bad plot"] * 6, ["p", "n", "p", "n"] * 6
    lines = []
    clf = Classifier.fit((texts, labels), embeddings=str(root), freeze_embeddings=True, epochs=1, hidden=8,
                         batch=8, save_every=0, log=lines.append)
    assert clf.config.model.embed == 3
    assert torch.equal(clf.model.encoder.embedding.weight[clf.vocab.stoi["bad"]].detach(), torch.tensor(TABLE[1]))
    assert any("spacy vectors of 3" in ln and "of the vocabulary found" in ln for ln in lines)
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},{lb}\n" for t, lb in zip(texts, labels)))
    rc = main(["classify", "train", "--train", str(train), "--embeddings", str(tmp_path / "nothing"),
               "--epochs", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("seqlab: error: ") and "no such vectors file" in err[-1]
    assert not (tmp_path / "run" / "best").exists()
