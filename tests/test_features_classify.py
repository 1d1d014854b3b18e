"""Numeric sequence classification: the class is the frequency of a noisy sine (features over time),
read from an .npz or a long CSV, through the same classifier, encoder and trainer as text."""

import csv
import json

import numpy as np
import pytest

from seqlab.cli import main
from seqlab.data.features import read_features
from seqlab.errors import UserError
from seqlab.pipelines.classify import Classifier as ClassifyPipeline
from seqlab.train.checkpoint import save_checkpoint
from seqlab.train.trainer import TrainConfig

TRAIN = ["--cell", "gru", "--hidden", "32", "--epochs", "10", "--batch", "32", "--lr", "5e-3",
         "--save-every", "0", "--threads", "1", "--patience", "0"]


def noisy_sines(n, seed, T=40):
    """x (n, T, 2): a sine of 2, 4 or 6 cycles per 40 steps with random phase and noise sd 0.3, and a
    feature of pure noise; y the frequency class; lengths 30..40 (the rest is padding)."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 3, n)
    freq = np.array([2.0, 4.0, 6.0])[cls]
    t = np.arange(T)[None, :]
    x = np.sin(2 * np.pi * freq[:, None] * t / T + rng.uniform(0, 2 * np.pi, (n, 1))) + rng.normal(0, 0.3, (n, T))
    return np.stack([x, rng.normal(size=(n, T))], -1), np.array(["f2", "f4", "f6"])[cls], rng.integers(30, T + 1, n)


def write_long(path, x, y, lengths, shuffle_rows=False):
    rows = [(f"s{i}", s, x[i, s, 0], x[i, s, 1], y[i]) for i in range(len(x)) for s in range(lengths[i])]
    if shuffle_rows:  # rows of a sequence may come in any order
        rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "step", "value", "noise", "label"])
        w.writerows((a, b, f"{c:.5f}", f"{d:.5f}", e) for a, b, c, d, e in rows)
    return path


@pytest.fixture(scope="module")
def sines(tmp_path_factory):
    d = tmp_path_factory.mktemp("sines")
    for name, n, seed in (("train", 450, 1), ("dev", 100, 2), ("test", 200, 3)):
        x, y, lengths = noisy_sines(n, seed)
        np.savez(d / f"{name}.npz", x=x, y=y, lengths=lengths)
        write_long(d / f"{name}.csv", x, y, lengths, shuffle_rows=name == "test")
    out = d / "run"
    assert main(["classify", "train", "--features", "--train", str(d / "train.npz"), "--dev", str(d / "dev.npz"),
                 *TRAIN, "--out", str(out)]) == 0
    return d


def test_npz_and_long_csv_read_the_same_sequences(sines):
    a = read_features(sines / "test.npz", {})
    b = read_features(sines / "test.csv", {})  # its rows are shuffled: sequences come in first-seen order
    order = [b.ids.index(f"s{i}") for i in range(len(a.seqs))]
    assert b.columns == ["value", "noise"] and a.labels == [b.labels[j] for j in order]
    assert [len(s) for s in a.seqs] == [len(b.seqs[j]) for j in order]
    np.testing.assert_allclose(np.concatenate(a.seqs), np.concatenate([b.seqs[j] for j in order]), atol=1e-5)


def test_noisy_sine_frequency_is_classified_above_95_percent(sines, capsys):
    capsys.readouterr()
    assert main(["classify", "eval", "--features", "--model", str(sines / "run"), "--data", str(sines / "test.csv"),
                 "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 200 and m["accuracy"] > 0.95, m
    cfg = json.loads((sines / "run" / "best" / "config.json").read_text())
    assert cfg["model"]["encoder"]["vocab_size"] == 0 and cfg["model"]["encoder"]["input_dim"] == 2
    assert len(cfg["data"]["scaler"]["mean"]) == 2


def test_predict_features_round_trips_from_a_saved_checkpoint(sines, tmp_path, capsys):
    pipe = ClassifyPipeline.load(sines / "run")
    fs = read_features(sines / "test.npz", {})
    before = pipe.predict_proba(fs.seqs)
    save_checkpoint(tmp_path / "copy", pipe.model, pipe.meta(TrainConfig()))
    out = tmp_path / "pred.csv"
    assert main(["classify", "predict", "--features", "--model", str(tmp_path / "copy"), "--input",
                 str(sines / "test.npz"), "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == fs.ids
    got = np.array([[float(r[f"p_{n}"]) for n in pipe.labels.itos] for r in rows])
    np.testing.assert_allclose(got, before, atol=1e-6)
    assert np.mean([r["label"] for r in rows] == np.array(fs.labels)) > 0.95
    capsys.readouterr()
    assert main(["classify", "predict", "--features", "--model", str(sines / "run"), "--input",
                 str(sines / "test.csv"), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    by_id = {r["id"]: r["label"] for r in lines}
    assert len(by_id) == 200 and by_id["s0"] == rows[0]["label"]


def test_feature_model_and_flag_must_agree(sines, capsys):
    assert main(["classify", "predict", "--model", str(sines / "run"), "hello"]) == 2
    assert "numeric feature sequences; pass --features" in capsys.readouterr().err


@pytest.mark.parametrize("body, message", [
    ("id,step,v,label\na,0,1.0,x\na,0,2.0,x\n", r"sequence 'a' has step 0 twice \(lines 2 and 3\)"),
    ("id,step,v,label\na,0,1.0,x\na,1,2.0,y\n", r"sequence 'a' has label 'x' and 'y' \(line 3\)"),
    ("id,step,v,label\na,0,1.0,x\na,1,abc,x\n", r"line 3: 'abc' in column 'v' is not a number"),
    ("id,t,v,label\na,0,1.0,x\n", r"no column named 'step'.*--step-col"),
])
def test_bad_feature_files_name_the_line(tmp_path, body, message):
    (tmp_path / "bad.csv").write_text(body)
    with pytest.raises(UserError, match=message):
        read_features(tmp_path / "bad.csv", {})


def test_bad_npz_is_a_user_error(tmp_path):
    np.savez(tmp_path / "flat.npz", x=np.zeros((3, 4)), y=np.zeros(3))
    with pytest.raises(UserError, match=r"must be \(batch, time, features\)"):
        read_features(tmp_path / "flat.npz", {})
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((3, 4, 1)))
    with pytest.raises(UserError, match="no labels"):
        read_features(tmp_path / "nolabels.npz", {})


def test_unknown_label_in_an_npz_names_the_sequence(sines, tmp_path, capsys):
    x, y, lengths = noisy_sines(5, 9)
    y[3] = "f9"
    np.savez(tmp_path / "odd.npz", x=x, y=y, lengths=lengths)
    capsys.readouterr()
    assert main(["classify", "eval", "--features", "--model", str(sines / "run"), "--data",
                 str(tmp_path / "odd.npz")]) == 2
    err = capsys.readouterr().err
    assert "sequence 3 has label 'f9'" in err and "line" not in err, err
