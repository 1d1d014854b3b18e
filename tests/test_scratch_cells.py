"""seqlab.scratch: the NumPy cells are right by two independent measures.

1. Finite differences: every hand-written gradient (parameters, inputs, initial states) matches
   central differences to a relative error below 1e-6, for shapes down to one step and one sequence.
2. PyTorch: with the same weights, input and initial state, outputs, final states and every gradient
   equal torch.nn.RNN/LSTM/GRU's autograd in float64 to 1e-8.
Plus the pieces around the cells: softmax cross-entropy, the output layer, clipping and optimizers.
"""

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlab.scratch import GRU, LSTM, RNN, Adagrad, Adam, OutputLayer, clip_grad_norm, gradcheck, softmax_cross_entropy
from seqlab.scratch.gradcheck import numerical_gradient, relative_error

torch.set_num_threads(1)

CELLS = {  # name -> (ours, torch's)
    "rnn": (RNN, torch.nn.RNN),
    "rnn_relu": (partial(RNN, nonlinearity="relu"), partial(torch.nn.RNN, nonlinearity="relu")),
    "lstm": (LSTM, torch.nn.LSTM),
    "gru": (GRU, torch.nn.GRU),
}
# the gradcheck's difference quotients need more than float64 to resolve gradient entries ~1e-6
# (see gradcheck.py); where long double is no wider than float64, expect float64's noise instead
EXTENDED = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps
GRADCHECK_TOL = 1e-6 if EXTENDED else 1e-4


# ---- 1. finite differences -----------------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch,time,layers", [(1, 1, 1), (1, 1, 2), (3, 1, 2), (1, 5, 1), (2, 4, 2)])
def test_gradients_match_finite_differences(cell, batch, time, layers):
    layer = CELLS[cell][0](3, 4, layers, seed=batch + 10 * time + 100 * layers)
    errors = gradcheck(layer, batch, time, seed=7 * batch + time)
    expected = set(layer.params) | {"x", "h0"} | ({"c0"} if cell == "lstm" else set())
    assert set(errors) == expected
    bad = {k: v for k, v in errors.items() if not v < GRADCHECK_TOL}
    assert not bad, f"relative errors above {GRADCHECK_TOL}: {bad}"


def test_gradcheck_catches_a_wrong_backward():
    class BrokenGRU(GRU):
        def cell_backward(self, d_state, step_cache):
            d_xi, d_hh, skip = super().cell_backward(d_state, step_cache)
            return d_xi, d_hh, (skip[0] * 0.5,)  # halve the z * h_{t-1} path

    errors = gradcheck(BrokenGRU(2, 3, 1), batch=2, time=3, seed=0)
    assert errors["h0"] > 1e-2 and errors["weight_hh_l0"] > 1e-2


# ---- 2. equality with torch ------------------------------------------------------------------------

def _pair(cell, layers, input_size=3, hidden=5, seed=0):
    """A torch module (float64, batch_first) and our layer with its weights copied over."""
    ours_cls, torch_cls = CELLS[cell]
    torch.manual_seed(seed)
    ref = torch_cls(input_size, hidden, layers, batch_first=True).double()
    ours = ours_cls(input_size, hidden, layers)
    ours.load_torch_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    return ref, ours


def _close(ours, theirs, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.shape == theirs.shape, what
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8, err_msg=what)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_forward_and_backward_equal_torch(cell, layers):
    ref, ours = _pair(cell, layers)
    rng = np.random.default_rng(layers)
    B, T, H = 4, 6, 5
    x = rng.normal(size=(B, T, 3))
    s0 = [rng.normal(size=(layers, B, H)) for _ in range(ours.states)]
    R = rng.normal(size=(B, T, H))
    S = [rng.normal(size=(layers, B, H)) for _ in range(ours.states)]

    xt = torch.tensor(x, requires_grad=True)
    s0t = [torch.tensor(s, requires_grad=True) for s in s0]
    out_t, state_t = ref(xt, tuple(s0t) if cell == "lstm" else s0t[0])
    finals_t = state_t if cell == "lstm" else (state_t,)
    loss = (out_t * torch.tensor(R)).sum() + sum((f * torch.tensor(s)).sum() for f, s in zip(finals_t, S))
    loss.backward()

    out, state, cache = ours.forward(x, *s0)
    finals = state if cell == "lstm" else (state,)
    grads, dx, *d_s0 = ours.backward(R, tuple(S) if cell == "lstm" else S[0], cache)

    _close(out, out_t, "outputs")
    for name, f, ft in zip(("h_n", "c_n"), finals, finals_t):
        _close(f, ft, name)
    assert list(grads) == [k for k, _ in ref.named_parameters()]
    for name, p in ref.named_parameters():
        _close(grads[name], p.grad, f"grad {name}")
    _close(dx, xt.grad, "grad x")
    for name, d, st in zip(("h0", "c0"), d_s0, s0t):
        _close(d, st.grad, f"grad {name}")


@pytest.mark.parametrize("cell", CELLS)
def test_zero_initial_state_and_no_state_gradient(cell):
    """h0=None means zeros (as in torch); d_state=None means the loss does not read h_n."""
    ref, ours = _pair(cell, 2, seed=1)
    x = np.random.default_rng(0).normal(size=(2, 3, 3))
    R = np.random.default_rng(1).normal(size=(2, 3, 5))
    xt = torch.tensor(x, requires_grad=True)
    out_t, _ = ref(xt)
    (out_t * torch.tensor(R)).sum().backward()
    out, _, cache = ours.forward(x)
    grads, dx, *d_s0 = ours.backward(R, None, cache)
    _close(out, out_t, "outputs")
    _close(dx, xt.grad, "grad x")
    for name, p in ref.named_parameters():
        _close(grads[name], p.grad, f"grad {name}")
    if cell == "lstm":  # only d h_n given: c_n does not enter the loss
        _, _, cache = ours.forward(x)
        grads2, _, _, _ = ours.backward(R, (np.zeros((2, 2, 5)), None), cache)
        for name in grads:
            np.testing.assert_array_equal(grads[name], grads2[name])


@pytest.mark.parametrize("cell", CELLS)
def test_weights_round_trip_and_init(cell):
    ours = CELLS[cell][0](3, 16, 2, seed=5)
    ref = CELLS[cell][1](3, 16, 2, batch_first=True).double()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})  # strict: same names/shapes
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    _close(ours.forward(x)[0], ref(torch.tensor(x))[0], "outputs after copying our weights into torch")
    k = 1 / np.sqrt(16)
    assert all(np.all(np.abs(p) <= k) for p in ours.parameters())
    assert [n for n, _ in ours.named_parameters()] == list(ref.state_dict())
    with pytest.raises(KeyError):
        ours.load_torch_state_dict({"weight_ih_l0": ours.params["weight_ih_l0"]})
    f32 = CELLS[cell][0](3, 16, 2, seed=5, dtype=np.float32)
    out32 = f32.forward(x)[0]
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ours.forward(x)[0], atol=1e-5)


def test_no_torch_in_scratch():
    src = Path(__file__).resolve().parents[1] / "src" / "seqlab" / "scratch"
    for f in src.glob("*.py"):
        text = f.read_text()
        assert "import torch" not in text and "from torch" not in text, f


# ---- 3. loss, output layer, clipping, optimizers ---------------------------------------------------

def test_softmax_cross_entropy_matches_torch_and_finite_differences():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 7)) * 3
    targets = rng.integers(0, 7, size=(3, 4))
    mask = (rng.random((3, 4)) < 0.7).astype(float)
    loss, d_logits = softmax_cross_entropy(logits, targets, mask)

    lt = torch.tensor(logits, requires_grad=True)
    per = torch.nn.functional.cross_entropy(lt.reshape(-1, 7), torch.tensor(targets).reshape(-1), reduction="none")
    ref = (per * torch.tensor(mask).reshape(-1)).sum() / mask.sum()
    ref.backward()
    assert abs(loss - ref.item()) < 1e-12
    np.testing.assert_allclose(d_logits, lt.grad.numpy(), rtol=0, atol=1e-12)
    num = numerical_gradient(lambda: softmax_cross_entropy(logits, targets, mask)[0], logits, 1e-6)
    np.testing.assert_allclose(d_logits, num, rtol=0, atol=1e-8)
    assert np.all(d_logits[mask == 0] == 0)  # padding gets no gradient
    full, _ = softmax_cross_entropy(logits, targets)  # no mask: the plain mean
    assert abs(full - per.mean().item()) < 1e-12


def test_output_layer_gradients():
    out = OutputLayer(5, 7, seed=1)
    h = np.random.default_rng(0).normal(size=(2, 3, 5))
    targets = np.random.default_rng(1).integers(0, 7, size=(2, 3))

    def loss():
        return softmax_cross_entropy(out.forward(h)[0], targets)[0]

    logits, cache = out.forward(h)
    grads, dh = out.backward(softmax_cross_entropy(logits, targets)[1], cache)
    for name, p in out.params.items():
        assert relative_error(grads[name], numerical_gradient(loss, p)) < 1e-6
    assert relative_error(dh, numerical_gradient(loss, h)) < 1e-6


def _grads(seed):
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(5,))}


def test_clip_grad_norm():
    g = _grads(0)
    norm = np.sqrt(sum(np.sum(v * v) for v in g.values()))
    small = {k: v.copy() for k, v in g.items()}
    assert clip_grad_norm(small, norm * 2) == pytest.approx(norm, rel=1e-12)
    assert all(np.array_equal(small[k], g[k]) for k in g)  # under the limit: untouched
    assert clip_grad_norm(g, 1.0) == pytest.approx(norm, rel=1e-12)
    assert np.sqrt(sum(np.sum(v * v) for v in g.values())) == pytest.approx(1.0, rel=1e-5)
    ts = [torch.tensor(v) for v in _grads(0).values()]
    for t in ts:
        t.grad = t.clone()
    torch.nn.utils.clip_grad_norm_(ts, 1.0)
    for t, v in zip(ts, g.values()):
        np.testing.assert_allclose(v, t.grad.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["adam", "adagrad"])
def test_optimizers_match_torch(name):
    params = _grads(1)
    ts = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    if name == "adam":
        ours, ref = Adam(params, lr=0.01), torch.optim.Adam(ts.values(), lr=0.01)
    else:
        ours, ref = Adagrad(params, lr=0.1), torch.optim.Adagrad(ts.values(), lr=0.1)
    for step in range(5):
        g = _grads(10 + step)
        for k, t in ts.items():
            t.grad = torch.tensor(g[k])
        ours.step(g)
        ref.step()
    for k, t in ts.items():
        np.testing.assert_allclose(params[k], t.detach().numpy(), rtol=0, atol=1e-12)


def test_a_tiny_language_model_learns():
    """All the pieces together: an LSTM + output layer memorises a short string with Adam."""
    text = "hello world, hello rnn"
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    V = len(chars)
    x = np.eye(V)[ids[:-1]][None]  # (1, time, vocab) one-hot
    y = ids[1:][None]  # (1, time)
    lstm, out = LSTM(V, 24, seed=0), OutputLayer(24, V, seed=1)
    opt = Adam({**lstm.params, **out.params}, lr=0.02)
    losses = []
    for _ in range(150):
        h, _, cache = lstm.forward(x)
        logits, out_cache = out.forward(h)
        loss, d_logits = softmax_cross_entropy(logits, y)
        g_out, dh = out.backward(d_logits, out_cache)
        g_rnn, _, _, _ = lstm.backward(dh, None, cache)
        grads = {**g_rnn, **g_out}
        clip_grad_norm(grads, 5.0)
        opt.step(grads)
        losses.append(loss)
    assert losses[0] > 2.0 and losses[-1] < 0.1
