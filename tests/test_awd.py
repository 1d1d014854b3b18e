"""AWD-LSTM regularisation in the language model: weight drop (training only, on W_hh, the fused kernel
kept), embedding row dropout, locked output dropout, AR/TAR penalties and averaged weights."""

import copy

import pytest
import torch
import torch.nn.functional as F

from seqlab.models.encoder import EncoderConfig, RecurrentEncoder
from seqlab.models.language_model import LanguageModel, LMConfig, activation_penalty
from seqlab.pipelines import LM
from seqlab.pipelines.lm_step import CarriedStateStep, WeightAverage
from seqlab.train.checkpoint import load_state_tensors

X = torch.randint(4, 20, (3, 7), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("locked", [False, True])
def test_weight_drop_masks_the_recurrent_weights_in_training_only(locked):
    torch.manual_seed(0)
    enc = RecurrentEncoder(EncoderConfig(vocab_size=20, embed_dim=6, hidden=5, weight_drop=0.5, locked_dropout=locked))
    plain = RecurrentEncoder(EncoderConfig(vocab_size=20, embed_dim=6, hidden=5, locked_dropout=locked))
    assert enc.state_dict().keys() == plain.state_dict().keys()  # the weights keep their names
    plain.load_state_dict(enc.state_dict())
    enc.eval()
    assert torch.equal(enc(X).outputs, plain(X).outputs)  # evaluation: no drop
    enc.train()
    torch.manual_seed(3)
    out = enc(X).outputs
    torch.manual_seed(3)  # the same mask, made by hand: dropout of W_hh only
    w_hh = enc.rnns[0].weight_hh_l0
    dropped = F.dropout(w_hh.detach(), 0.5, True)
    ref = copy.deepcopy(enc.rnns[0])
    ref.weight_hh_l0.data = dropped
    assert torch.allclose(out, ref(enc.embedding(X))[0], atol=1e-6)
    assert not torch.allclose(out, plain(X).outputs)
    out.sum().backward()  # the gradient reaches the parameter, zero where the mask dropped it
    assert w_hh.grad.abs().sum() > 0 and torch.all(w_hh.grad[dropped == 0] == 0)
    assert torch.equal(enc.rnns[0].weight_hh_l0, w_hh)  # the parameter itself is untouched


def test_embedding_row_dropout_drops_whole_word_types():
    torch.manual_seed(1)
    enc = RecurrentEncoder(EncoderConfig(vocab_size=50, embed_dim=4, cell="none", embed_row_dropout=0.5))
    ids = torch.arange(4, 50).repeat(2, 1)  # every token twice (two rows)
    out = enc(ids).outputs
    w = enc.embedding.weight[4:50]
    assert torch.equal(out[0], out[1])  # one mask per word type, wherever it occurs
    zero = (out[0] == 0).all(1)
    assert 5 < int(zero.sum()) < 41 and torch.allclose(out[0][~zero], 2 * w[~zero])
    enc.eval()
    assert torch.equal(enc(ids).outputs[0], w)


def test_ar_tar_penalty_values_and_the_training_step_adds_them():
    raw = torch.tensor([[[1.0, 2.0], [3.0, 5.0], [3.0, 4.0]]])  # (1, 3, 2)
    dropped = raw * torch.tensor([[[2.0, 0.0]]])
    ar = (4 + 36 + 36 + 0 * 3) / 6  # mean of dropped²
    tar = (4 + 9 + 0 + 1) / 4  # mean of (h_t - h_{t-1})²
    assert torch.isclose(activation_penalty(raw, dropped, 2.0, 0.0), torch.tensor(2 * ar))
    assert torch.isclose(activation_penalty(raw, dropped, 0.0, 1.0), torch.tensor(tar))
    assert torch.isclose(activation_penalty(raw, dropped, 2.0, 1.0), torch.tensor(2 * ar + tar))
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(EncoderConfig(vocab_size=20, embed_dim=8, hidden=8), ar=2.0, tar=1.0))
    batch = type("B", (), {"ids": X, "targets": X.roll(-1, 1), "index": torch.tensor([0])})()
    loss = CarriedStateStep()(model, batch)
    raw, dropped = model.activations
    logits, _ = model.eval()(X)
    ce = F.cross_entropy(logits.reshape(-1, 20), X.roll(-1, 1).reshape(-1))
    assert torch.isclose(loss, ce + activation_penalty(raw, dropped, 2.0, 1.0), atol=1e-5)
    assert model.penalty() == 0.0  # eval mode: nothing added


def test_locked_output_dropout_keeps_one_mask_per_sequence():
    model = LanguageModel(LMConfig(EncoderConfig(vocab_size=20, embed_dim=8, hidden=8, locked_dropout=True),
                                   dropout=0.5)).train()
    h = model._out_dropout(torch.ones(4, 6, 8))
    assert torch.equal(h, h[:, :1].expand_as(h)) and set(h.unique().tolist()) == {0.0, 2.0}


def test_weight_average_is_evaluated_and_restored():
    model = torch.nn.Linear(2, 1, bias=False)
    avg = WeightAverage(0.5)
    with torch.no_grad():
        for v in (0.0, 2.0, 4.0):
            model.weight.fill_(v)
            avg.update(model)
    assert torch.allclose(avg.avg["weight"], torch.full((1, 2), 2.5))  # 0 -> 1 -> 2.5
    trainer = type("T", (), {"model": model})()
    avg.on_validate_start(trainer)
    assert torch.allclose(model.weight, torch.full((1, 2), 2.5))
    avg.on_validate_end(trainer)
    assert torch.allclose(model.weight, torch.full((1, 2), 4.0))
    again = WeightAverage(0.5)
    again.load_state_tensors(avg.state_tensors())
    assert torch.equal(again.avg["weight"], avg.avg["weight"])


def test_lm_fit_with_every_awd_setting_saves_the_average_for_resume(tmp_path):
    text = "the cat sat on the mat.\na dog ran in the fog.\n" * 60
    kw = dict(hidden=16, embed=16, layers=2, seq_len=16, batch=4, locked_dropout=True, dropout=0.3,
              embed_dropout=0.2, weight_drop=0.3, embed_row_dropout=0.1, ar=2.0, tar=1.0, average=0.9,
              save_every=0, log=lambda s: None)
    lm = LM.fit(text, epochs=1, out=tmp_path / "run", **kw)
    cfg = lm.model.cfg
    assert (cfg.encoder.weight_drop, cfg.encoder.embed_row_dropout, cfg.ar, cfg.tar) == (0.3, 0.1, 2.0, 1.0)
    assert any(k.startswith("step.avg.") for k in load_state_tensors(tmp_path / "run" / "last"))
    more = LM.fit(text, epochs=2, out=tmp_path / "run", resume=True, **kw)
    assert more.results["steps"] == 2 * lm.results["steps"]
