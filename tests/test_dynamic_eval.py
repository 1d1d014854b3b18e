"""Dynamic evaluation: lr 0 is static evaluation; each segment is scored before the model learns from it
(no token sees itself or the future); the model adapts to a repeated text; the caller's model is untouched."""

import json

import torch

from seqlab.cli import main
from seqlab.models.dynamic_eval import dynamic_nll
from seqlab.models.encoder import EncoderConfig
from seqlab.models.language_model import LanguageModel, LMConfig, sequence_nll


def _lm(cell="lstm"):
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=23, embed_dim=12, hidden=16, layers=1, cell=cell)
    return LanguageModel(LMConfig(enc, tie_weights=True, dropout=0.2)).double()


def test_lr_zero_equals_static_evaluation():
    model = _lm("gru")
    ids = torch.randint(4, 23, (173,), generator=torch.Generator().manual_seed(1))
    nll, n = dynamic_nll(model, ids, segment=20, lr=0.0)
    total, m = sequence_nll(model, ids)
    assert n == m == 172 and len(nll) == 9
    assert abs(float(nll.sum()) - total) < 1e-8


def test_a_segment_is_scored_before_the_model_sees_it_or_what_follows():
    model = _lm()
    ids = torch.randint(4, 23, (201,), generator=torch.Generator().manual_seed(2))
    a, _ = dynamic_nll(model, ids, segment=25, lr=1e-2)
    changed = ids.clone()
    changed[101:] = torch.randint(4, 23, (100,), generator=torch.Generator().manual_seed(3))  # targets of seg 4 on
    b, _ = dynamic_nll(model, changed, segment=25, lr=1e-2)
    assert torch.equal(a[:4], b[:4])  # segments 0..3 (targets 1..100) do not depend on later tokens
    assert not torch.equal(a[4:], b[4:])


def test_the_model_adapts_to_a_repeated_text_and_the_original_is_untouched():
    model = _lm()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    phrase = torch.randint(4, 23, (40,), generator=torch.Generator().manual_seed(4))
    ids = phrase.repeat(10)
    nll, _ = dynamic_nll(model, ids, segment=40, lr=1e-1)
    static = torch.tensor(sequence_nll(model, ids)[0])
    assert nll[-1] < 0.5 * nll[1] and nll.sum() < 0.8 * static, (nll, static)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_cli_eval_dynamic(tmp_path, capsys):
    text = "".join("the cat sat on the mat. " if i % 3 else "a dog ran in the fog. " for i in range(200))
    (tmp_path / "t.txt").write_text(text)
    assert main(["lm", "train", "--data", str(tmp_path / "t.txt"), "--hidden", "32", "--embed", "32",
                 "--layers", "1", "--batch", "8", "--seq-len", "32", "--epochs", "1", "--threads", "1",
                 "--save-every", "0", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    out = {}
    for extra in ([], ["--dynamic", "--dynamic-lr", "3e-3"]):
        assert main(["lm", "eval", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "t.txt"), "--json",
                     *extra]) == 0
        out[bool(extra)] = json.loads(capsys.readouterr().out)["loss"]
    assert out[True] < out[False], out
    assert main(["lm", "eval", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "t.txt"), "--dynamic",
                 "--dynamic-lr", "-1"]) == 2
    assert "--dynamic-lr" in capsys.readouterr().err
