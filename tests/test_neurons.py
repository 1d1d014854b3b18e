"""Neuron search: the units matched to a selected span, a unit's top contexts across a corpus and its
trace are the unroller's own hidden states (batched corpus runs included), through the library and
the JSON API."""

import numpy as np
import pytest
from _tiny_text_models import tiny_models

from seqlab.errors import UserError
from seqlab.viz.model_trace import toy_trace, trace
from seqlab.viz.neurons import corpus_activations, match_units, top_contexts, unit_activations

LINES = ["not good at all", "very good indeed", "", "good fun", "not bad at all , really", "bad film"]


@pytest.fixture(scope="module")
def models():
    return tiny_models()


@pytest.mark.parametrize("name", ["classify", "classify_bi_rnn", "tag"])
def test_units_are_the_unrollers_states(models, name):
    pipe = models[name]
    text = "Mary lives in Paris ." if name == "tag" else "not good at all"
    for layer in (0, -1):
        a = unit_activations(pipe, text, layer)
        u = trace(pipe, text).unrolled
        want = np.concatenate([d.h for d in u.layers[layer]], 1)
        np.testing.assert_allclose(a.h, want, atol=1e-12)
    lines = [text, text.upper(), text[::-1]] if name == "tag" else [ln for ln in LINES if ln]
    for a, ln in zip(corpus_activations(pipe, lines), lines):  # batched by length: the same numbers
        np.testing.assert_allclose(a.h, unit_activations(pipe, ln).h, atol=1e-12)


def test_match_ranks_by_inside_minus_outside(models):
    a, units = match_units(models["classify_bi_rnn"], "it was not good at all", 2, 4, k=100)
    h = a.h
    score = h[2:4].mean(0) - np.concatenate([h[:2], h[4:]]).mean(0)
    assert [u.unit for u in units] == list(np.argsort(-score, kind="stable"))
    assert units[0].score == pytest.approx(score.max()) and len(units) == h.shape[1] == 10  # 2 directions x 5
    off = match_units(models["classify_bi_rnn"], "it was not good at all", 2, 4, k=1, sign=-1)[1][0]
    assert off.unit == int(np.argmin(score))
    whole = match_units("toy:lstm", "not good", 0, 2, k=1)[1][0]
    assert whole.outside is None and whole.score == pytest.approx(whole.inside)
    with pytest.raises(UserError, match="not a span"):
        match_units("toy:lstm", "not good", 1, 1)
    with pytest.raises(UserError, match="layer 3 is out of range"):
        unit_activations(models["classify"], "good", layer=3)


def test_top_contexts_are_the_highest_activations(models):
    pipe = models["classify"]
    hits = top_contexts(pipe, LINES, unit=2, k=5, width=2)
    acts = corpus_activations(pipe, [ln for ln in LINES if ln])
    every = sorted(((a.h[t, 2], i, t) for i, a in zip([0, 1, 3, 4, 5], acts) for t in range(len(a.tokens))),
                   key=lambda e: (-e[0], e[1], e[2]))[:5]  # ties ("not" starts two lines): the earlier line first
    assert [(c.line, c.position) for c in hits] == [(i, t) for _, i, t in every]
    assert [c.value for c in hits] == pytest.approx([v for v, _, _ in every])
    top = hits[0]
    toks = pipe.readout(LINES[top.line]).tokens
    assert top.token == toks[top.position] and top.left == toks[max(0, top.position - 2):top.position]
    toy = top_contexts("toy:gru", ["a b c", "b a"], unit=1, k=2, hidden=3)
    tr = [toy_trace("gru", t, 3).unrolled.layers[0][0].h[:, 1] for t in ("a b c", "b a")]
    assert toy[0].value == pytest.approx(max(max(tr[0]), max(tr[1])))
    with pytest.raises(UserError, match="unit 99 is out of range"):
        top_contexts(pipe, LINES, unit=99)
    with pytest.raises(UserError, match="corpus is empty"):
        top_contexts(pipe, ["", " "], unit=0)


def test_neuron_api(models, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from seqlab.web.app import create_app

    models["classify"].save(tmp_path / "clf" / "best")
    c = TestClient(create_app(tmp_path))
    body = {"model": "clf", "text": "not good at all", "start": 0, "end": 1, "k": 3}
    j = c.post("/api/neurons/match", json=body).json()
    a, units = match_units(models["classify"], "not good at all", 0, 1, k=3)
    assert [u["unit"] for u in j["units"]] == [u.unit for u in units] and j["tokens"] == a.tokens
    np.testing.assert_allclose(j["activations"][str(units[0].unit)], a.h[:, units[0].unit], rtol=1e-6)
    j = c.post("/api/neurons/contexts", json={"model": "clf", "corpus": "\n".join(LINES), "unit": 1, "k": 3}).json()
    assert [(h["line"], h["position"]) for h in j["contexts"]] == \
        [(h.line, h.position) for h in top_contexts(models["classify"], LINES, 1, k=3)]
    j = c.post("/api/neurons/trace", json={"model": "toy:lstm", "text": "not good", "unit": 2, "hidden": 3}).json()
    np.testing.assert_allclose(j["values"], toy_trace("lstm", "not good", 3).unrolled.layers[0][0].h[:, 2], rtol=1e-6)
    r = c.post("/api/neurons/match", json={"model": "clf", "text": "good", "start": 0})
    assert r.status_code == 422 and r.json() == {"detail": "end: Field required"}
    r = c.post("/api/neurons/trace", json={"model": "toy:lstm", "text": "a", "unit": 9})
    assert r.status_code == 400 and r.json() == {"detail": "unit 9 is out of range: this layer has units 0..3"}
