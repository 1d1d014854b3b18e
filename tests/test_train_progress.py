"""Long evaluations say they are running (stderr), and every `train` ends with its total wall time."""

import io
import math
import random
import time

import pytest

from seqlab.cli import common, main
from seqlab.data.synthetic import contrast_sentiment, write_csv
from seqlab.pipelines.classify import Classifier


def test_heartbeat_writes_only_while_a_long_step_runs():
    buf = io.StringIO()
    with common.Heartbeat("evaluating x", after=0.05, every=0.05, stream=buf) as hb:
        time.sleep(0.4)
    n = hb.lines
    assert n >= 2 and buf.getvalue().count("evaluating x ... ") == n and "so far" in buf.getvalue()
    time.sleep(0.15)
    assert hb.lines == n  # stopped: nothing after the step ended
    quiet = io.StringIO()
    with common.Heartbeat("quick", after=5, stream=quiet) as hb:
        pass
    assert quiet.getvalue() == "" and hb.lines == 0


def test_train_run_summary_adds_up():
    class T:
        state = {"elapsed": 2.0}

    run = common.TrainRun()
    with run:
        run.on_fit_start(T, resume=False)
        T.state = {"elapsed": 2.5}  # 0.5 s trained in this session
        run.on_fit_end(T)
    s = run.summary()
    assert s.startswith("total wall time ") and "training 0.5s" in s and "final evaluation" in s


def _slow_evaluate(monkeypatch, seconds=0.3):
    real = Classifier.evaluate

    def evaluate(self, *args, **kw):
        time.sleep(seconds)
        return real(self, *args, **kw)

    monkeypatch.setattr(Classifier, "evaluate", evaluate)


def test_a_long_final_evaluation_shows_progress_and_counts_in_the_wall_time(tmp_path, monkeypatch, capsys):
    write_csv(contrast_sentiment(64, seed=1), tmp_path / "train.csv")
    monkeypatch.setattr(common.Heartbeat, "AFTER", 0.05)
    monkeypatch.setattr(common.Heartbeat, "EVERY", 0.05)
    _slow_evaluate(monkeypatch)
    assert main(["classify", "train", "--train", str(tmp_path / "train.csv"), "--embed", "8", "--hidden", "8",
                 "--epochs", "1", "--batch", "16", "--save-every", "0", "--threads", "1",
                 "--out", str(tmp_path / "clf")]) == 0
    cap = capsys.readouterr()
    assert "evaluating the best model ... " in cap.err  # the evaluation after training is no longer silent
    last = cap.out.strip().splitlines()[-1]
    assert last.startswith("total wall time ") and "final evaluation" in last, cap.out
    final = float(last.split("final evaluation ")[1].rstrip("s)").split("s")[0])
    assert final >= 0.3  # the slow final evaluation is counted

    capsys.readouterr()
    assert main(["classify", "eval", "--model", str(tmp_path / "clf"), "--data", str(tmp_path / "train.csv")]) == 0
    cap = capsys.readouterr()
    assert f"evaluating {tmp_path / 'clf'} on {tmp_path / 'train.csv'} ... " in cap.err
    assert "accuracy" in cap.out and "so far" not in cap.out  # progress goes to stderr only


def _data(task: str, d):
    rnd = random.Random(0)
    if task == "classify":
        write_csv(contrast_sentiment(64, seed=1), d / "t.csv")
        return ["--train", str(d / "t.csv"), "--embed", "8", "--hidden", "8"]
    if task == "lm":
        lines = ["the cat sat on the mat.", "a dog ran in the fog."]
        (d / "t.txt").write_text("\n".join(rnd.choice(lines) for _ in range(60)) + "\n")
        return ["--data", str(d / "t.txt"), "--embed", "8", "--hidden", "8", "--seq-len", "16", "--batch", "4"]
    if task == "tag":
        sents = [[("the", "DET"), ("cat", "NOUN"), ("sat", "VERB")], [("a", "DET"), ("dog", "NOUN"), ("ran", "VERB")]]
        (d / "t.conll").write_text("".join("".join(f"{w} {t}\n" for w, t in rnd.choice(sents)) + "\n"
                                           for _ in range(30)))
        return ["--train", str(d / "t.conll"), "--embed", "4", "--hidden", "4", "--char-features", "none"]
    if task == "translate":
        pairs = [("i am cold .", "j'ai froid ."), ("you are tall .", "tu es grand ."), ("he is cold .", "il a froid .")]
        (d / "p.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs * 10))
        return ["--data", str(d / "p.tsv"), "--embed", "8", "--hidden", "8", "--batch", "16"]
    if task == "qa":
        qa = [("what is red ?", "a rose"), ("what is blue ?", "the sky"), ("who barks ?", "a dog")]
        (d / "q.csv").write_text("question,answer\n" + "".join(f"{q},{a}\n" for q, a in qa * 6))
        return ["--data", str(d / "q.csv"), "--embed", "8", "--hidden", "8"]
    ys = "".join(f"{10 + math.sin(i / 3) + 0.1 * rnd.random():.4f}\n" for i in range(90))
    (d / "s.csv").write_text("y\n" + ys)
    return ["--data", str(d / "s.csv"), "--no-time", "--target", "y", "--test", "12", "--horizon", "3",
            "--lookback", "12", "--hidden", "8"]


@pytest.mark.parametrize("task", ["classify", "lm", "tag", "translate", "qa", "forecast"])
def test_every_train_command_ends_with_its_total_wall_time(task, tmp_path, capsys):
    argv = [task, "train", *_data(task, tmp_path), "--epochs", "1", "--save-every", "0", "--threads", "1",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 0, capsys.readouterr().err
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("total wall time ") and "training " in last and "final evaluation " in last, last
