"""The transfer flags through the command line: lm train with AWD's regularisers, lm train --init-from on new
text, classify / tag train --init-from with ULMFiT's fine-tuning, and a bad --init-from as one line."""

import json

import pytest

from seqlab.cli import main

LINES = ["a good film", "a bad film", "the plot was good", "the plot was bad"]
FAST = ["--epochs", "1", "--save-every", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "text.txt").write_text("\n".join(LINES * 50) + "\n")
    out = d / "lm"
    assert main(["lm", "train", "--data", str(d / "text.txt"), "--level", "word", "--hidden", "12", "--embed", "12",
                 "--layers", "2", "--locked-dropout", "--weight-drop", "0.3", "--embed-row-dropout", "0.1", "--ar", "2",
                 "--tar", "1", "--average", "0.9", "--seq-len", "8", "--batch", "4", *FAST, "--out", str(out)]) == 0
    return d, out


def test_lm_train_records_the_awd_settings(lm_run):
    _, out = lm_run
    model = json.loads((out / "best" / "config.json").read_text())["model"]
    assert model["encoder"]["weight_drop"] == 0.3 and model["encoder"]["embed_row_dropout"] == 0.1
    assert (model["ar"], model["tar"]) == (2.0, 1.0)
    assert "average: 0.9" in (out / "run.yaml").read_text()


def test_lm_continues_on_task_text(lm_run, capsys):
    d, out = lm_run
    (d / "task.txt").write_text("the zebra was good\n" * 40)
    assert main(["lm", "train", "--init-from", str(out), "--data", str(d / "task.txt"), "--seq-len", "8", "--batch",
                 "4", *FAST, "--out", str(d / "lm2")]) == 0
    assert "init from" in capsys.readouterr().out
    assert "level: word" in (d / "lm2" / "run.yaml").read_text()


def test_classify_and_tag_train_from_the_lm(lm_run, capsys):
    d, out = lm_run
    (d / "train.csv").write_text("text,label\n" + "".join(f"{t},{t.split()[-1]}\n" for t in LINES * 8))
    assert main(["classify", "train", "--train", str(d / "train.csv"), "--init-from", str(out),
                 "--lr-decay-per-layer", "2.6", "--gradual-unfreeze", "--schedule", "slanted", "--pooling", "concat",
                 "--batch", "8", *FAST, "--out", str(d / "clf")]) == 0
    said = capsys.readouterr().out
    assert "discriminative learning rates over 4 layer groups" in said and "gradual unfreezing: epoch 1" in said
    (d / "train.conll").write_text("".join("John B-PER\nlives O\nin O\nParis B-LOC\n\n" for _ in range(8)))
    assert main(["tag", "train", "--train", str(d / "train.conll"), "--init-from", str(out), "--min-freq", "1",
                 "--hidden", "8", "--char-out", "8", *FAST, "--out", str(d / "tag")]) == 0


def test_a_bad_init_from_is_one_line(lm_run, capsys):
    d, _ = lm_run
    (d / "bad.csv").write_text("text,label\n" + "".join(f"{t},{t.split()[-1]}\n" for t in LINES * 8))
    rc = main(["classify", "train", "--train", str(d / "bad.csv"), "--init-from", str(d / "nothing"), *FAST,
               "--out", str(d / "bad")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("seqlab: error: ") and "nothing" in err
