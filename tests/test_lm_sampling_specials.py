"""Sampling never writes special tokens; `lm train --sample-every N` prints samples as it trains."""

import json
import random

import pytest
import torch

from seqlab.cli import main
from seqlab.data import Vocab, build_tokenizer
from seqlab.data.vocab import BOS, EOS, PAD, UNK
from seqlab.decode import generate, sample_next
from seqlab.models.encoder import EncoderConfig
from seqlab.models.language_model import LanguageModel
from seqlab.models.language_model import LMConfig as ModelConfig
from seqlab.pipelines.lm import LM, text_tokens

TEXT = "HAMLET: to be, or not to be\nthat is the question\nwhether tis nobler in the mind\n" * 4


def _untrained(level: str, boost_specials: float = 4.0) -> LM:
    """A randomly initialised LM whose special tokens get a head start, as an undertrained one's often do."""
    tok = build_tokenizer(level, TEXT.split("\n"))
    vocab = Vocab.build([text_tokens(tok, TEXT)])
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=len(vocab), embed_dim=16, hidden=16, pad_id=vocab.pad_id)
    model = LanguageModel(ModelConfig(enc, False, 0.0)).eval()
    with torch.no_grad():
        model.decoder.bias[: len(vocab.specials)] += boost_specials
    return LM(tok, vocab, model, {"level": level, "encoding": "utf-8"})


@pytest.mark.parametrize("level", ["char", "word"])
def test_an_untrained_model_never_samples_a_special_token(level):
    pipe = _untrained(level)
    specials = {pipe.vocab.stoi[t] for t in (PAD, UNK, BOS)} | ({pipe.vocab.eos_id} if level == "char" else set())
    # without the ban, the same model writes special tokens all the time (the reported "HAMLET<pad>nTZivey")
    raw = generate(pipe.model, pipe.encode_prime("the"), 2000, generator=torch.Generator().manual_seed(1))
    assert set(raw[0].tolist()) & specials
    ids = generate(pipe.model, pipe.encode_prime("the"), 2000, generator=torch.Generator().manual_seed(1),
                   banned=pipe.banned_ids)[0].tolist()
    assert len(ids) == 2000 and not set(ids) & specials
    text = pipe.generate("the", length=2000, temperature=1.5, seed=1)
    assert not any(t in text for t in (PAD, UNK, BOS, EOS))
    for kw in ({"greedy": True}, {"top_k": 3}, {"top_p": 0.5}):  # greedy and the filters obey the ban too
        many = pipe.generate("the", length=300, seed=2, n=3, temperature=1.0, **kw)
        assert not any(t in s for s in many for t in (PAD, UNK, BOS, EOS)), kw


def test_eos_stays_allowed_where_it_ends_a_line():
    pipe = _untrained("word")
    assert pipe.vocab.eos_id not in pipe.banned_ids  # word level: <eos> is how a line ends (prints "\n")
    assert {pipe.vocab.stoi[t] for t in (PAD, UNK, BOS)} <= set(pipe.banned_ids)
    ids = generate(pipe.model, [pipe.vocab.eos_id], 2000, generator=torch.Generator().manual_seed(1),
                   banned=pipe.banned_ids)[0].tolist()
    assert pipe.vocab.eos_id in ids
    assert _untrained("char").vocab.eos_id in _untrained("char").banned_ids


def test_sample_next_masks_banned_ids_even_when_they_are_the_most_likely():
    z = torch.tensor([[9.0, 8.0, 0.0, -1.0]])
    assert sample_next(z, greedy=True, banned=[0, 1]).item() == 2
    gen = torch.Generator().manual_seed(0)
    draws = {sample_next(z, generator=gen, banned=[0, 1]).item() for _ in range(200)}
    assert draws <= {2, 3}
    with pytest.raises(ValueError, match="every token"):
        generate(LanguageModel(ModelConfig(EncoderConfig(vocab_size=3, embed_dim=4, hidden=4), False, 0.0)),
                 [1], 5, banned=[0, 1, 2])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm_sample")
    lines = ["the cat sat on the mat.", "a dog ran in the fog.", "we sing all day long."]
    rnd = random.Random(0)
    (d / "text.txt").write_text("\n".join(rnd.choice(lines) for _ in range(120)) + "\n")
    return d


TINY = ["--embed", "16", "--hidden", "16", "--seq-len", "16", "--batch", "4", "--save-every", "0",
        "--patience", "0", "--epochs", "4", "--threads", "1"]


def test_lm_train_sample_every_prints_samples_and_leaves_training_alone(corpus, capsys):
    data = str(corpus / "text.txt")
    assert main(["lm", "train", "--data", data, *TINY, "--out", str(corpus / "plain")]) == 0
    plain = capsys.readouterr().out
    assert "--- sample" not in plain  # off by default
    assert main(["lm", "train", "--data", data, *TINY, "--sample-every", "2", "--out", str(corpus / "s")]) == 0
    out = capsys.readouterr().out
    assert out.count("--- sample at epoch") == 2  # after the 2nd and the 4th of 4 evaluations
    assert "--- sample at epoch 2, step" in out and "--- sample at epoch 4, step" in out
    sample = out.split("--- sample at epoch 2", 1)[1].split("\n", 1)[1].split("\n---", 1)[0]
    assert sample and not any(t in sample for t in (PAD, UNK, BOS, EOS))
    # the samples draw from their own generator: the training itself is the same as without them
    r1 = json.loads((corpus / "plain" / "results.json").read_text())
    r2 = json.loads((corpus / "s" / "results.json").read_text())
    assert r1["valid_loss"] == r2["valid_loss"]
    assert "sample_every: 2" in (corpus / "s" / "run.yaml").read_text()


def test_sample_every_must_not_be_negative(corpus, capsys):
    assert main(["lm", "train", "--data", str(corpus / "text.txt"), *TINY, "--sample-every", "-1",
                 "--out", str(corpus / "neg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqlab: error: --sample-every") and err.count("\n") == 1, err
