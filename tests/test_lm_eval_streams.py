"""Validation as parallel streams with the state carried: one stream is the exact one-sequence figure, more
streams are close to it (each reads a burn-in first), --valid-tokens caps it, `lm eval --exact` keeps it."""

import json
import math
import random

import pytest
import torch

from seqlab.cli import main
from seqlab.models.encoder import EncoderConfig
from seqlab.models.language_model import (
    BURN_IN,
    MIN_STREAM,
    LanguageModel,
    LMConfig,
    sequence_nll,
    stream_layout,
    stream_nll,
)
from seqlab.pipelines import LM
from seqlab.pipelines.lm_corpus import MIN_VALID_TOKENS, Validation, auto_valid_tokens

LINES = ["the cat sat on the mat.", "a dog ran in the fog.", "we sing all day long."]
TINY = dict(hidden=24, embed=24, seq_len=16, batch=8, dropout=0.0, save_every=0, lr=0.01, log=lambda s: None)


def _lm(cell="lstm", vocab=23):
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=vocab, embed_dim=12, hidden=16, layers=2, cell=cell)
    return LanguageModel(LMConfig(enc, tie_weights=True)).double().eval()


def _text(n, seed=0):
    rnd = random.Random(seed)
    return "\n".join(rnd.choice(LINES) for _ in range(n)) + "\n"


def test_the_layout_covers_every_target_once_or_samples_the_text_evenly():
    for n_all, streams in ((10, 32), (5000, 4), (100_003, 32)):
        lay = stream_layout(n_all, streams)
        assert len(lay) == max(1, min(streams, n_all // MIN_STREAM))
        covered = [t for _, first, end in lay for t in range(first, end)]
        assert covered == list(range(n_all))  # consecutive parts, each target once
        assert lay[0][0] == 0 and all(first - begin == min(BURN_IN, first) for begin, first, _ in lay)
    lay = stream_layout(100_000, 8, max_tokens=16_000)
    assert sum(end - first for _, first, end in lay) == 16_000
    assert [first for _, first, _ in lay] == [r * 12_500 for r in range(8)]  # spread over the whole text


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_stream_is_the_exact_figure_and_more_are_close(cell):
    model = _lm(cell)
    ids = torch.randint(4, 23, (9001,), generator=torch.Generator().manual_seed(1))
    exact, n = sequence_nll(model, ids)
    one, m, rows = stream_nll(model, ids, streams=1)
    assert rows == 1 and m == n and math.isclose(one, exact, rel_tol=1e-12)
    for streams in (2, 8):
        total, m, rows = stream_nll(model, ids, streams=streams)
        assert rows == streams and m == n
        assert abs(total - exact) / n < 1e-6  # with a burn-in, a fresh state costs next to nothing
        cold, _, _ = stream_nll(model, ids, streams=streams, burn_in=0)
        assert abs(total - exact) <= abs(cold - exact)
    capped, m, _ = stream_nll(model, ids.numpy().astype("uint8"), streams=4, max_tokens=4096)  # a numpy array too
    assert m == 4096 and abs(capped / m - exact / n) < 0.05


def test_valid_tokens_caps_validation_and_the_final_figures_reuse_the_best(tmp_path, monkeypatch):
    calls = []
    orig = Validation.scores
    monkeypatch.setattr(Validation, "scores", lambda self, m: calls.append(1) or orig(self, m))
    text = _text(2400)  # 54k characters: 5.4k held out
    lm = LM.fit(text, epochs=2, valid_tokens=3000, **{**TINY, "batch": 32})
    r = lm.results
    assert r["valid_scored_tokens"] == 3000 and r["valid_streams"] == 2 and lm.config.train.valid_tokens == 3000
    assert len(calls) == 2  # one per epoch; best/'s figures are those of its evaluation, not a third pass
    full = LM.fit(text, epochs=1, **{**TINY, "batch": 32}).results
    assert full["valid_scored_tokens"] == len(text) - int(len(text) * 0.9) - 1
    m = lm.evaluate(text, max_tokens=2500)
    assert m["tokens"] == 2500 and m["streams"] == 2
    assert lm.evaluate(text, exact=True, max_tokens=2500)["tokens"] == 2500


def test_the_auto_cap_follows_the_budget_and_the_model_size():
    small = LanguageModel(LMConfig(EncoderConfig(vocab_size=70, embed_dim=256, hidden=256)))
    big = LanguageModel(LMConfig(EncoderConfig(vocab_size=70, embed_dim=512, hidden=512, layers=2)))
    n = 10**8
    assert auto_valid_tokens(small, n, 0.0) == 0  # no budget: all of it
    assert auto_valid_tokens(small, MIN_VALID_TOKENS, 60.0) == 0  # a small held-out text: all of it
    assert auto_valid_tokens(small, n, 1.0) == MIN_VALID_TOKENS  # the floor
    caps = [auto_valid_tokens(m, n, t) for m in (small, big) for t in (30.0, 60.0)]
    assert caps[1] == pytest.approx(2 * caps[0], rel=0.05) and caps[2] < caps[0] / 4 and caps[2] >= MIN_VALID_TOKENS
    assert auto_valid_tokens(small, 2 * caps[1], 60.0) == caps[1] == auto_valid_tokens(small, n, 60.0)  # settings only
    assert LM.fit(_text(300), time=0.02, **TINY).config.train.valid_tokens == 0  # the config keeps "auto"


def test_cli_eval_exact_and_streams(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(_text(1500))
    assert main(["lm", "train", "--data", str(tmp_path / "t.txt"), "--hidden", "24", "--embed", "24", "--batch", "8",
                 "--seq-len", "16", "--epochs", "1", "--save-every", "0", "--valid-streams", "4", "--out",
                 str(tmp_path / "run")]) == 0
    capsys.readouterr()
    out = {}
    for extra in ([], ["--exact"], ["--streams", "1"]):
        assert main(["lm", "eval", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "t.txt"), "--json",
                     *extra]) == 0
        out[" ".join(extra)] = json.loads(capsys.readouterr().out)
    assert out[""]["streams"] == 32 and out["--exact"]["streams"] == 1
    assert out[""]["tokens"] == out["--exact"]["tokens"] == len((tmp_path / "t.txt").read_text()) - 1
    assert abs(out[""]["loss"] - out["--exact"]["loss"]) < 1e-3
    assert math.isclose(out["--streams 1"]["loss"], out["--exact"]["loss"], rel_tol=1e-6)
    assert main(["lm", "eval", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "t.txt")]) == 0
    assert "(32 parallel streams)" in capsys.readouterr().out
    assert main(["lm", "eval", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "t.txt"), "--streams",
                 "0"]) == 2
    assert "--streams must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_parallel_validation_of_a_tiny_shakespeare_model_is_within_0_01_nats(shared_data, tmp_path):
    text = (shared_data / "char_lm" / "tinyshakespeare.txt").read_text()
    lm = LM.fit(text, time=0.5, threads=1, hidden=128, embed=128, log=lambda s: None)
    held = text[int(len(text) * 0.9):]
    exact, par = lm.evaluate(held, exact=True), lm.evaluate(held)
    assert par["streams"] == 32 and par["tokens"] == exact["tokens"]
    assert abs(par["loss"] - exact["loss"]) < 0.01, (par, exact)
