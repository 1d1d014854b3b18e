"""Sequence regression (`seqlab classify train --regression`): the target is the frequency of a noisy sine,
a real number, learned from (time, features) sequences and from text; predictions come back in the
target's own units and beat predicting the training mean by far."""

import json

import numpy as np
import pytest

from seqlab.cli import main
from seqlab.metrics.regression import regression_metrics
from seqlab.pipelines.classify import Classifier as ClassifyPipeline

TRAIN = ["--cell", "gru", "--hidden", "32", "--epochs", "12", "--batch", "32", "--lr", "5e-3",
         "--save-every", "0", "--threads", "1", "--patience", "0"]


def sine_freqs(n, seed, T=40):
    """x (n, T, 1): a sine of 1.5..6 cycles per T steps (uniform), random phase, noise sd 0.2; y = cycles*100
    (a target far from zero mean / unit scale, so standardisation matters); lengths 30..T."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(1.5, 6.0, n)
    t = np.arange(T)[None, :]
    x = np.sin(2 * np.pi * freq[:, None] * t / T + rng.uniform(0, 2 * np.pi, (n, 1))) + rng.normal(0, 0.2, (n, T))
    return x[..., None], 100 * freq, rng.integers(30, T + 1, n)


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    d = tmp_path_factory.mktemp("reg")
    for name, n, seed in (("train", 500, 1), ("dev", 100, 2), ("test", 200, 3)):
        x, y, lengths = sine_freqs(n, seed)
        np.savez(d / f"{name}.npz", x=x, y=y, lengths=lengths)
    assert main(["classify", "train", "--features", "--regression", "--train", str(d / "train.npz"),
                 "--dev", str(d / "dev.npz"), *TRAIN, "--out", str(d / "run")]) == 0
    return d


def test_regression_metrics_by_hand():
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), train_mean=0.0)
    assert m["mae"] == pytest.approx(2 / 3) and m["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert m["r2"] == pytest.approx(1 - 4 / 2) and m["baseline_mae"] == pytest.approx(2.0)


def test_sine_frequency_is_regressed_far_better_than_the_mean(reg, capsys):
    capsys.readouterr()
    assert main(["classify", "eval", "--features", "--model", str(reg / "run"), "--data", str(reg / "test.npz"),
                 "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 200 and m["r2"] > 0.9 and m["mae"] < 0.3 * m["baseline_mae"], m
    res = json.loads((reg / "run" / "results.json").read_text())
    assert res["dev_r2"] > 0.9


def test_predict_round_trips_in_target_units(reg, tmp_path, capsys):
    pipe = ClassifyPipeline.load(reg / "run")
    z = np.load(reg / "test.npz")
    direct = pipe.predict_values([z["x"][i, :n] for i, n in enumerate(z["lengths"])])
    assert 100 < direct.mean() < 700  # back in the target's units (1.5..6 cycles x 100)
    out = tmp_path / "pred.csv"
    assert main(["classify", "predict", "--features", "--model", str(reg / "run"), "--input",
                 str(reg / "test.npz"), "--output", str(out)]) == 0
    rows = [r.split(",") for r in out.read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == [str(i) for i in range(200)]
    np.testing.assert_allclose([float(r[1]) for r in rows], direct, rtol=1e-5)


def test_text_regression_and_non_numeric_targets(tmp_path, capsys):
    # text in, number out: the target counts the word "good" (0..3) among filler words
    rng = np.random.default_rng(0)
    rows = ["text,label"]
    for _ in range(300):
        k = int(rng.integers(0, 4))
        words = ["good"] * k + list(rng.choice(["the", "film", "was", "a", "plot"], 6 - k))
        rows.append(f"{' '.join(rng.permutation(words))},{k}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    assert main(["classify", "train", "--regression", "--train", str(tmp_path / "t.csv"), *TRAIN,
                 "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["classify", "predict", "--model", str(tmp_path / "run"), "--json", "good good good the film",
                 "the film was a plot"]) == 0
    preds = [json.loads(x)["prediction"] for x in capsys.readouterr().out.splitlines()]
    assert abs(preds[0] - 3) < 0.5 and abs(preds[1]) < 0.5, preds
    (tmp_path / "bad.csv").write_text("text,label\nnice film,3\ngreat,high\n")
    assert main(["classify", "train", "--regression", "--train", str(tmp_path / "bad.csv"), *TRAIN,
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "'high'" in err and "not a number" in err
