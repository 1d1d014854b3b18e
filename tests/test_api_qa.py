"""The Python API of question answering: train, predict (None = abstain), evaluate, save, load."""

import json

import pytest

import seqlab
from seqlab.cli import main
from seqlab.pipelines import QA, ConfigError, QAConfig

C = ["zorvia", "pellam", "quintar", "brosk", "ulmeria", "dravon", "kestel", "morvane", "ostra", "vynd",
     "talmor", "gresh", "anvora", "beltis", "corrin", "dusk", "elbar", "fenwick", "gorran", "hesk"]
ROWS = [(f"What is the capital of {c.capitalize()}?", c[::-1].capitalize()) for c in C]
ROWS += [(f"How many rivers does {c.capitalize()} have?", str(2 + i % 7)) for i, c in enumerate(C)]
TINY = dict(epochs=30, patience=0, embed=32, hidden=64, batch=8, lr=0.01, dropout=0.0, save_every=0,
            log=lambda s: None)


@pytest.fixture(scope="module")
def qa_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("api_qa") / "qa.csv"
    path.write_text("question,answer\n" + "".join(f'"{q}",{a}\n' for q, a in ROWS))
    return path


def test_six_lines_train_predict_evaluate_save_load(qa_csv, tmp_path):
    qa = QA.fit(qa_csv, **TINY)
    assert qa.predict(ROWS[0][0], threshold=float("-inf")) == "aivroz"  # always answer: the best guess
    assert qa.predict(["how do i bake bread ?"]) == [None]  # below the calibrated threshold: abstain
    assert qa.evaluate(qa_csv)["exact_match"] >= 0.85
    qa.save(tmp_path / "qa")
    assert seqlab.load(tmp_path / "qa").threshold == qa.threshold == qa.results["threshold"]


def test_classify_mode_from_pairs_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    qa = QA.fit(ROWS, mode="classify", **TINY)
    assert qa.mode == "classify" and qa.results["train_exact_match"] == 1.0
    assert qa.predict([ROWS[25][0]], threshold=float("-inf")) == [ROWS[25][1]]
    m = qa.evaluate(ROWS[:10])
    assert m["n"] == 10 and 0 <= m["answered"] <= 1 and set(m) == {"exact_match", "token_f1", "answered",
                                                                   "answered_exact_match", "n"}
    assert not list(tmp_path.iterdir())  # nothing written anywhere without out=


def test_config_round_trips_and_names_bad_parameters():
    cfg = QAConfig().with_values(mode="classify", lowercase=False, dev_fraction=0.0)
    assert QAConfig().data.lowercase and QAConfig().train.patience == 20 and QAConfig().model.hidden == 128
    assert QAConfig.from_yaml(cfg.to_yaml()) == cfg
    with pytest.raises(ConfigError, match=r"data\.mode must be one of seq2seq, classify"):
        QAConfig().with_values(mode="lookup").validate()
    with pytest.raises(ConfigError, match=r"train\.teacher_forcing must be in \[0.0, 1.0\]"):
        QA.fit(ROWS, teacher_forcing=2.0)


@pytest.mark.parametrize("mode", ["seq2seq", "classify"])
def test_time_without_epochs_trains_and_writes_best(qa_csv, tmp_path, mode, capsys):
    out = tmp_path / mode
    assert main(["qa", "train", "--data", str(qa_csv), "--mode", mode, "--time", "0.02", "--hidden", "16",
                 "--embed", "8", "--save-every", "0", "--out", str(out)]) == 0
    assert (out / "best" / "model.safetensors").is_file() and (out / "results.json").is_file()
    assert json.loads((out / "best" / "config.json").read_text())["train"]["epochs"] == 0
    assert "abstain threshold" in capsys.readouterr().out


def test_seen_questions_are_answered_when_the_held_out_ones_cannot_be_known():
    """A conversational file: every held-out answer is new, so all held-out guesses are wrong. Calibrated
    on those alone the threshold rose above every confidence and the model abstained on the questions
    it was taught; calibrated on seen questions too, it answers them and still abstains on unknowns."""
    rows = [(f"tell me about {c} number {i}", f"{c[::-1]}{i}") for i, c in enumerate(C * 3)]
    qa = QA.fit(rows, mode="classify", dev_fraction=0.2, **TINY)
    assert qa.results["valid_exact_match"] == 0.0  # nothing held out can be known
    assert qa.results["train_answered"] >= 0.9 and qa.results["train_exact_match"] >= 0.9
    assert qa.results["valid_answered"] <= 0.2  # and it still abstains on what it cannot know


def test_calibration_counts_seen_questions_as_ones_to_answer():
    from seqlab.pipelines.qa import calibrate

    held_conf, held_right = [-0.5, -0.6, -0.7, -0.4], [False, False, False, True]  # confident, mostly wrong
    seen_conf, seen_right = [-0.8, -0.9, -1.0, -0.3, -0.85], [True] * 5  # long answers, taught, right
    alone = calibrate(held_conf, held_right)
    both = calibrate(held_conf + seen_conf, held_right + seen_right)
    assert sum(c >= alone for c in seen_conf) == 1  # held-out questions alone: abstain on 4 of 5 seen
    assert all(c >= both for c in seen_conf)  # with the seen ones: answer every taught question
