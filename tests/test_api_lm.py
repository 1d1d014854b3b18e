"""The language model's Python API: train, generate, evaluate, save, load in a few public lines."""

import math
import random

import pytest
import yaml

import seqlab
from seqlab.pipelines import LM, ConfigError, LMConfig

TINY = dict(hidden=48, embed=48, seq_len=24, batch=8, dropout=0.0, patience=0, lr=0.01, save_every=0)
LINES = ["the cat sat on the mat.", "a dog ran in the fog.", "we sing all day long."]


@pytest.fixture(scope="module")
def text():
    rnd = random.Random(0)
    return "\n".join(rnd.choice(LINES) for _ in range(330)) + "\n"


def test_six_lines_train_generate_evaluate_save_load(text, tmp_path):
    (tmp_path / "text.txt").write_text(text)
    lm = LM.fit(tmp_path / "text.txt", epochs=7, **TINY, log=lambda s: None)
    assert lm.generate("the c", length=20, greedy=True).startswith("the cat sat on the mat")
    assert lm.evaluate(tmp_path / "text.txt")["bits_per_char"] < 2.0
    lm.save(tmp_path / "model")
    assert seqlab.load(tmp_path / "model").generate("the c", length=20, greedy=True) == lm.predict(
        "the c", length=20, greedy=True)


def test_fit_from_a_string_in_memory_with_budget_defaults(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lm = LM.fit(text, text[:400], epochs=1, seq_len=16, batch=4, log=lambda s: None)
    assert not list(tmp_path.iterdir())  # nothing written anywhere without out=
    assert lm.config.model.hidden == 256 and lm.config.model.embed == 256  # resolved and recorded
    assert lm.model.cfg.tied and set(lm.results) >= {"valid_loss", "valid_perplexity", "valid_bits_per_char"}
    m = lm.evaluate("the cat sat on the mat.\n")
    assert math.isclose(m["perplexity"], math.exp(m["loss"])) and m["unk_rate"] == 0
    a, b = lm.generate(length=30, seed=3, n=2), lm.generate(length=30, seed=3, n=2)
    assert a == b and len(a) == 2 and all(len(s) == 30 for s in a)
    assert LMConfig().with_values(time=15).resolved().model.hidden == 512
    assert LMConfig().with_values(time=5, hidden=128).resolved().model.embed == 128


def test_config_round_trips_and_names_bad_parameters():
    cfg = LMConfig().with_values(hidden=64, seq_len=100, time="90s", level="word")
    assert cfg.train.time == 1.5 and cfg.train.lr == 6e-3 and cfg.train.schedule == "cosine"
    assert LMConfig.from_yaml(cfg.to_yaml()) == cfg
    assert LMConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    assert LMConfig.from_dict({"train": {"epochs": 2}}).train.batch == 32  # a partial section keeps LM defaults
    with pytest.raises(ConfigError, match=r"data\.seq_len must be at least 1"):
        LMConfig().with_values(seq_len=0).validate()
    with pytest.raises(ConfigError, match=r"model\.bidirectional would let the language model read"):
        LM.fit("some text\n" * 50, bidirectional=True)
    with pytest.raises(ConfigError, match=r"seq_lenn is not a setting"):
        LM.fit("some text\n" * 50, seq_lenn=3)
