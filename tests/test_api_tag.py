"""The tagging Python API as a notebook uses it: train, predict, evaluate, save, load in a few public lines."""

import json
import random

import pytest

import seqlab
from seqlab.cli import main
from seqlab.pipelines import ConfigError, TagConfig, Tagger

PER, LOC = ["John", "Mary", "Anna Lee", "Bob"], ["Paris", "Berlin", "New York", "Rome"]
TINY = dict(epochs=12, hidden=24, embed=16, char_dim=8, char_out=16, batch=8, lr=0.02, dropout=0.0,
            embed_dropout=0.0, word_dropout=0.0, patience=0, save_every=0, log=lambda s: None)


def sentences(n, seed):
    """(tokens, tags) pairs in BIO: "PER lives in LOC ." and "PER flew to LOC ."."""
    rng, out = random.Random(seed), []
    for _ in range(n):
        per, loc = rng.choice(PER).split(), rng.choice(LOC).split()
        verb = rng.choice([["lives", "in"], ["flew", "to"]])
        words = per + verb + loc + ["."]
        tags = ["B-PER"] + ["I-PER"] * (len(per) - 1) + ["O", "O"] + ["B-LOC"] + ["I-LOC"] * (len(loc) - 1) + ["O"]
        out.append((words, tags))
    return out


def write_conll(pairs, path):
    path.write_text("".join("".join(f"{w} {t}\n" for w, t in zip(ws, ts)) + "\n" for ws, ts in pairs))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("api_tag")
    return write_conll(sentences(60, 1), d / "train.conll"), write_conll(sentences(20, 2), d / "test.conll"), d


def test_six_lines_train_predict_evaluate_save_load(files):
    train, test, d = files
    tagger = Tagger.fit(train, **TINY)
    assert tagger.predict(["Mary lives in Rome ."]) == [["B-PER", "O", "O", "B-LOC", "O"]]
    assert tagger.evaluate(test)["f1"] == 1.0
    tagger.save(d / "model")
    assert seqlab.load(d / "model").predict([["Bob", "flew", "to", "New", "York", "."]])[0][3:5] == ["B-LOC", "I-LOC"]


def test_fit_on_pairs_in_memory_and_plain_tags_line(tmp_path):
    pos = {"the": "DET", "a": "DET", "dog": "NOUN", "cat": "NOUN", "runs": "VERB", "sleeps": "VERB"}
    rng = random.Random(0)
    pairs = [(ws, [pos[w] for w in ws]) for ws in
             ([rng.choice(["the", "a"]), rng.choice(["dog", "cat"]), rng.choice(["runs", "sleeps"])]
              for _ in range(40))]
    lines = []
    tagger = Tagger.fit(pairs, **{**TINY, "log": lines.append, "char_features": "none", "crf": False})
    assert "tags 3 (plain labels, accuracy)" in lines[0] and "none as none" not in lines[0]
    assert tagger.results["dev_accuracy"] == 1.0 and "dev_f1" not in tagger.results
    assert tagger.evaluate(pairs[:5]) == {"sentences": 5, "accuracy": 1.0, "tokens": 15}
    assert tagger.predict(["a cat sleeps"]) == [["DET", "NOUN", "VERB"]]
    assert not list(tmp_path.iterdir())  # nothing written anywhere without out=


def test_cli_train_line_for_plain_tags(tmp_path, capsys):
    write_conll([(["the", "dog", "runs"], ["DET", "NOUN", "VERB"]), (["a", "cat"], ["DET", "NOUN"])] * 5,
                tmp_path / "pos.conll")
    assert main(["tag", "train", "--train", str(tmp_path / "pos.conll"), "--epochs", "1", "--hidden", "4",
                 "--embed", "4", "--char-features", "none", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "tags 3 (plain labels, accuracy)" in out and "(none as none)" not in out
    assert set(json.loads((tmp_path / "run" / "results.json").read_text())) >= {"dev_accuracy", "best_epoch"}


def test_config_round_trips_and_names_bad_parameters(files):
    cfg = TagConfig().with_values(hidden=32, crf=False, char_features="cnn", time="90s")
    assert cfg.train.time == 1.5 and cfg.train.lr == 4e-3 and cfg.model.bidirectional
    assert TagConfig.from_yaml(cfg.to_yaml()) == cfg
    assert TagConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"model\.word_dropout must be in \[0, 1\)"):
        TagConfig().with_values(word_dropout=1.0).validate()
    with pytest.raises(ConfigError, match=r"model\.char_out 15 must be even"):
        TagConfig().with_values(char_out=15).validate()
    with pytest.raises(ConfigError, match=r"data\.scheme must be one of"):
        Tagger.fit(files[0], scheme="bilou")
