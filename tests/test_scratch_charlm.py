"""seqlab.scratch.charlm and explain: the character LM trainer and the step-by-step printout.

(a) Truncated BPTT carries the state: two chunks with the state handed over give exactly the
    logits and final state of one forward over the whole sequence, for every cell and 2 layers.
(b) A briefly trained CharLM beats the unigram entropy on held-out text by a wide margin.
(c) Sampling is reproducible per seed, and incremental sampling (prime fed once, one step per
    character) sees the same next-character distribution as re-running the whole prefix.
(d) explain_forward prints the shapes, and its h_t values are those of the cell's own forward.
"""

import numpy as np
import pytest

from seqlab.scratch import GRU, LSTM, RNN
from seqlab.scratch.charlm import CharLM, evaluate, sample, train_char_lm, unigram_entropy_bits
from seqlab.scratch.explain import explain_forward, fmt, word_vectors
from seqlab.scratch.optim import softmax

TEXT = "the cat sat on the mat. the dog sat on the log. " * 30


# ---- (a) state carried across TBPTT chunks ---------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_two_chunks_with_carried_state_equal_one_forward(cell):
    model = CharLM("abcdefgh", cell, hidden=6, layers=2, seed=3)
    ids = np.random.default_rng(0).integers(0, model.vocab_size, (3, 11))  # (batch, time)
    whole, state_whole, _ = model.forward(ids)
    first, state, _ = model.forward(ids[:, :4])
    second, state, _ = model.forward(ids[:, 4:], state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=0, atol=1e-12)
    assert len(state) == (2 if cell == "lstm" else 1)
    for a, b in zip(state, state_whole):
        assert a.shape == (2, 3, 6)  # (layers, batch, hidden)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # a fresh zero state in the second chunk is *not* the same computation
    restarted, _, _ = model.forward(ids[:, 4:])
    assert not np.allclose(restarted, whole[:, 4:])


def test_evaluate_carries_state_across_chunks():
    model = CharLM(TEXT, "gru", hidden=8, seed=1)
    ids = model.encode(TEXT[:300])
    assert evaluate(model, ids, chunk=37) == pytest.approx(evaluate(model, ids, chunk=1000), abs=1e-12)


def test_encode_decode_and_unknown_characters():
    model = CharLM("hello world", "rnn", hidden=4)
    assert model.chars == sorted(set("hello world"))
    assert model.decode(model.encode("low droll")) == "low droll"
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        model.encode("help")


# ---- (b) training beats the unigram baseline --------------------------------------------------------

def test_training_beats_unigram_entropy():
    logs = []
    r = train_char_lm(TEXT, cell="lstm", hidden=32, seq_len=16, batch=8, steps=150, lr=1e-2, seed=0,
                      sample_every=75, sample_len=20, log=logs.append)
    unigram = unigram_entropy_bits(r["model"].encode(TEXT), r["vocab_size"])
    assert r["unigram_bits"] == pytest.approx(unigram)
    assert r["valid_bits"] == pytest.approx(r["valid_nats"] / np.log(2))
    assert r["valid_bits"] < 0.5 * r["unigram_bits"], (r["valid_bits"], r["unigram_bits"])
    assert r["history"][-1][1] < r["history"][0][1]
    assert r["steps"] == 150 and len(r["history"]) == 150
    assert [s for s, _ in r["samples"]] == [75, 150] and all(len(t) == 20 for _, t in r["samples"])
    assert any("unigram entropy" in line for line in logs)


def test_time_budget_and_bad_arguments():
    r = train_char_lm(TEXT, cell="rnn", hidden=8, steps=10**6, time_budget=0.2, sample_every=0,
                      valid_fraction=0, log=None)
    assert 0 < r["steps"] < 10**6 and r["valid_bits"] is None
    with pytest.raises(ValueError, match="lower batch"):
        train_char_lm("abcdef", batch=8, log=None, valid_fraction=0)
    with pytest.raises(ValueError, match="optimizer"):
        train_char_lm(TEXT, optimizer="sgd", log=None)


# ---- (c) sampling ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_model():
    model = CharLM(TEXT, "lstm", hidden=16, layers=2, seed=5)
    for p in model.params.values():  # larger weights than the init, so distributions are far from uniform
        p *= 3
    return model


def test_sampling_is_reproducible(small_model):
    a = sample(small_model, "the ", 60, 1.0, np.random.default_rng(7))
    b = sample(small_model, "the ", 60, 1.0, np.random.default_rng(7))
    c = sample(small_model, "the ", 60, 1.0, np.random.default_rng(8))
    assert a == b and a != c and len(a) == 60 and set(a) <= set(TEXT)
    greedy = sample(small_model, "the ", 30, 0.0, np.random.default_rng(1))
    assert greedy == sample(small_model, "the ", 30, 0.0, np.random.default_rng(2))


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_incremental_sampling_matches_rerunning_the_prefix(small_model, temperature):
    prime = "the c"
    text, probs = sample(small_model, prime, 25, temperature, np.random.default_rng(0), return_probs=True)
    assert probs.shape == (25, small_model.vocab_size)
    for k in range(25):
        logits, _, _ = small_model.forward(small_model.encode(prime + text[:k])[None, :])
        np.testing.assert_allclose(probs[k], softmax(logits[0, -1] / temperature), rtol=0, atol=1e-12)


# ---- (d) explain_forward ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cell,layer_cls", [("rnn", RNN), ("lstm", LSTM), ("gru", GRU)])
def test_explain_forward_prints_shapes_and_the_real_numbers(cell, layer_cls):
    text = explain_forward(cell, "I love NLP", hidden=3, seed=0)
    for shape in ["(batch, time, input) = (1, 3, 2)", "(batch, time, hidden) = (1, 3, 3)",
                  "(layers, batch, hidden) = (1, 1, 3)", "(time, batch, input) = (3, 1, 2)",
                  "(batch, time, input) = (2, 3, 2)", "(1, 2)", "(1, 3)"]:
        assert shape in text, shape
    vectors = word_vectors("I love NLP".split(), seed=0)
    x = np.stack([vectors[w] for w in "I love NLP".split()])[None]
    outputs, state, _ = layer_cls(2, 3, 1, seed=0).forward(x)
    h_lines = [line for line in text.splitlines() if line.lstrip().startswith("h_t =")]
    assert len(h_lines) == 3
    for t in range(3):
        assert fmt(outputs[0, t]) in h_lines[t] and "(1, 3)" in h_lines[t]
    h_n = state[0] if cell == "lstm" else state
    assert "outputs[:, -1] == h_n[-1]: True" in text and fmt(h_n[0, 0]) in text
    if cell == "lstm":
        assert fmt(state[1][0, 0]) in text  # c_n
    assert "equal: True" in text and "<pad>" in text and "batch_first" in text


def test_explain_forward_rejects_unknown_cell():
    with pytest.raises(ValueError, match="cell must be"):
        explain_forward("transformer")
