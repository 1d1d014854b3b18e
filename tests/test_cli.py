"""The command line: train -> save -> load -> predict round trip, and bad input as one clear line."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from seqlab.cli import main
from seqlab.data.synthetic import contrast_sentiment, write_csv
from seqlab.pipelines.classify import Classifier as ClassifyPipeline
from seqlab.train.checkpoint import save_checkpoint
from seqlab.train.trainer import TrainConfig

TINY = ["--embed", "8", "--hidden", "8", "--epochs", "2", "--batch", "16", "--save-every", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    write_csv(contrast_sentiment(200, seed=1), d / "train.csv")
    write_csv(contrast_sentiment(60, seed=2), d / "dev.csv")
    return d


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "clf"
    assert main(["classify", "train", "--train", str(data / "train.csv"), "--dev", str(data / "dev.csv"),
                 "--bidirectional", "--layers", "2", *TINY, "--out", str(out)]) == 0
    return out


def test_train_writes_a_complete_run(run):
    for name in ("best/config.json", "best/vocab.json", "best/model.safetensors", "last/state.safetensors",
                 "last/trainer.json", "metrics.jsonl", "loss.png", "results.json"):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "best" / "config.json").read_text())
    assert cfg["task"] == "classify" and cfg["model"]["encoder"]["bidirectional"] is True


def test_save_load_predict_round_trip(run, tmp_path, capsys, data):
    pipe = ClassifyPipeline.load(run)
    texts = ["the plot was dull but the acting was brilliant", "the cast was great", "zzz unknown words"]
    before = pipe.predict_proba(texts)
    save_checkpoint(tmp_path / "copy", pipe.model, pipe.meta(TrainConfig()))
    after = ClassifyPipeline.load(tmp_path / "copy").predict_proba(texts)
    np.testing.assert_array_equal(before, after)
    assert np.allclose(before.sum(1), 1.0)

    capsys.readouterr()
    assert main(["classify", "predict", "--model", str(run), "--json", *texts]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    got = np.array([[r["probs"][n] for n in pipe.labels.itos] for r in lines])
    np.testing.assert_allclose(got, before, rtol=0, atol=1e-7)

    (tmp_path / "new.txt").write_text("\n".join(texts) + "\n")
    out_csv = tmp_path / "pred" / "predictions.csv"
    assert main(["classify", "predict", "--model", str(run), "--input", str(tmp_path / "new.txt"),
                 "--output", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["text"] for r in rows] == texts
    np.testing.assert_allclose([float(r["p_positive"]) for r in rows], before[:, 1], atol=1e-6)


def test_eval_prints_metrics(run, data, capsys):
    assert main(["classify", "eval", "--model", str(run), "--data", str(data / "dev.csv"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 60 and 0 <= m["accuracy"] <= 1 and np.array(m["confusion_matrix"]).sum() == 60


def test_existing_run_is_not_overwritten_without_asking(run, data, capsys):
    assert main(["classify", "train", "--train", str(data / "train.csv"), *TINY, "--out", str(run)]) == 2
    assert "already holds a training run" in capsys.readouterr().err


def _bad(tmp_path, data, run):
    """(argv, expected message part) for each kind of bad input."""
    good = data / "train.csv"
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "one.csv").write_text("text,label\na good film,pos\na bad film,pos\n")
    (tmp_path / "latin.csv").write_bytes("text,label\ntr\xe8s bon,pos\nmauvais,neg\n".encode("latin-1"))
    (tmp_path / "fields.csv").write_text("text,label\ngood,pos\nbad,neg,extra\n")
    (tmp_path / "notackpt").mkdir()
    other = tmp_path / "other_task"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "lm"}))
    (other / "model.safetensors").write_bytes(b"")
    train = ["classify", "train", *TINY, "--out", str(tmp_path / "out"), "--train"]
    return [
        (train + [str(tmp_path / "missing.csv")], "missing.csv: no such file"),
        (train + [str(tmp_path / "empty.csv")], "empty.csv: the file is empty"),
        (train + [str(good), "--text-col", "review"], "no column named 'review'"),
        (train + [str(tmp_path / "one.csv")], r"has only one class \('pos'\)"),
        (train + [str(tmp_path / "latin.csv")], "line 2 is not valid utf-8 .*--encoding"),
        (train + [str(tmp_path / "fields.csv")], "line 3 has 3 fields"),
        (["classify", "predict", "--model", str(tmp_path / "notackpt"), "hi"], "is not a seqlab checkpoint"),
        (["classify", "predict", "--model", str(other), "hi"], "is a 'lm' checkpoint, not 'classify'"),
        (["classify", "eval", "--model", str(run), "--data", str(tmp_path / "one.csv")], None),
    ]


def test_bad_input_is_one_clear_line_and_leaves_nothing_behind(tmp_path, data, run, capsys):
    for argv, msg in _bad(tmp_path, data, run):
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        if msg is None:  # eval on a file whose labels the model never saw
            assert code == 2 and "never saw" in err, err
            continue
        assert code == 2, argv
        assert err.startswith("seqlab: error: ") and len(err.strip().splitlines()) == 1, err
        import re

        assert re.search(msg, err), (msg, err)
        assert not (tmp_path / "out").exists(), "a failed run left output behind"


def test_user_errors_have_no_traceback_in_a_real_process(tmp_path):
    r = subprocess.run([sys.executable, "-m", "seqlab", "classify", "train", "--train", str(tmp_path / "x.csv"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"seqlab: error: {tmp_path / 'x.csv'}: no such file; check the path"


def test_every_flag_has_help():
    from seqlab.cli import build_parser

    def walk(p):
        for a in p._actions:
            if a.choices and isinstance(a.choices, dict):
                for sub in a.choices.values():
                    yield from walk(sub)
            elif a.dest != "help":
                yield p.prog, a
    missing = [f"{prog} {a.option_strings or a.dest}" for prog, a in walk(build_parser()) if not a.help]
    assert not missing, missing


def test_resume_continues_a_run(data, tmp_path, capsys):
    out = tmp_path / "r"
    args = ["classify", "train", "--train", str(data / "train.csv"), "--embed", "8", "--hidden", "8",
            "--batch", "16", "--out", str(out), "--patience", "0"]
    assert main(args + ["--epochs", "1"]) == 0
    first = json.loads((out / "last" / "trainer.json").read_text())["step"]
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    state = json.loads((out / "last" / "trainer.json").read_text())
    assert state["epoch"] == 2 and state["step"] == 2 * first
    torch.manual_seed(0)


@pytest.mark.parametrize("tokenizer", ["char", "subword"])
def test_other_tokenizers_round_trip(data, tmp_path, tokenizer):
    out = tmp_path / tokenizer
    assert main(["classify", "train", "--train", str(data / "train.csv"), *TINY, "--tokenizer", tokenizer,
                 "--subword-vocab", "80", "--cell", "gru", "--pooling", "mean", "--out", str(out)]) == 0
    pipe = ClassifyPipeline.load(out)
    assert type(pipe.tokenizer).__name__.lower().startswith(tokenizer)
    save_checkpoint(tmp_path / "copy", pipe.model, pipe.meta(TrainConfig()))
    texts = ["the music was not good", "Ünïcode and nonsense 123"]
    again = ClassifyPipeline.load(tmp_path / "copy")
    np.testing.assert_array_equal(pipe.predict_proba(texts), again.predict_proba(texts))
