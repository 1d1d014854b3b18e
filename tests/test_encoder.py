"""The shared encoder: padding changes nothing, states are what the docs say they are."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.data import pad_batch
from seqlab.models import EncoderConfig, RecurrentEncoder

CONFIGS = [
    dict(cell="rnn"), dict(cell="rnn_relu"), dict(cell="gru", layers=2), dict(cell="lstm", layers=2),
    dict(cell="lstm", bidirectional=True, layers=2), dict(cell="gru", bidirectional=True),
    dict(cell="lstm", layers=3, bidirectional=True, residual=True, layer_norm=True, locked_dropout=True),
]


def _encoder(**kw):
    torch.manual_seed(0)
    cfg = EncoderConfig(vocab_size=20, embed_dim=6, hidden=5, **kw)
    return RecurrentEncoder(cfg).double().eval()


def _random_seqs(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, 20, (n,), generator=g) for n in lengths]


@pytest.mark.parametrize("kw", CONFIGS)
def test_padding_changes_nothing(kw):
    """Each sequence alone (no padding) gives the same outputs and final state as in a padded batch."""
    enc = _encoder(**kw)
    seqs = _random_seqs([7, 2, 5, 1])
    ids, lengths = pad_batch(seqs, 0)
    out = enc(ids, lengths)
    for i, s in enumerate(seqs):
        alone = enc(s[None], torch.tensor([len(s)]))
        n = len(s)
        torch.testing.assert_close(out.outputs[i, :n], alone.outputs[0], rtol=0, atol=1e-12)
        assert torch.all(out.outputs[i, n:] == 0)
        torch.testing.assert_close(out.h_n[:, i], alone.h_n[:, 0], rtol=0, atol=1e-12)
        if kw["cell"] == "lstm":
            torch.testing.assert_close(out.c_n[:, i], alone.c_n[:, 0], rtol=0, atol=1e-12)
        # without lengths, a full-length sequence runs unpacked: the same numbers
        unpacked = enc(s[None])
        torch.testing.assert_close(unpacked.outputs, alone.outputs, rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=6), st.sampled_from(["rnn", "lstm", "gru"]))
def test_padding_changes_nothing_for_any_lengths(lengths, cell):
    enc = _encoder(cell=cell, bidirectional=True)
    seqs = _random_seqs(lengths, seed=len(lengths))
    ids, lens = pad_batch(seqs, 0, pad_to=max(lengths) + 3)  # extra padding on every row
    out = enc(ids, lens)
    for i, s in enumerate(seqs):
        alone = enc(s[None], torch.tensor([len(s)]))
        torch.testing.assert_close(out.final_hidden()[i], alone.final_hidden()[0], rtol=0, atol=1e-12)


def test_final_hidden_is_last_valid_forward_step_and_first_backward_step():
    enc = _encoder(cell="gru", bidirectional=True, layers=2)
    seqs = _random_seqs([6, 3])
    ids, lengths = pad_batch(seqs, 0)
    out = enc(ids, lengths)
    h = 5
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out.final_hidden()[i, :h], out.outputs[i, n - 1, :h])
        torch.testing.assert_close(out.final_hidden()[i, h:], out.outputs[i, 0, h:])
    assert out.outputs.shape == (2, 6, 10) and out.h_n.shape == (4, 2, 5)


def test_layer_by_layer_path_equals_fused_module():
    """Without residual/norm the layered path is the same maths as one stacked nn.LSTM."""
    fused = _encoder(cell="lstm", layers=2, bidirectional=True)
    layered = _encoder(cell="lstm", layers=2, bidirectional=True, locked_dropout=True)  # eval: no dropout
    layered.embedding.load_state_dict(fused.embedding.state_dict())
    big = fused.rnns[0].state_dict()
    for layer, rnn in enumerate(layered.rnns):
        rnn.load_state_dict({k.replace(f"_l{layer}", "_l0"): v for k, v in big.items() if f"_l{layer}" in k})
    seqs = _random_seqs([5, 3, 4])
    ids, lengths = pad_batch(seqs, 0)
    a, b = fused(ids, lengths), layered(ids, lengths)
    torch.testing.assert_close(a.outputs, b.outputs)
    torch.testing.assert_close(a.h_n, b.h_n)
    torch.testing.assert_close(a.c_n, b.c_n)


def test_initial_state_is_used_and_carried():
    """Running a sequence in two halves with the state carried equals running it whole."""
    enc = _encoder(cell="lstm", layers=2)
    x = _random_seqs([8])[0][None]
    whole = enc(x)
    first = enc(x[:, :5])
    second = enc(x[:, 5:], state=(first.h_n, first.c_n))
    torch.testing.assert_close(torch.cat([first.outputs, second.outputs], 1), whole.outputs)
    torch.testing.assert_close(second.h_n, whole.h_n)


def test_locked_dropout_uses_one_mask_per_sequence():
    enc = RecurrentEncoder(EncoderConfig(vocab_size=10, embed_dim=50, hidden=4, cell="lstm",
                                         embed_dropout=0.5, locked_dropout=True)).train()
    emb = torch.ones(3, 7, 50)
    dropped = enc._dropout(emb, 0.5, None)
    assert torch.equal(dropped[:, :1].expand_as(dropped), dropped)  # same mask at every step
    assert not torch.equal(dropped[0], dropped[1])  # different masks for different sequences


def test_numeric_feature_input():
    enc = RecurrentEncoder(EncoderConfig(vocab_size=0, input_dim=3, hidden=4, cell="gru"))
    out = enc(torch.randn(2, 5, 3), torch.tensor([5, 2]))
    assert out.outputs.shape == (2, 5, 4) and out.h_n.shape == (1, 2, 4)
