"""Vanishing and exploding gradients (seqlab.scratch.vanishing) and the memory tasks (seqlab.pipelines.memory).

1. The measured ||dL/dh_t||: geometric decay for a small-radius RNN, slow decay for a large one,
   explosion for a relu RNN that clipping caps, and an LSTM gradient orders of magnitude larger.
2. The per-step gradient that `_backward(return_d_hidden=True)` returns is dL/dh_t: it matches
   central differences of a loss where h_t itself is nudged.
3. The adding and copy tasks' data, the memoryless baselines, and a small LSTM learning the adding task.
"""

from functools import partial

import numpy as np
import pytest
import torch

from seqlab.pipelines.memory import adding_task, baseline, copy_task, train_one
from seqlab.scratch.gradcheck import numerical_gradient
from seqlab.scratch.vanishing import (
    format_table,
    gradient_vs_distance,
    make_layer,
    plot_gradient_vs_distance,
    spectral_radius,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def result():
    return gradient_vs_distance(cells=("rnn", "lstm", "gru"), radii=(0.5, 1.0, 1.5), length=100)


# ---- 1. gradient against distance ----------------------------------------------------------------

def test_small_radius_rnn_decays_geometrically(result):
    norm = result["norms"]["rnn"][0.5]
    assert norm.shape == (100,) and norm[0] == pytest.approx(1.0)  # ||v|| = 1 at the loss
    d = np.arange(5, 100)
    slope, intercept = np.polyfit(d, np.log(norm[d]), 1)
    residual = np.log(norm[d]) - (slope * d + intercept)
    assert np.exp(slope) < 0.6  # at most 0.5 * tanh' per step
    assert np.max(np.abs(residual)) < 1.0  # a straight line on a log scale: geometric
    assert norm[99] < 1e-25


def test_large_radius_tanh_rnn_decays_much_more_slowly(result):
    small, large = result["norms"]["rnn"][0.5], result["norms"]["rnn"][1.5]
    assert large[50] > 1e10 * small[50]
    assert large[99] > 1e-3  # tanh saturation keeps it from exploding, but it hardly decays


def test_lstm_gradient_survives_where_the_rnn_vanishes(result):
    rnn = result["norms"]["rnn"][0.5][50]
    for rho in result["radii"]:
        assert result["norms"]["lstm"][rho][50] > 1e6 * rnn
        assert result["norms"]["gru"][rho][50] > 1e6 * rnn


def test_relu_rnn_explodes_and_clipping_caps_it_but_cannot_restore_vanished():
    plain = gradient_vs_distance(cells=("rnn_relu", "rnn"), radii=(0.5, 1.5), length=60, batch=8)
    clipped = gradient_vs_distance(cells=("rnn_relu", "rnn"), radii=(0.5, 1.5), length=60, batch=8, clip=1.0)
    assert plain["norms"]["rnn_relu"][1.5][59] > 1e4
    assert clipped["norms"]["rnn_relu"][1.5].max() <= 1.0 + 1e-12
    assert clipped["norms"]["rnn_relu"][1.5][59] > 0.1  # capped, not killed
    for cell in ("rnn_relu", "rnn"):  # a shrinking gradient never reaches the cap: clipping leaves it as it was
        np.testing.assert_array_equal(clipped["norms"][cell][0.5], plain["norms"][cell][0.5])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_make_layer_sets_the_spectral_radius_of_every_gate_block(cell):
    layer = make_layer(cell, 3, 6, rho=0.7)
    w = layer.params["weight_hh_l0"]
    for g in range(layer.gates):
        assert spectral_radius(w[g * 6:(g + 1) * 6]) == pytest.approx(0.7)


def test_table_and_plot(result, tmp_path):
    table = format_table(result)
    assert len(table.splitlines()) == 2 + 3 * 3 and "d=99" in table
    path = plot_gradient_vs_distance(result, tmp_path / "v.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


# ---- 2. dL/dh_t against finite differences -----------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_per_step_hidden_gradient_matches_finite_differences(cell, layers):
    from seqlab.scratch.vanishing import CELLS

    batch, time, hidden = 2, 4, 3
    layer = CELLS[cell](2, hidden, layers, seed=layers)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch, time, 2))
    s0 = tuple(rng.normal(size=(layers, batch, hidden)) for _ in range(layer.states))
    R = rng.normal(size=(batch, time, hidden))
    S = tuple(rng.normal(size=(layers, batch, hidden)) for _ in range(layer.states))
    _, _, cache = layer._forward(x, s0)
    *_, d_hidden = layer._backward(R, S, cache, return_d_hidden=True)
    assert d_hidden.shape == (batch, time, hidden)

    nudged = layer.astype(np.longdouble)  # finite differences in extended precision, as gradcheck does

    def loss_with(t, e):
        """L = sum(outputs * R) + sum(final states * S), with e added to the top layer's h_t."""
        out1, st1, _ = nudged._forward(x[:, :t + 1], s0)  # up to step t
        states = [s.copy() for s in st1]
        states[0][-1] = out1[:, -1] + e
        loss = np.sum(out1[:, :t] * R[:, :t]) + np.sum(states[0][-1] * R[:, t])
        if t + 1 < time:  # the rest of the sequence, from the nudged state
            out2, states, _ = nudged._forward(x[:, t + 1:], tuple(states))
            loss += np.sum(out2 * R[:, t + 1:])
        return loss + sum(np.sum(f * s) for f, s in zip(states, S))

    for t in range(time):
        e = np.zeros((batch, hidden), np.longdouble)
        numeric = numerical_gradient(partial(loss_with, t, e), e)
        np.testing.assert_allclose(d_hidden[:, t], numeric.astype(np.float64), rtol=1e-6, atol=1e-9,
                                   err_msg=f"dL/dh_t at t={t}")


# ---- 3. memory tasks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [2, 7, 30])
def test_adding_task_data(length):
    x, y = adding_task(500, length, seed=3)
    assert x.shape == (500, length, 2) and y.shape == (500,) and x.dtype == torch.float32
    values, marker = x[..., 0].numpy(), x[..., 1].numpy()
    assert values.min() >= 0 and values.max() <= 1
    assert np.isin(marker, [0.0, 1.0]).all()
    half = length // 2
    assert (marker[:, :half].sum(1) == 1).all() and (marker[:, half:].sum(1) == 1).all()
    np.testing.assert_allclose(y.numpy(), (values * marker).sum(1), rtol=1e-6)
    x2, y2 = adding_task(500, length, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_adding_baseline_is_one_sixth():
    _, y = adding_task(200_000, 10, seed=0)
    assert baseline("adding", y) == pytest.approx(1 / 6, abs=0.003)
    assert float(y.mean()) == pytest.approx(1.0, abs=0.005)  # so 1.0 is the best constant guess


def test_copy_task_data():
    x, y = copy_task(50, 6, seed=0, symbols=5, memorize=4)
    assert x.shape == (50, 4 + 6 + 4, 7) and y.shape == (50, 4)
    ids = x.argmax(-1).numpy()
    assert (x.sum(-1) == 1).all()  # one-hot
    np.testing.assert_array_equal(ids[:, :4], y.numpy() + 1)  # the symbols first
    assert (ids[:, 4:9] == 0).all() and (ids[:, 9] == 6).all() and (ids[:, 10:] == 0).all()  # blanks, go, blanks
    assert baseline("copy", y, symbols=5) == pytest.approx(0.2)


def test_small_lstm_learns_the_adding_task():
    row = train_one("adding", "lstm", length=10, hidden=32, steps=2000, batch=32, lr=1e-2, seed=0,
                    time_budget=20, test_size=1000, log=None)
    assert row["value"] < 0.25 * row["baseline"], row
    assert row["baseline"] == pytest.approx(1 / 6, abs=0.02)
