"""/api/backward, /api/saliency and /api/vanishing: the numbers are the library's (to the 7 significant
digits sent), and bad input is a readable one-sentence JSON error (422 for a field out of its limits)."""

import numpy as np
import pytest
from _tiny_text_models import tiny_models

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from seqlab.scratch.vanishing import gradient_vs_distance  # noqa: E402
from seqlab.viz.backward import backward, toy_backward  # noqa: E402
from seqlab.viz.saliency import saliency  # noqa: E402
from seqlab.web.app import create_app  # noqa: E402

SIG = dict(rtol=1e-6, atol=1e-300)  # 7 significant digits


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("bw") / "models"
    models = tiny_models()
    for name, pipe in models.items():
        pipe.save(root / name / "best")  # a run directory, as `seqlab serve --models` lists them
    return TestClient(create_app(root)), models


def post(client, url, **body):
    r = client.post(url, json=body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("name,text,pick", [("classify", "not good at all", {"target": "negative"}),
                                            ("lm", "not good at", {"position": 1, "measure": "loss"}),
                                            ("translate", "i am cold .", {"position": "all"}),
                                            ("tag", "Mary lives in Paris .", {"position": 0, "measure": "logit"})])
def test_backward_and_saliency_responses_are_the_librarys(served, name, text, pick):
    client, models = served
    j = post(client, "/api/backward", model=name, text=text, **pick)
    b = backward(models[name], text, **pick)
    assert j["output"]["what"] == b.what and j["output"]["position"] == b.position
    np.testing.assert_allclose(j["output"]["value"], b.value, **SIG)
    assert j["tokens"] == b.tokens and j["num_layers"] == len(b.layers) and j["directions"] == len(b.layers[0])
    for jl, bl in zip(j["layers"], b.layers):
        for jd, bd in zip(jl, bl):
            n = bd.norms()
            np.testing.assert_allclose(jd["dh"], bd.dh, **SIG)
            np.testing.assert_allclose(jd["norm"]["dh"], n["dh"], **SIG)
            assert set(jd["norm"]["via"]) == set(n["via"])
            for k, v in n["via"].items():
                np.testing.assert_allclose(jd["norm"]["via"][k], v, **SIG)
            assert (jd["dc"] is None) == (bd.dc is None)
    np.testing.assert_allclose(j["gxi"], b.gxi, **SIG)
    s = saliency(models[name], text, **pick, steps=16)
    js = post(client, "/api/saliency", model=name, text=text, steps=16, **pick)
    np.testing.assert_allclose(js["ig"], s.ig, **SIG)
    np.testing.assert_allclose(js["gxi"], s.gxi, **SIG)
    assert js["tokens"] == s.tokens and abs(sum(js["ig"]) - (js["value"] - js["baseline_value"])) < 1e-3


def test_toy_cells_and_the_vanishing_demo(served):
    client, _ = served
    j = post(client, "/api/backward", model="toy:gru", text="not good at all", hidden=3, seed=2, position=1)
    b = toy_backward("gru", "not good at all", 3, 2, position=1)
    np.testing.assert_allclose(j["layers"][0][0]["dh"], b.layers[0][0].dh, **SIG)
    assert j["output"]["labels"] == ["negative", "positive"] and j["output"]["target"] == b.target_name
    v = post(client, "/api/vanishing", cells=["rnn", "lstm"], rho=1.3, length=40, hidden=8, clip=2.0)
    ref = gradient_vs_distance(("rnn", "lstm"), 40, 8, (1.3,), 8, 0, 2.0)
    for c in ("rnn", "lstm"):
        np.testing.assert_allclose(v["cells"][c]["norms"], ref["norms"][c][1.3], **SIG)
    assert v["distance"] == list(range(40)) and max(v["cells"]["rnn"]["norms"]) <= 2.0 + 1e-9
    big = post(client, "/api/vanishing", cells=["rnn_relu"], rho=3.0, length=300)  # exploding, still JSON
    assert big["cells"]["rnn_relu"]["norms"][-1] > 1e100


@pytest.mark.parametrize("url,body,status,detail", [
    ("/api/backward", {"model": "toy:lstm", "text": "a b", "measure": "odds"}, 422,
     "measure: Input should be 'prob', 'loss' or 'logit'"),
    ("/api/backward", {"model": "toy:lstm", "text": "a b", "position": "first"}, 422,
     "position: must be a whole number (negative counts from the end) or 'all'"),
    ("/api/backward", {"model": "toy:lstm", "text": "a b", "hidden": 99}, 422,
     "hidden: Input should be less than or equal to 16"),
    ("/api/saliency", {"model": "toy:lstm", "text": "a b", "steps": 0}, 422,
     "steps: Input should be greater than or equal to 1"),
    ("/api/vanishing", {"cells": ["elman"], "rho": 1.0}, 422,
     "cells.0: Input should be 'rnn', 'rnn_relu', 'lstm' or 'gru'"),
    ("/api/vanishing", {"rho": 0, "length": 1}, 422,
     "rho: Input should be greater than 0; length: Input should be greater than or equal to 2"),
    ("/api/backward", {"model": "toy:lstm", "text": "a b", "position": 5}, 400,
     "output position 5 is out of range: this text has positions 0..1"),
    ("/api/backward", {"model": "classify", "text": "good", "target": "meh"}, 400,
     "target 'meh' is not one of the model's outputs ('negative', 'positive')"),
    ("/api/saliency", {"model": "classify", "text": "good", "position": "all", "target": "negative"}, 400,
     "a target belongs to one output position; pick a position or drop the target"),
    ("/api/backward", {"model": "nothing", "text": "good"}, 404,
     "no run 'nothing' under --models; see /api/models for the ones there are"),
    ("/api/backward", {"model": "../x", "text": "good"}, 403,
     "model '../x' is not a path inside --models; name one listed by /api/models"),
])
def test_bad_input_is_one_readable_sentence(served, url, body, status, detail):
    client, _ = served
    r = client.post(url, json=body)
    assert r.status_code == status and r.json() == {"detail": detail}
