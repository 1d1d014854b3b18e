"""CTC decoding on hand-made posteriors (greedy, prefix beam search, lexicon, alignment) and WER/CER vs jiwer."""

import itertools
import math

import numpy as np
import pytest

from seqlab.decode.ctc import Lexicon, align, beam_search, confidences, greedy
from seqlab.metrics.speech import speech_metrics


def logp(rows):
    p = np.asarray(rows, dtype=np.float64)
    return np.log(p / p.sum(1, keepdims=True))


def collapse(path, blank=0):
    return tuple(c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1]))


def exact_labellings(lp):
    """p(labelling) summed over every path, by brute force."""
    out = {}
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        key = collapse(path)
        out[key] = out.get(key, 0.0) + math.exp(sum(lp[t, c] for t, c in enumerate(path)))
    return out


def test_greedy_merges_repeats_and_drops_blanks():
    #            blank  a    b
    lp = logp([[.1, .8, .1], [.1, .8, .1], [.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.1, .1, .8]])
    assert greedy(lp) == [1, 1, 2]  # "a a" (a blank between) then "b"
    assert greedy(logp([[.9, .05, .05]] * 3)) == []


def test_beam_search_finds_the_labelling_greedy_misses():
    lp = logp([[.6, .4], [.6, .4]])  # best path: blank blank -> ""; but p("a") = .16 + .24 + .24 = .64
    assert greedy(lp) == []
    (best, score), *_ = beam_search(lp, beam=4)
    assert best == [1] and score == pytest.approx(math.log(0.64))


def test_beam_search_scores_are_the_exact_sums_over_paths():
    rng = np.random.default_rng(3)
    for _ in range(5):
        lp = logp(rng.random((4, 3)) + 0.05)
        exact = exact_labellings(lp)
        top = sorted(exact.items(), key=lambda kv: -kv[1])[:3]
        got = beam_search(lp, beam=50, prune=-math.inf)[:3]
        assert [tuple(g[0]) for g in got] == [t[0] for t in top]
        for (_, s), (_, p) in zip(got, top):
            assert s == pytest.approx(math.log(p))


def test_a_lexicon_keeps_decoding_to_its_words():
    units = ["<blank>", " ", "a", "b", "c"]
    #            blank space  a    b    c
    lp = logp([[.05, .05, .8, .05, .05], [.05, .05, .05, .25, .6], [.9, .025, .025, .025, .025]])
    assert greedy(lp) == [2, 4]  # "ac", not a word
    lex = Lexicon(["ab", "c"], units)
    best = beam_search(lp, beam=8, lexicon=lex)[0][0]
    assert "".join(units[i] for i in best) == "ab"
    assert lex.ok([2]) and not lex.ok([4, 2]) and lex.complete([2, 3, 1, 4]) and not lex.complete([2])


def test_alignment_gives_each_label_its_frames():
    lp = logp([[.1, .8, .1], [.1, .8, .1], [.8, .1, .1], [.1, .1, .8]])
    assert align(lp, [1, 2]) == [(0, 2), (3, 4)]
    assert align(lp, [1, 1, 2]) is not None and align(lp[:2], [1, 1, 2]) is None  # "aa" needs a blank between
    assert align(lp, []) == []
    conf, spans = confidences(lp, [1, 2])
    assert conf == pytest.approx([0.8, 0.8]) and spans == [(0, 2), (3, 4)]


def test_speech_metrics_by_hand():
    m = speech_metrics(["seven", "one two three"], ["seven", "one three"])
    assert m["accuracy"] == 0.5 and m["wer"] == pytest.approx(1 / 4) and m["n"] == 2
    assert m["cer"] == pytest.approx(4 / 18) and m["deletions"] == 1


def _edits(a, b):
    d = np.arange(len(b) + 1)
    for i, x in enumerate(a, 1):
        prev, d[0] = d.copy(), i
        for j, y in enumerate(b, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (x != y))
    return int(d[-1])


def test_wer_and_cer_equal_jiwer_and_an_edit_distance():
    jiwer = pytest.importorskip("jiwer")
    rng = np.random.default_rng(0)
    words = ["zero", "one", "two", "three", "four"]
    refs = [" ".join(rng.choice(words, rng.integers(1, 6))) for _ in range(40)]
    hyps = [" ".join(rng.choice(words, rng.integers(0, 6))) for _ in range(40)]
    m = speech_metrics(refs, hyps)
    assert m["wer"] == pytest.approx(jiwer.wer(refs, hyps)) and m["cer"] == pytest.approx(jiwer.cer(refs, hyps))
    wer = sum(_edits(r.split(), h.split()) for r, h in zip(refs, hyps)) / sum(len(r.split()) for r in refs)
    cer = sum(_edits(r, h) for r, h in zip(refs, hyps)) / sum(len(r) for r in refs)
    assert m["wer"] == pytest.approx(wer) and m["cer"] == pytest.approx(cer)
