"""The unroller's arithmetic (seqlab.viz.unroll) against torch's own modules, and `seqlab plot`."""

import numpy as np
import pytest
import torch

from seqlab.cli import main
from seqlab.data.synthetic import contrast_sentiment, write_csv
from seqlab.models.encoder import EncoderConfig, RecurrentEncoder
from seqlab.scratch import GRU, LSTM, RNN
from seqlab.viz.unroll import unroll_encoder, unroll_scratch


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "rnn_relu"])
@pytest.mark.parametrize("kw", [{}, {"bidirectional": True, "layers": 2},
                                {"layers": 3, "bidirectional": True, "layer_norm": True, "residual": True}])
def test_unrolled_steps_equal_the_torch_module(cell, kw):
    torch.manual_seed(0)
    enc = RecurrentEncoder(EncoderConfig(vocab_size=30, embed_dim=6, hidden=5, cell=cell, **kw)).eval()
    ids = torch.randint(4, 30, (9,))
    u = unroll_encoder(enc, ids)
    with torch.no_grad():
        out = enc(ids[None])
        exact = RecurrentEncoder(enc.cfg).double().eval()
        exact.load_state_dict(enc.state_dict())
        out64 = exact(ids[None])
    for got, want, want64 in [(u.outputs, out.outputs[0], out64.outputs[0]), (u.h_n, out.h_n[:, 0], out64.h_n[:, 0])]:
        np.testing.assert_allclose(got, want.numpy(), atol=1e-6, rtol=1e-5)  # the float32 module (its rounding)
        np.testing.assert_allclose(got, want64.numpy(), atol=1e-12, rtol=0)  # the same arithmetic in float64
    if cell == "lstm":
        np.testing.assert_allclose(u.c_n, out64.c_n[:, 0].numpy(), atol=1e-12, rtol=0)
        for d in u.layers[0]:  # the gates explain each step: c_t = f c_{t-1} + i g, h_t = o tanh(c_t)
            g = d.gates
            c_prev = np.vstack([np.zeros(5), d.c[:-1]]) if not d.reverse else np.vstack([d.c[1:], np.zeros(5)])
            np.testing.assert_allclose(d.c, g["f"] * c_prev + g["i"] * g["g"], atol=1e-12)
            np.testing.assert_allclose(d.h, g["o"] * np.tanh(d.c), atol=1e-12)
    layers = enc.cfg.layers
    assert len(u.layers) == layers and u.directions == enc.cfg.directions
    assert u.x.shape == (9, 6) and u.h_n.shape == (layers * enc.cfg.directions, 5)


def test_unrolled_scratch_cells_read_the_forward_cache():
    x = np.random.default_rng(0).normal(size=(7, 3))
    for cls in (RNN, LSTM, GRU):
        layer = cls(3, 4, 2, seed=1)
        u = unroll_scratch(layer, x)
        out, state, cache = layer.forward(x[None])
        h_n = state[0] if isinstance(state, tuple) else state
        np.testing.assert_array_equal(u.outputs, out[0])
        np.testing.assert_array_equal(u.h_n, h_n[:, 0])
        np.testing.assert_array_equal(u.layers[0][0].h, cache[1][0][0])  # layer 0's h_t feed layer 1
        assert set(u.layers[1][0].gates) == {RNN: set(), LSTM: set("ifgo"), GRU: set("rzn")}[cls]
        if cls is LSTM:
            np.testing.assert_allclose(u.c_n, state[1][:, 0], atol=1e-12)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("plot")
    write_csv(contrast_sentiment(64, seed=1), d / "train.csv")
    assert main(["classify", "train", "--train", str(d / "train.csv"), "--embed", "8", "--hidden", "6", "--epochs",
                 "2", "--bidirectional", "--batch", "4", "--save-every", "0", "--threads", "1",
                 "--out", str(d / "clf")]) == 0
    return d


def test_plot_hidden_curves_and_errors(run, capsys):
    out = run / "hidden.png"
    assert main(["plot", "hidden", "--model", str(run / "clf"), "not good at all", "--out", str(out), "--gates"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "wrote" in capsys.readouterr().out
    assert main(["plot", "hidden", "--model", "toy:gru", "a b c", "--out", str(run / "toy.png")]) == 0
    assert (run / "toy.png").stat().st_size > 1000
    assert main(["plot", "curves", str(run / "clf"), str(run / "clf"), "--out", str(run / "c.png")]) == 0
    assert (run / "c.png").stat().st_size > 1000
    capsys.readouterr()
    for argv, msg in [(["plot", "attention", "--model", str(run / "clf"), "x", "--out", str(run / "a.png")],
                       "is a 'classify' model; attention belongs to translate and qa"),
                      (["plot", "hidden", "--model", "toy:cnn", "x", "--out", str(run / "t.png")], "unknown toy cell"),
                      (["plot", "hidden", "--model", str(run / "nope"), "x", "--out", str(run / "t.png")],
                       "no such checkpoint"),
                      (["plot", "curves", str(run), "--out", str(run / "c.png")], "has no metrics.jsonl")]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("seqlab: error: ") and msg in err and err.count("\n") == 1, err


def test_plot_attention(tmp_path, capsys):
    pairs = [("i am cold .", "j'ai froid ."), ("you are tall .", "tu es grand ."), ("he is cold .", "il a froid .")]
    (tmp_path / "p.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs * 8))
    assert main(["translate", "train", "--data", str(tmp_path / "p.tsv"), "--embed", "8", "--hidden", "8",
                 "--epochs", "1", "--batch", "16", "--save-every", "0", "--threads", "1",
                 "--out", str(tmp_path / "tr")]) == 0
    capsys.readouterr()
    assert main(["plot", "attention", "--model", str(tmp_path / "tr"), "i am cold .",
                 "--out", str(tmp_path / "att.png")]) == 0
    assert (tmp_path / "att.png").read_bytes()[:4] == b"\x89PNG"
    assert capsys.readouterr().out.endswith(f"wrote {tmp_path / 'att.png'}\n")
