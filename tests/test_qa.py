"""`seqlab qa`: seq2seq and classify modes, the calibrated abstain threshold, bad input, real data."""

import json
import random
import re

import pytest

from seqlab.cli import main
from seqlab.pipelines.qa import QA as QAPipeline
from seqlab.pipelines.qa import calibrate

COUNTRIES = ["zorvia", "pellam", "quintar", "brosk", "ulmeria", "dravon", "kestel", "morvane", "ostra", "vynd",
             "talmor", "gresh", "anvora", "beltis", "corrin", "dusk", "elbar", "fenwick", "gorran", "hesk"]
TINY = ["--embed", "32", "--hidden", "64", "--batch", "8", "--save-every", "0", "--dropout", "0", "--lr", "0.01"]


def qa_rows(seed=0):
    rng = random.Random(seed)
    cities = [c[::-1].capitalize() + "-" + rng.choice(["Nord", "Sud"]) for c in COUNTRIES]
    rows = [(f"What is the capital of {c.capitalize()}?", city) for c, city in zip(COUNTRIES, cities)]
    rows += [(f"How many rivers does {c.capitalize()} have?", str(rng.randint(2, 9))) for c in COUNTRIES]
    return rows


@pytest.fixture(scope="module")
def qa_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("qa") / "qa.csv"
    lines = ["question,answer"] + [f'"{q}",{a}' for q, a in qa_rows()]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())  # CRLF, quoted questions, as the real file
    return path


@pytest.fixture(scope="module")
def runs(qa_csv, tmp_path_factory):
    d = tmp_path_factory.mktemp("qaruns")
    for mode in ("seq2seq", "classify"):
        assert main(["qa", "train", "--data", str(qa_csv), "--mode", mode, "--epochs", "30", "--patience", "0",
                     *TINY, "--out", str(d / mode)]) == 0
    return d


@pytest.mark.parametrize("mode", ["seq2seq", "classify"])
def test_qa_learns_its_questions_and_stores_a_threshold(runs, qa_csv, mode, capsys):
    res = json.loads((runs / mode / "results.json").read_text())
    assert res["mode"] == mode and res["train_exact_match"] == 1.0, res
    pipe = QAPipeline.load(runs / mode)
    assert pipe.mode == mode and pipe.threshold == pytest.approx(res["threshold"])
    capsys.readouterr()
    assert main(["qa", "eval", "--model", str(runs / mode), "--data", str(qa_csv), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 40 and m["exact_match"] >= 0.85  # 36 seen questions right; 4 held out
    q, gold = qa_rows()[0]
    assert main(["qa", "ask", "--model", str(runs / mode), "--json", "--threshold=-1e9", q]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["answer"].replace(" ", "").lower() == gold.lower()


def test_ask_abstains_below_the_threshold(runs, tmp_path, capsys):
    questions = [q for q, _ in qa_rows()[:4]] + ["how do i bake bread ?"]
    conf = [c for _, c in QAPipeline.load(runs / "seq2seq").answer(questions)]
    assert all(c <= 0 for c in conf)
    (tmp_path / "q.txt").write_text("\n".join(questions) + "\n")
    cut = sorted(conf)[2]  # answers the 3 most confident, abstains on the 2 others
    capsys.readouterr()
    assert main(["qa", "ask", "--model", str(runs / "seq2seq"), "--input", str(tmp_path / "q.txt"),
                 f"--threshold={cut}"]) == 0
    out = capsys.readouterr().out
    assert out.count("I don't know") == 2 and "answered 3 of 5 questions, abstained on 2 (40%)" in out
    assert main(["qa", "ask", "--model", str(runs / "seq2seq"), "--json", *questions]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    threshold = QAPipeline.load(runs / "seq2seq").threshold
    assert [r["answer"] is None for r in rows] == [c < threshold for c in conf]


def test_calibration_picks_the_threshold_with_most_right_decisions():
    # right answers are confident, wrong ones are not: the threshold falls between them
    t = calibrate([-0.1, -0.2, -0.9, -1.5, -0.15], [True, True, False, False, True])
    assert -0.9 < t <= -0.2
    # all held-out answers wrong: abstain on every one of them
    t = calibrate([-0.5, -0.7], [False, False])
    assert t > -0.5
    # all right: answer every one
    assert calibrate([-0.5, -0.7], [True, True]) <= -0.7
    assert calibrate([], []) is None


def test_bad_input(tmp_path, runs, qa_csv, capsys):
    (tmp_path / "q.csv").write_text("question,answer\nWhat?,yes\n,no\n")
    cases = [
        (["qa", "train", "--data", str(qa_csv), "--question-col", "prompt", "--out", str(tmp_path / "o")],
         r"no column named 'prompt'; the columns are 'question', 'answer'"),
        (["qa", "train", "--data", str(tmp_path / "q.csv"), "--out", str(tmp_path / "o")],
         r"q.csv: line 3 has an empty source \(column 'question'\)"),
        (["translate", "predict", "--model", str(runs / "seq2seq"), "hi"], r"is a 'qa' checkpoint, not 'translate'"),
        (["qa", "ask", "--model", str(runs / "seq2seq")], "nothing to ask"),
    ]
    for argv, msg in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and re.search(msg, err), (msg, err)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_real_qa_dataset(shared_data, tmp_path, capsys):
    """The seeds' 90-row QA CSV: every training question answered right, off-topic ones abstained."""
    out = tmp_path / "qa"
    assert main(["qa", "train", "--data", str(shared_data / "qa" / "100_Unique_QA_Dataset.csv"), "--out", str(out),
                 "--save-every", "0"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["train_exact_match"] == 1.0 and res["train_answered"] >= 0.9
    pipe = QAPipeline.load(out)
    off = ["how do i bake sourdough bread ?", "what is your favourite colour ?", "why do cats purr ?"]
    assert all(c < pipe.threshold for _, c in pipe.answer(off))
