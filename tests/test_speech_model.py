"""The acoustic model: shapes, padding invariance (alone == padded in a batch), state carried over chunks."""

import pytest
import torch

from seqlab.models.classifier import ClassifierConfig, TextClassifier
from seqlab.models.ctc import CTCAcousticModel, CTCConfig
from seqlab.models.encoder import EncoderConfig


def model(frontend="stack", stride=2, bidirectional=True, cell="gru"):
    torch.manual_seed(0)
    cfg = CTCConfig(EncoderConfig(hidden=16, layers=2, cell=cell, bidirectional=bidirectional), feat_dim=8,
                    num_labels=5, frontend=frontend, stride=stride, conv_dim=12)
    cfg.encoder.input_dim = cfg.encoder_input
    return CTCAcousticModel(cfg).eval()


@pytest.mark.parametrize("frontend,stride", [("stack", 2), ("stack", 3), ("conv", 2), ("conv", 1), ("none", 1)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_posteriors_are_the_same_alone_and_padded_in_a_batch(frontend, stride, bidirectional):
    m = model(frontend, stride, bidirectional)
    torch.manual_seed(1)
    lengths = torch.tensor([13, 7, 10, 1])
    seqs = [torch.randn(n, 8) for n in lengths.tolist()]
    batch = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    with torch.no_grad():
        logp, out_len = m(batch, lengths)
        assert logp.shape == (4, int(out_len.max()), 5)
        assert out_len.tolist() == [-(-n // stride) if frontend != "none" else n for n in lengths.tolist()]
        for i, s in enumerate(seqs):
            alone, n = m(s[None], torch.tensor([len(s)]))
            torch.testing.assert_close(logp[i, : int(out_len[i])], alone[0, : int(n[0])], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(logp.exp().sum(-1), torch.ones(logp.shape[:2]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_unidirectional_model_reads_chunks_with_the_state_carried(cell):
    m = model("stack", 2, bidirectional=False, cell=cell)
    x = torch.randn(1, 24, 8)
    with torch.no_grad():
        whole, _ = m(x)
        state, parts = None, []
        for s in range(0, 24, 6):  # chunks of whole front-end steps
            out, _, state = m(x[:, s : s + 6], None, state, return_state=True)
            parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-5, rtol=1e-5)


def test_the_classify_baseline_is_padding_invariant_over_frames():
    torch.manual_seed(0)
    clf = TextClassifier(ClassifierConfig(EncoderConfig(input_dim=8, hidden=16, bidirectional=True), 10, "mean"))
    clf.eval()
    seqs = [torch.randn(n, 8) for n in (9, 4)]
    batch = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    with torch.no_grad():
        out = clf(batch, torch.tensor([9, 4]))
        for i, s in enumerate(seqs):
            torch.testing.assert_close(out[i], clf(s[None], torch.tensor([len(s)]))[0], atol=1e-5, rtol=1e-5)


def test_the_encoder_input_must_match_the_frontend():
    cfg = CTCConfig(EncoderConfig(input_dim=8, hidden=4), feat_dim=8, frontend="stack", stride=2)
    with pytest.raises(ValueError, match="front-end gives 16"):
        CTCAcousticModel(cfg)
