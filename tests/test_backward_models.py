"""The backward view of whole models (classify, lm, translate, tag; the toy cells): the chosen output
and its gradient with respect to every input vector equal autograd on the model's own float64 copy
(its fused torch encoder, head, attention, CRF), to 1e-8; the toy cells' NumPy BPTT equals autograd."""

import copy

import numpy as np
import pytest
import torch
from _tiny_text_models import tiny_models

from seqlab.errors import UserError
from seqlab.models.encoder import EncoderConfig, RecurrentEncoder
from seqlab.viz.backward import backward, choose, dir_grads, scalar, toy_backward
from seqlab.viz.model_trace import TOY_CLASSES, toy_parts
from seqlab.viz.unroll_torch import unroll_autograd

TEXTS = {"classify": "not good at all", "classify_bi_rnn": "really not bad", "lm": "not good at",
         "translate": "i am cold .", "tag": "Mary lives in Paris ."}


@pytest.fixture(scope="module")
def models():
    return tiny_models()


def _native(pipe, text, ch):
    """(L, dL/dx (time, input)) by autograd through the model's own float64 modules (no unroll)."""
    ro = pipe.readout(text)
    model = copy.deepcopy(ro.model).double().eval()
    enc = next(m for m, o in zip(model.modules(), ro.model.modules()) if o is ro.encoder)
    seen = {}
    if enc.embedding is not None:
        enc.embedding.register_forward_hook(lambda m, a, out: seen.setdefault("x", out.detach().requires_grad_(True)))
    else:
        def pre(m, args, kwargs):
            seen["x"] = args[0].detach().requires_grad_(True)
            return (seen["x"], *args[1:]), kwargs
        enc.register_forward_pre_hook(pre, with_kwargs=True)
    f = scalar(ro.run(model, 1), ch)
    (dx,) = torch.autograd.grad(f.sum(), seen["x"])
    return f.item(), dx[0].numpy()


@pytest.mark.parametrize("name", list(TEXTS))
@pytest.mark.parametrize("pick", [{}, {"position": "all", "measure": "loss"}, {"position": 0, "measure": "logit"}])
def test_model_gradients_equal_autograd_on_the_model(models, name, pick):
    pipe, text = models[name], TEXTS[name]
    b = backward(pipe, text, **pick)
    ro = pipe.readout(text)
    with torch.no_grad():
        logits = ro.run(copy.deepcopy(ro.model).double().eval(), 1)[0]
    ch = choose(logits, ro.positions, ro.labels, ro.targets, ro.position, ro.total, ro.regression, **pick)
    value, dx = _native(pipe, text, ch)
    assert abs(b.value - value) < 1e-10
    np.testing.assert_allclose(b.dx, dx, atol=1e-8, rtol=0)
    assert np.abs(b.dx).max() > 1e-6  # something flowed back
    enc = pipe.model.encoder.cfg
    assert len(b.layers) == enc.layers and all(len(d) == enc.directions for d in b.layers)
    assert b.layers[0][0].dh.shape == (len(b.tokens), enc.hidden)


def test_an_lm_output_at_step_t_gets_no_gradient_from_later_steps(models):
    b = backward(models["lm"], "not good at all", position=2)  # steps: <eos> (the line start) not good at all
    dh = b.layers[0][0].dh
    assert np.all(dh[3:] == 0) and np.all(np.linalg.norm(dh[:3], axis=1) > 0)
    assert b.target_name == "at" and b.what.startswith("p(at)")  # the token that follows "good"


def test_choices_are_named_and_bad_ones_refused(models):
    clf = models["classify"]
    assert backward(clf, "good fun", target="positive").target_name == "positive"
    assert backward(clf, "good fun", target=0).target_name == clf.labels.itos[0]
    for kw, msg in [({"target": "meh"}, "not one of the model's outputs"), ({"position": 3}, "out of range"),
                    ({"measure": "odds"}, "unknown measure"),
                    ({"position": "all", "target": "positive"}, "one output position")]:
        with pytest.raises(UserError, match=msg):
            backward(clf, "good fun", **kw)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("pick", [{}, {"position": 1, "target": "negative", "measure": "loss"}, {"position": "all"}])
def test_toy_cells_numpy_bptt_equals_autograd(cell, pick):
    b = toy_backward(cell, "not good at all", hidden=3, seed=2, **pick)
    layer, words, x, w, bias = toy_parts(cell, "not good at all", 3, 2)
    enc = RecurrentEncoder(EncoderConfig(input_dim=2, hidden=3, cell=cell)).double().eval()
    enc.rnns[0].load_state_dict({k: torch.from_numpy(v) for k, v in layer.params.items()})
    xt = torch.from_numpy(x)[None].requires_grad_(True)
    out, traces = unroll_autograd(enc, xt, keep=True)
    z = out.outputs @ torch.from_numpy(w).T + torch.from_numpy(bias)  # (1, time, classes)
    T = len(words)
    ch = choose(z[0].detach(), [""] * T, list(TOY_CLASSES), [-1] * T, T - 1, list(range(T)), False, **pick)
    f = scalar(z, ch)
    f.sum().backward()
    assert abs(b.value - f.item()) < 1e-12
    g = dir_grads(traces[0][0])
    ours = b.layers[0][0]
    np.testing.assert_allclose(ours.dh, g.dh, atol=1e-8, rtol=0)
    if cell == "lstm":
        np.testing.assert_allclose(ours.dc, g.dc, atol=1e-8, rtol=0)
    for k in g.dgates:
        np.testing.assert_allclose(ours.dgates[k], g.dgates[k], atol=1e-8, rtol=0)
    for k in g.via:
        np.testing.assert_allclose(ours.via[k], g.via[k], atol=1e-8, rtol=0)
    np.testing.assert_allclose(b.dx, xt.grad[0].numpy(), atol=1e-8, rtol=0)
    np.testing.assert_allclose(b.gxi, (x * b.dx).sum(1), atol=1e-15)


def test_the_vanishing_demo_reads_the_same_bptt():
    from seqlab.scratch.bptt_trace import bptt_trace
    from seqlab.scratch.vanishing import hidden_gradients, make_layer

    rng = np.random.default_rng(0)
    for cell in ("rnn", "lstm", "gru"):
        layer = make_layer(cell, 3, 5, rho=1.2)
        x, v = rng.normal(size=(2, 30, 3)), rng.normal(size=5)
        d_out = np.zeros((2, 30, 5))
        d_out[:, -1] = v
        _, _, cache = layer._forward(x, (None,) * layer.states)
        recs, _ = bptt_trace(layer, cache, d_out)
        np.testing.assert_allclose(recs[0]["dh"], hidden_gradients(layer, x, v), atol=1e-12, rtol=0)


def test_plot_backward_and_saliency_commands(models, tmp_path, capsys):
    from seqlab.cli import main

    models["classify"].save(tmp_path / "clf")
    assert main(["plot", "backward", "--model", str(tmp_path / "clf"), "not good at all", "--target", "negative",
                 "--out", str(tmp_path / "b.png")]) == 0
    assert main(["plot", "saliency", "--model", "toy:lstm", "not good at all", "--position", "all", "--steps", "16",
                 "--out", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "L = p(negative) at the whole text" in out and "layer 1: ||dL/dh_t||" in out
    assert "sum of integrated gradients" in out and "-log p(target_t)" in out
    assert (tmp_path / "b.png").stat().st_size > 0 and (tmp_path / "s.png").stat().st_size > 0
    bad = ["plot", "backward", "--model", "toy:lstm", "a b", "--out", str(tmp_path / "x.png"), "--position"]
    assert main([*bad, "7"]) != 0
    assert "output position 7 is out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*bad, "last"])
    assert "expected a whole number or 'all'" in capsys.readouterr().err
