"""Input saliency: gradient x input is the derivative of the output along each token's own vector
(checked by central differences), integrated gradients are complete (their sum is the output minus
the baseline's output) and equal Captum's where Captum is installed."""

import numpy as np
import pytest
import torch
from _tiny_text_models import tiny_models

from seqlab.errors import UserError
from seqlab.viz.backward import ModelGraph, scalar
from seqlab.viz.model_trace import toy_parts
from seqlab.viz.saliency import gauss_legendre, saliency, toy_saliency

TEXTS = {"classify": "not good at all", "classify_bi_rnn": "really not bad", "lm": "not good at",
         "translate": "i am cold .", "tag": "Mary lives in Paris ."}
EPS = 1e-5


@pytest.fixture(scope="module")
def models():
    return tiny_models()


def _f(graph, ch, x):
    with torch.no_grad():
        return scalar(graph.logits(torch.from_numpy(x)[None])[0], ch).item()


def _choice(graph, **pick):
    with torch.no_grad():
        return graph.choose(graph.logits(graph.x[None])[0][0], **pick)


@pytest.mark.parametrize("name", list(TEXTS))
@pytest.mark.parametrize("pick", [{}, {"position": "all", "measure": "loss"}])
def test_gradient_x_input_is_a_finite_difference_and_ig_is_complete(models, name, pick):
    pipe, text = models[name], TEXTS[name]
    s = saliency(pipe, text, steps=64, **pick)
    g = ModelGraph(pipe, text)
    ch = _choice(g, **pick)
    x = g.x.numpy()
    assert s.value == pytest.approx(_f(g, ch, x), abs=1e-12)
    assert s.baseline_value == pytest.approx(_f(g, ch, np.zeros_like(x)), abs=1e-12)
    for t in range(len(s.tokens)):  # d/d eps of L(x with x_t scaled by 1 + eps), at eps = 0
        up, down = x.copy(), x.copy()
        up[t] *= 1 + EPS
        down[t] *= 1 - EPS
        assert s.gxi[t] == pytest.approx((_f(g, ch, up) - _f(g, ch, down)) / (2 * EPS), abs=1e-8)
    assert abs(s.gap) < 1e-3 * max(1.0, abs(s.value - s.baseline_value))  # completeness
    assert s.ig.shape == s.gxi.shape == s.grad_norm.shape == (len(s.tokens),)


def test_completeness_is_exact_for_a_smooth_model_and_improves_with_steps(models):
    smooth = saliency(models["translate"], TEXTS["translate"], steps=32)
    assert abs(smooth.gap) < 1e-9
    kinked = [abs(saliency(models["classify"], TEXTS["classify"], steps=n).gap) for n in (4, 64)]
    assert kinked[1] < 1e-3 and kinked[1] <= kinked[0]  # max pooling has kinks: slower, but converging


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_toy_saliency(cell):
    s = toy_saliency(cell, "not good at all", hidden=3, seed=1, target="negative", measure="prob")
    layer, words, x, w, b = toy_parts(cell, "not good at all", 3, 1)

    def f(xx):
        z = layer.forward(xx[None])[0][0, -1] @ w.T + b
        p = np.exp(z - z.max())
        return (p / p.sum())[0]

    assert s.value == pytest.approx(f(x), abs=1e-14) and s.target_name == "negative"
    for t in range(len(words)):
        up, down = x.copy(), x.copy()
        up[t] *= 1 + EPS
        down[t] *= 1 - EPS
        assert s.gxi[t] == pytest.approx((f(up) - f(down)) / (2 * EPS), abs=1e-9)
    assert abs(s.gap) < 1e-9


def test_integrated_gradients_equal_captum(models):
    captum = pytest.importorskip("captum.attr")
    for name in ("classify", "translate", "tag"):
        pipe, text = models[name], TEXTS[name]
        s = saliency(pipe, text, steps=20)
        g = ModelGraph(pipe, text)
        ch = _choice(g)
        ig = captum.IntegratedGradients(lambda xb, g=g, ch=ch: scalar(g.logits(xb)[0], ch))
        attr = ig.attribute(g.x[None], baselines=torch.zeros_like(g.x[None]), n_steps=20, method="gausslegendre")
        np.testing.assert_allclose(s.ig, attr[0].sum(-1).detach().numpy(), atol=1e-10, rtol=0)


def test_quadrature_and_limits(models):
    a, w = gauss_legendre(5)
    assert np.all((0 < a) & (a < 1)) and w.sum() == pytest.approx(1.0)
    assert np.dot(w, a ** 7) == pytest.approx(1 / 8)  # exact for polynomials of degree 2n - 1
    for steps in (0, 1000):
        with pytest.raises(UserError, match="steps must be between"):
            saliency(models["classify"], "good", steps=steps)
