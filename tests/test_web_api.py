"""`seqlab serve`'s JSON API through FastAPI's TestClient: every endpoint against a direct call of the
model (hidden states to 1e-6), and the guards: paths outside --models, limits, body size, no pickle."""

import copy
import itertools
import math
import pickle
import random

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from seqlab.cli import main  # noqa: E402
from seqlab.data.synthetic import contrast_sentiment, write_csv  # noqa: E402
from seqlab.decode.sampling import generate  # noqa: E402
from seqlab.models.tagger import tag_marginals  # noqa: E402
from seqlab.viz.model_trace import load_model  # noqa: E402
from seqlab.web.app import create_app  # noqa: E402

Q = ["--save-every", "0", "--threads", "1", "--batch", "16"]
SENTS = [("Mary lives in Berlin .", "B-PER O O B-LOC O"), ("Acme hired John Smith .", "B-ORG O B-PER I-PER O"),
         ("Paris is big .", "B-LOC O O O")]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One tiny run of each task under one --models directory (a few seconds of training)."""
    d = tmp_path_factory.mktemp("web")
    m = d / "models"
    write_csv(contrast_sentiment(64, seed=1), d / "train.csv")
    assert main(["classify", "train", "--train", str(d / "train.csv"), "--embed", "8", "--hidden", "6", "--layers", "2",
                 "--epochs", "1", *Q, "--out", str(m / "sent" / "clf")]) == 0
    rnd = random.Random(0)
    (d / "text.txt").write_text("\n".join(rnd.choice(["the cat sat.", "a dog ran."]) for _ in range(60)) + "\n")
    assert main(["lm", "train", "--data", str(d / "text.txt"), "--cell", "gru", "--embed", "8", "--hidden", "8",
                 "--seq-len", "8", "--epochs", "1", *Q[:4], "--batch", "2", "--out", str(m / "lm")]) == 0
    pairs = [("i am cold .", "j'ai froid ."), ("you are tall .", "tu es grand ."), ("he is cold .", "il a froid .")]
    (d / "pairs.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs * 8))
    assert main(["translate", "train", "--data", str(d / "pairs.tsv"), "--embed", "8", "--hidden", "8",
                 "--bidirectional", "--epochs", "1", *Q, "--out", str(m / "tr")]) == 0
    (d / "ner.txt").write_text("".join("".join(f"{w} {t}\n" for w, t in zip(s.split(), g.split())) + "\n"
                                       for s, g in SENTS * 6))
    assert main(["tag", "train", "--train", str(d / "ner.txt"), "--embed", "8", "--hidden", "8", "--char-features",
                 "none", "--epochs", "1", *Q, "--out", str(m / "ner")]) == 0
    t = np.arange(80)
    months = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in t]
    (d / "s.csv").write_text("month,y\n" + "".join(f"{m},{v:.4f}\n" for m, v in zip(months, np.sin(t / 3) + t / 40)))
    assert main(["forecast", "train", "--data", str(d / "s.csv"), "--lookback", "12",
                 "--horizon", "4", "--hidden", "6", "--epochs", "1", *Q, "--out", str(m / "fc")]) == 0
    return m


@pytest.fixture(scope="module")
def client(root):
    return TestClient(create_app(root))


def post(client, url, **body):
    r = client.post(url, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_models_lists_every_run_and_the_toy_cells(client):
    j = client.get("/api/models").json()
    assert {m["name"]: m["task"] for m in j["models"]} == {"sent/clf": "classify", "lm": "lm", "tr": "translate",
                                                           "ner": "tag", "fc": "forecast"}
    assert [t["name"] for t in j["toys"]] == ["toy:rnn", "toy:lstm", "toy:gru"]
    clf = next(m for m in j["models"] if m["name"] == "sent/clf")
    assert clf["cell"] == "lstm" and clf["layers"] == 2 and clf["has_metrics"]


def _encoder_check(j, encoder, x):
    """The response's per-layer h, outputs, h_n and c_n equal a direct call of the encoder to 1e-6."""
    with torch.no_grad():
        enc = encoder(x[None])
    np.testing.assert_allclose(j["outputs"], enc.outputs[0].numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(j["h_n"], enc.h_n[:, 0].numpy(), atol=1e-6, rtol=0)
    if enc.c_n is not None:
        np.testing.assert_allclose(j["c_n"], enc.c_n[:, 0].numpy(), atol=1e-6, rtol=0)
    top = np.concatenate([np.array(d["h"]) for d in j["layers"][-1]], 1)
    np.testing.assert_allclose(top, enc.outputs[0].numpy(), atol=1e-6, rtol=0)
    assert j["steps"] == len(j["tokens"]) == x.shape[0] == len(j["x"])


def test_unroll_classifier_equals_the_model(client, root):
    j = post(client, "/api/unroll", model="sent/clf", text="the plot was not good")
    _, pipe = load_model(root / "sent" / "clf")
    ids = pipe.encode(["the plot was not good"])[0]
    _encoder_check(j, pipe.model.encoder, ids)
    assert j["shapes"]["h_n"] == [2, 1, 6] and len(j["layers"][0][0]["gates"]) == 4
    probs = np.array(j["output"]["probs"])  # (time, classes): the answer if the text ended at each step
    np.testing.assert_allclose(probs[-1], pipe.predict_proba(["the plot was not good"])[0], atol=1e-6)
    with torch.no_grad():
        p2 = torch.softmax(pipe.model(ids[None, :2]), -1)[0].numpy()
    np.testing.assert_allclose(probs[1], p2, atol=1e-6)


def test_unroll_lm_tagger_and_seq2seq_encoders_equal_the_models(client, root):
    j = post(client, "/api/unroll", model="lm", text="the cat", top_k=3)
    _, lm = load_model(root / "lm")
    ids = lm.encode("the cat")
    _encoder_check(j, lm.model.encoder, ids)
    with torch.no_grad():
        p = torch.softmax(lm.model(ids[None])[0][0], -1)
    top = p.topk(3, -1)
    np.testing.assert_allclose(j["output"]["probs"], top.values.numpy(), atol=1e-6)
    assert j["output"]["top_tokens"][0] == [{" ": "␣"}.get(lm.vocab.itos[i], lm.vocab.itos[i])
                                            for i in top.indices[0].tolist()]

    j = post(client, "/api/unroll", model="tr", text="i am cold .")
    _, tr = load_model(root / "tr")
    _encoder_check(j, tr.model.encoder, tr.encode_src(["i am cold ."])[0])
    assert j["directions"] == 2 and j["output"]["kind"] == "none"

    j = post(client, "/api/unroll", model="ner", text="Mary lives in Paris .")
    _, tag = load_model(root / "ner")
    b = next(iter(tag.batches([["Mary", "lives", "in", "Paris", "."]], batch_size=1)))
    with torch.no_grad():
        feats = tag.model.features(b)[0]
    _encoder_check(j, tag.model.encoder, feats)
    np.testing.assert_allclose(np.array(j["output"]["probs"]).sum(1), 1.0, atol=1e-6)


def test_toy_unroll_equals_the_scratch_cell(client):
    from seqlab.scratch import make_cell
    from seqlab.scratch.explain import word_vectors

    for cell in ("rnn", "lstm", "gru"):
        j = post(client, "/api/unroll", model=f"toy:{cell}", text="not good at all", hidden=3, seed=2)
        vec = word_vectors("not good at all".split(), 2)
        x = np.stack([vec[w] for w in "not good at all".split()])
        out, state, _ = make_cell(cell, 2, 3, 1, 2).forward(x[None])
        np.testing.assert_allclose(j["outputs"], out[0], atol=1e-6)
        np.testing.assert_allclose(j["x"], x, atol=1e-7)
        d = j["layers"][0][0]
        if cell == "lstm":  # the gates and cell state say how h_t came about
            g = {k: np.array(v) for k, v in d["gates"].items()}
            c = np.array(d["c"])
            c_prev = np.vstack([np.zeros(3), c[:-1]])
            np.testing.assert_allclose(c, g["f"] * c_prev + g["i"] * g["g"], atol=1e-6)
            np.testing.assert_allclose(d["h"], g["o"] * np.tanh(c), atol=1e-6)
            np.testing.assert_allclose(j["c_n"], state[1][:, 0], atol=1e-6)
        np.testing.assert_allclose(np.array(j["output"]["probs"]).sum(1), 1.0, atol=1e-6)


def test_generate_equals_direct_sampling(client, root):
    j = post(client, "/api/generate", model="lm", prime="the", length=40, temperature=0.9, top_k=5, seed=7)
    _, lm = load_model(root / "lm")
    ids = generate(lm.model, lm.encode_prime("the"), 40, 1, 0.9, 5, 1.0, torch.Generator().manual_seed(7))[0]
    assert j["text"] == lm.decode(ids.tolist()) and len(j["tokens"]) == 40


def test_seq2seq_tag_forecast_and_curves_equal_direct_calls(client, root):
    j = post(client, "/api/seq2seq", model="tr", text="you are cold .", beam=2)
    _, tr = load_model(root / "tr")
    o = tr.generate(["you are cold ."], 2, attention=True)[0]
    assert j["output"] == o.text and j["src_tokens"] == o.src_tokens
    np.testing.assert_allclose(j["attention"], o.attention.numpy(), atol=1e-6)

    j = post(client, "/api/tag", model="ner", text="John lives in Paris .")
    _, tag = load_model(root / "ner")
    assert j["tags"] == tag.predict([["John", "lives", "in", "Paris", "."]])[0]
    b = next(iter(tag.batches([["John", "lives", "in", "Paris", "."]], batch_size=1)))
    np.testing.assert_allclose(j["probs"], tag_marginals(tag.model, b)[0].numpy(), atol=1e-6)

    j = post(client, "/api/forecast", model="fc", history=10)
    from seqlab.pipelines.forecast import READ_KEYS, load_series

    _, fc = load_model(root / "fc")
    s = load_series({k: fc.data.get(k) for k in READ_KEYS})
    origin = fc.data["test_start"]
    np.testing.assert_allclose(j["mean"], fc.forecast(s, np.array([origin])).mean[0], atol=1e-6)
    assert len(j["history"]) == 10 and j["origin"] == s.label(origin) and set(j["intervals"]) == {"0.8", "0.95"}

    from seqlab.viz.curves import read_log

    j = client.get("/api/curves", params={"run": ["sent/clf", "lm"]}).json()
    steps, _ = read_log(root / "lm")
    assert [r["name"] for r in j["runs"]] == ["sent/clf", "lm"]
    assert steps and j["runs"][1]["steps"] == [[r["step"], r["loss"]] for r in steps]


def test_crf_marginals_equal_brute_force(root):
    _, tag = load_model(root / "ner")
    words = ["Mary", "lives", "Berlin"]
    b = next(iter(tag.batches([words], batch_size=1)))
    got = tag_marginals(tag.model, b)[0].numpy()
    with torch.no_grad():
        em = tag.model(b)[0].double()
    crf, n = copy.deepcopy(tag.model.crf).requires_grad_(False), em.shape[1]
    want, total = np.zeros((3, n)), 0.0
    for path in itertools.product(range(n), repeat=3):
        s = crf.start[path[0]] + crf.end[path[-1]] + sum(em[t, k] for t, k in enumerate(path))
        s = math.exp(float(s + crf.transitions[path[0], path[1]] + crf.transitions[path[1], path[2]]))
        total += s
        for t, k in enumerate(path):
            want[t, k] += s
    np.testing.assert_allclose(got, want / total, atol=1e-6)


@pytest.mark.parametrize("name", ["../models", "/etc", "sent/../../x", "..", "C:\\x", "~root", "sent/./clf", "a\x00"])
def test_a_model_outside_models_is_refused(client, name):
    r = client.post("/api/unroll", json={"model": name, "text": "x"})
    assert r.status_code == 403 and "not a path inside --models" in r.json()["detail"]


def test_limits_and_errors_are_clear_4xx(client):
    cases = [({"model": "nope", "text": "x"}, 404, "no run 'nope'"),
             ({"model": "sent", "text": "x"}, 404, "no run 'sent'"),
             ({"model": "sent/clf", "text": "x" * 501}, 422, "text: String should have at most 500 characters"),
             ({"model": "sent/clf", "text": ""}, 422, "text: String should have at least 1 character"),
             ({"model": "sent/clf", "text": "x", "extra": 1}, 422, "extra: Extra inputs are not permitted"),
             ({"model": "fc", "text": "x"}, 400, "a 'forecast' model; this page shows"),
             ({"model": "toy:cnn", "text": "x"}, 400, "unknown toy cell 'cnn'")]
    for body, status, msg in cases:
        r = client.post("/api/unroll", json=body)
        assert r.status_code == status and msg in r.json()["detail"], (body, r.text)
    r = client.post("/api/generate", json={"model": "lm", "length": 501})
    assert r.status_code == 422 and r.json()["detail"].startswith("length:")
    r = client.post("/api/generate", json={"model": "sent/clf"})
    assert r.status_code == 400 and "this page shows lm models" in r.json()["detail"]
    big = b'{"model": "lm", "prime": "' + b"a" * 70_000 + b'"}'
    r = client.post("/api/generate", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over 64 KiB" in r.json()["detail"]
    r = client.post("/api/generate", content=iter([big[:40_000], big[40_000:]]),  # chunked: no Content-Length
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.get("/api/curves", params={"run": "../x"}).status_code == 403


def test_no_pickle_is_ever_loaded(root, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("pickle used")

    for mod, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")]:
        monkeypatch.setattr(mod, name, refuse)
    client = TestClient(create_app(root))  # a fresh app: every model is loaded again
    for body in [("/api/unroll", {"model": m, "text": "a b"}) for m in ("sent/clf", "lm", "tr", "ner")] + [
            ("/api/generate", {"model": "lm", "length": 5}), ("/api/seq2seq", {"model": "tr", "text": "i am"}),
            ("/api/tag", {"model": "ner", "text": "Mary lives"}), ("/api/forecast", {"model": "fc"})]:
        assert client.post(*body[:1], json=body[1]).status_code == 200, body


def test_served_on_loopback_by_default(monkeypatch, root, capsys):
    import seqlab.cli.serve as serve

    seen = {}
    monkeypatch.setattr(serve, "run_server", lambda app, sock, log_level: seen.update(
        app=app, host=sock.getsockname()[0], port=sock.getsockname()[1]))
    monkeypatch.setattr(serve, "bind", lambda host, port, real=serve.bind: real(host, 0))  # any free port
    assert main(["serve", "--models", str(root), "--port", "8000"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] > 0
    assert "http://127.0.0.1:8000" in capsys.readouterr().out
    c = TestClient(seen["app"], base_url="http://127.0.0.1:8000")
    assert c.get("/api/models").status_code == 200
    assert TestClient(seen["app"], base_url="http://evil.example").get("/api/models").status_code == 400  # rebinding
    page = c.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # nothing loaded from elsewhere
    assert main(["serve", "--models", str(root / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_every_response_carries_the_security_headers(root, monkeypatch):
    """The 413s (by Content-Length and chunked), the 500s, the other errors, the page and its files:
    all with the Content-Security-Policy and nosniff the page has."""
    import seqlab.web.api_unroll as api_unroll

    app = create_app(root)
    client = TestClient(app, raise_server_exceptions=False)
    big = b'{"model": "lm", "prime": "' + b"a" * 70_000 + b'"}'
    json_ = {"content-type": "application/json"}
    responses = {
        "200 page": client.get("/"), "200 static": client.get("/static/main.js"), "200": client.get("/api/models"),
        "404": client.post("/api/unroll", json={"model": "nope", "text": "x"}),
        "422": client.post("/api/unroll", json={"model": "toy:lstm", "text": "x", "hidden": 20}),
        "413": client.post("/api/generate", content=big, headers=json_),
        "413 chunked": client.post("/api/generate", content=iter([big[:40_000], big[40_000:]]), headers=json_),
        "400 host": TestClient(create_app(root, loopback_only=True), base_url="http://evil.example").get("/"),
    }

    def boom(*a, **k):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api_unroll, "toy_trace", boom)
    responses["500"] = client.post("/api/unroll", json={"model": "toy:lstm", "text": "x"})
    for what, r in responses.items():
        assert r.status_code == int(what.split()[0]), (what, r.status_code, r.text)
        assert "default-src 'self'" in r.headers.get("content-security-policy", ""), what
        assert r.headers.get("x-content-type-options") == "nosniff", what
        assert r.headers.get("referrer-policy") == "no-referrer", what
    assert responses["500"].json()["detail"] == "internal error (RuntimeError); the server's log has the details"
    assert "over 64 KiB" in responses["413"].json()["detail"]


def test_errors_name_the_pages_fields_not_cli_flags(client):
    r = client.post("/api/generate", json={"model": "lm", "prime": "Zé", "length": 5})
    detail = r.json()["detail"]
    assert r.status_code == 400 and detail.startswith("prime text has characters the model never saw"), detail
    assert "--" not in detail and "'Z'" in detail and "'é'" in detail
    r = client.post("/api/unroll", json={"model": "toy:lstm", "text": "x", "hidden": 20})
    assert r.status_code == 422 and r.json()["detail"] == "hidden: Input should be less than or equal to 16"
    from seqlab.web.app import for_the_page

    said = for_the_page("--prime x; --top-k 3; see --models; --primes")
    assert said == "prime text x; top-k 3; see --models; --primes"
