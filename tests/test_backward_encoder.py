"""The backward view's numbers for a torch encoder (autograd through the recomputed float64 unroll)
against autograd on the torch module itself, step by step through torch's own cells, and against the
scratch cells' NumPy BPTT: rnn/lstm/gru, bidirectional, stacked, layer norm + residual, to 1e-8."""

import numpy as np
import pytest
import torch
from torch import nn

from seqlab.models.encoder import EncoderConfig, RecurrentEncoder
from seqlab.scratch import make_cell
from seqlab.scratch.bptt_trace import bptt_trace
from seqlab.viz.backward import dir_grads
from seqlab.viz.unroll_torch import unroll_autograd

TOL = dict(atol=1e-8, rtol=0)
CONFIGS = {"one layer": {}, "stacked": {"layers": 2}, "bidirectional": {"bidirectional": True},
           "stacked bidirectional": {"layers": 2, "bidirectional": True},
           "deep, layer norm, residual": {"layers": 3, "bidirectional": True, "layer_norm": True, "residual": True}}
T, IN, H = 7, 3, 4


def _encoder(cell, kw, seed=0):
    torch.manual_seed(seed)
    return RecurrentEncoder(EncoderConfig(input_dim=IN, hidden=H, cell=cell, **kw)).double().eval()


def _loss_weights(enc, seed=1):
    """R (1, time, dirs*hidden), S (layers*dirs, 1, hidden), Sc like S: L = sum(outputs R) + sum(h_n S) (+ c_n Sc)."""
    g = torch.Generator().manual_seed(seed)
    c = enc.cfg
    shape = (c.layers * c.directions, 1, H)
    return (torch.randn(1, T, c.directions * H, generator=g, dtype=torch.float64),
            torch.randn(*shape, generator=g, dtype=torch.float64),
            torch.randn(*shape, generator=g, dtype=torch.float64))


def _loss(out, R, S, Sc):
    L = (out.outputs * R).sum() + (out.h_n * S).sum()
    return L + (out.c_n * Sc).sum() if out.c_n is not None else L


def _torch_cell(rnn, k, d):
    """torch's own one-step cell sharing the weights of layer k, direction d of a torch RNN module."""
    cls = {nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell}.get(type(rnn))
    cell = cls(rnn.input_size if k == 0 else rnn.hidden_size * (1 + rnn.bidirectional), H) if cls else \
        nn.RNNCell(rnn.input_size if k == 0 else rnn.hidden_size * (1 + rnn.bidirectional), H,
                   nonlinearity=rnn.nonlinearity)
    sfx = f"_l{k}" + ("_reverse" if d else "")
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        setattr(cell, name, getattr(rnn, name + sfx))
    return cell


def _stepped_by_torch_cells(enc, x):
    """The encoder run one step at a time through nn.LSTMCell/GRUCell/RNNCell: (EncoderOutput-like
    (outputs, h_n, c_n), per layer and direction the lists of h_t and c_t tensors, grads retained)."""
    states, h = [], x
    finals_h, finals_c = [], []
    for i, rnn in enumerate(enc.rnns):
        inp = h
        for k in range(rnn.num_layers):
            outs = []
            for d in range(1 + rnn.bidirectional):
                cell, ht = _torch_cell(rnn, k, d), x.new_zeros(1, H)
                ct = x.new_zeros(1, H)
                hs, cs = [None] * T, [None] * T
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    if isinstance(cell, nn.LSTMCell):
                        ht, ct = cell(h[:, t], (ht, ct))
                        ct.retain_grad()
                        cs[t] = ct
                    else:
                        ht = cell(h[:, t], ht)
                    ht.retain_grad()
                    hs[t] = ht
                states.append((hs, cs if isinstance(cell, nn.LSTMCell) else None))
                finals_h.append(hs[0 if d else -1])
                finals_c.append(cs[0 if d else -1])
                outs.append(torch.stack(hs, 1))
            h = torch.cat(outs, -1)
        if enc.norms is not None:
            h = enc.norms[i](h)
        if enc.cfg.residual and i > 0:
            h = h + inp
    c_n = torch.stack(finals_c) if finals_c[0] is not None else None
    return type("Out", (), {"outputs": h, "h_n": torch.stack(finals_h), "c_n": c_n})(), states


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_unrolled_gradients_equal_autograd_on_the_torch_module(cell, config):
    enc = _encoder(cell, CONFIGS[config])
    R, S, Sc = _loss_weights(enc)
    x0 = torch.randn(1, T, IN, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    x = x0.clone().requires_grad_(True)  # ours: the recomputed steps
    out, traces = unroll_autograd(enc, x, keep=True)
    L = _loss(out, R, S, Sc)
    L.backward()
    ours = [dir_grads(tr) for dirs in traces for tr in dirs]
    ours_params = {n: p.grad.clone() for n, p in enc.named_parameters()}

    enc.zero_grad()  # the torch module itself, fused over all steps
    xm = x0.clone().requires_grad_(True)
    Lm = _loss(enc(xm), R, S, Sc)
    Lm.backward()
    assert abs(L.item() - Lm.item()) < 1e-10
    np.testing.assert_allclose(x.grad.numpy(), xm.grad.numpy(), **TOL)
    for n, p in enc.named_parameters():
        np.testing.assert_allclose(ours_params[n].numpy(), p.grad.numpy(), **TOL, err_msg=n)

    xs = x0.clone().requires_grad_(True)  # torch's one-step cells: every step's dL/dh_t and dL/dc_t
    ref, states = _stepped_by_torch_cells(enc, xs)
    _loss(ref, R, S, Sc).backward()
    assert len(states) == len(ours)
    for g, (hs, cs) in zip(ours, states):
        np.testing.assert_allclose(g.dh, torch.cat([h.grad for h in hs]).numpy(), **TOL)
        if cell == "lstm":
            np.testing.assert_allclose(g.dc, torch.cat([c.grad for c in cs]).numpy(), **TOL)
        else:
            assert g.dc is None and cs is None


def _scratch(cell, rnn, layers, reverse=False):
    """A scratch NumPy cell holding the weights of `rnn`'s forward (or reverse) direction."""
    layer = make_cell(cell, IN, H, layers)
    sfx = "_reverse" if reverse else ""
    layer.load_torch_state_dict({f"{kind}_l{k}": getattr(rnn, f"{kind}_l{k}{sfx}").detach().numpy()
                                 for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for k in range(layers)})
    return layer


def _same(ours, rec, flip=False):
    f = (lambda a: a[::-1]) if flip else (lambda a: a)
    np.testing.assert_allclose(ours.dh, f(rec["dh"][0]), **TOL)
    if rec["dc"] is not None:
        np.testing.assert_allclose(ours.dc, f(rec["dc"][0]), **TOL)
    assert set(ours.dgates) == set(rec["dgates"]) and set(ours.via) == set(rec["via"])
    for g in rec["dgates"]:
        np.testing.assert_allclose(ours.dgates[g], f(rec["dgates"][g][0]), **TOL, err_msg=g)
    for k in rec["via"]:
        np.testing.assert_allclose(ours.via[k], f(rec["via"][k][0]), **TOL, err_msg=k)


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("config", ["one layer", "stacked", "bidirectional"])
def test_per_gate_contributions_equal_the_numpy_bptt(cell, config):
    """dh, dc, the gates' gradients and the per-path split, in torch, against the scratch cell's BPTT
    (a backward direction is a scratch cell reading the reversed sequence)."""
    enc = _encoder(cell, CONFIGS[config], seed=3)
    R, S, Sc = _loss_weights(enc, seed=4)
    x = torch.randn(1, T, IN, generator=torch.Generator().manual_seed(5), dtype=torch.float64).requires_grad_(True)
    out, traces = unroll_autograd(enc, x, keep=True)
    _loss(out, R, S, Sc).backward()
    rnn, lstm = enc.rnns[0], cell == "lstm"
    if config == "bidirectional":
        for d, flip in ((0, False), (1, True)):
            layer = _scratch(cell, rnn, 1, reverse=flip)
            xs = x.detach().numpy()[:, ::-1] if flip else x.detach().numpy()
            r = R[:, :, d * H:(d + 1) * H].numpy()
            _, _, cache = layer.forward(xs)
            d_state = (S[d:d + 1].numpy(), Sc[d:d + 1].numpy()) if lstm else (S[d:d + 1].numpy(),)
            recs, _ = bptt_trace(layer, cache, r[:, ::-1] if flip else r, d_state)
            _same(dir_grads(traces[0][d]), recs[0], flip)
        return
    layers = enc.cfg.layers
    layer = _scratch(cell, rnn, layers)
    _, _, cache = layer.forward(x.detach().numpy())
    recs, dx = bptt_trace(layer, cache, R.numpy(), (S.numpy(), Sc.numpy()) if lstm else (S.numpy(),))
    for k in range(layers):
        _same(dir_grads(traces[k][0]), recs[k])
    np.testing.assert_allclose(dx, x.grad.numpy(), **TOL)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_paths_add_up_to_the_gradient_of_the_step_before(cell):
    """dL/dh_{t-1} = (what the output at t-1 sends) + the gate paths (+ the GRU's skip); for the LSTM
    dL/dc_{t-1} = f_t dL/dc_t + dL/dh_{t-1} o_{t-1} (1 - tanh^2 c_{t-1})."""
    enc = _encoder(cell, {}, seed=6)
    R, _, _ = _loss_weights(enc, seed=7)
    x = torch.randn(1, T, IN, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    out, traces = unroll_autograd(enc, x, keep=True)
    (out.outputs * R).sum().backward()
    g, tr = dir_grads(traces[0][0]), traces[0][0]
    paths = sum(v for k, v in g.via.items() if k != "cell")
    np.testing.assert_allclose(g.dh[:-1], R[0, :-1].numpy() + paths[1:], **TOL)
    if cell == "lstm":
        o = torch.cat(tr.act["o"]).detach().numpy()
        c = torch.cat(tr.c).detach().numpy()
        through_h = g.dh[:-1] * o[:-1] * (1 - np.tanh(c[:-1]) ** 2)
        np.testing.assert_allclose(g.dc[:-1], g.via["cell"][1:] + through_h, **TOL)
