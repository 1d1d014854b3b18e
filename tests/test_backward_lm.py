"""ULMFiT's bidirectional setup: a backward LM (`lm train --backward`), a classifier whose second member reads
each text from its end (started from the backward LM, the two averaged), and a tagger reading a backward LM's
outputs beside the forward one's."""

import random

import numpy as np
import pytest
import torch

import seqlab
from seqlab.cli import main
from seqlab.errors import UserError
from seqlab.models.classifier import ClassifierConfig, TextClassifier
from seqlab.models.encoder import EncoderConfig, reverse_padded
from seqlab.models.language_model import sequence_nll
from seqlab.models.tagger import TagBatch, TaggerConfig
from seqlab.models.tagger import Tagger as TaggerModel
from seqlab.pipelines import LM, Classifier, Tagger
from seqlab.pipelines.lm_transfer import layer_groups

QUIET = dict(save_every=0, log=lambda s: None)
LINES = ["a good film", "a bad film", "the plot was good", "the plot was bad", "John lives in Paris"]


def _lm(tmp, name, backward, hidden=12, seed=0):
    rnd = random.Random(seed)
    text = "\n".join(rnd.choice(LINES) for _ in range(200)) + "\n"
    lm = LM.fit(text, level="word", hidden=hidden, embed=hidden, epochs=1, seq_len=8, batch=4, backward=backward,
                **QUIET)
    return lm, lm.save(tmp / name)


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bw")
    return tmp, _lm(tmp, "fwd", False)[1], _lm(tmp, "bwd", True)[1]


def test_reverse_padded_reverses_the_valid_steps_and_keeps_the_padding():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 6, 7], [8, 0, 0, 0]])
    got = reverse_padded(x, torch.tensor([3, 4, 1]))
    assert got.tolist() == [[3, 2, 1, 0], [7, 6, 5, 4], [8, 0, 0, 0]]
    feats = torch.arange(24.0).reshape(2, 4, 3)
    back = reverse_padded(feats, torch.tensor([2, 4]))
    assert torch.equal(back[0, :2], feats[0, [1, 0]]) and torch.equal(back[0, 2:], feats[0, 2:])
    assert torch.equal(reverse_padded(back, torch.tensor([2, 4])), feats)
    assert torch.equal(reverse_padded(x, None), x.flip(1))


def test_a_backward_lm_learns_the_text_read_from_its_end():
    text = "abcd" * 400
    lm = LM.fit(text, hidden=24, epochs=8, seq_len=16, batch=8, lr=0.02, backward=True, **QUIET)
    assert lm.backward and lm.data["backward"] is True
    # generation writes what comes before the prime, in reading order
    assert lm.generate("a", length=7, greedy=True) == "bcdabcda"
    # the score of a text is the model's likelihood of its tokens read from the last to the first
    ids = np.asarray(lm.encode("dcab" * 30))
    want, n = sequence_nll(lm.model, torch.from_numpy(ids[::-1].copy()))
    assert lm.evaluate("dcab" * 30, exact=True)["loss"] == pytest.approx(want / n, rel=1e-6)
    # it reads "abcd" well only backward: the text "dcba" repeated is the unlikely direction
    assert lm.evaluate(text[:400], exact=True)["loss"] < 0.2 < lm.evaluate("dcba" * 100, exact=True)["loss"]


def test_continuing_a_backward_lm_stays_backward(lms, tmp_path):
    _, _, bwd = lms
    lm = LM.fit("the plot was good\n" * 60, init_from=str(bwd), epochs=1, seq_len=8, batch=4, **QUIET)
    assert lm.backward


def test_the_backward_member_reads_each_text_reversed():
    enc = EncoderConfig(vocab_size=11, embed_dim=5, hidden=6, cell="lstm")
    torch.manual_seed(0)
    model = TextClassifier(ClassifierConfig(enc, 3, "max", backward=True)).eval()
    model.back_encoder.load_state_dict(model.encoder.state_dict())
    model.back_out.load_state_dict(model.out.state_dict())
    ids = torch.tensor([[2, 3, 4, 0], [5, 6, 7, 8]])
    lengths = torch.tensor([3, 4])
    fwd, bwd = model.member_logits(ids, lengths)
    # with the forward member's weights, the backward member scores "a b c" as the forward one scores "c b a"
    flipped = model.member_logits(reverse_padded(ids, lengths), lengths)[0]
    assert torch.allclose(bwd, flipped, atol=1e-6) and not torch.allclose(fwd, bwd, atol=1e-3)
    mean = (fwd.softmax(-1) + bwd.softmax(-1)) / 2
    assert torch.allclose(model(ids, lengths).softmax(-1), mean, atol=1e-6)


def test_layer_groups_merge_the_two_encoders_level_by_level():
    enc = EncoderConfig(vocab_size=11, embed_dim=5, hidden=6, cell="lstm", layers=2)
    model = TextClassifier(ClassifierConfig(enc, 2, "max", backward=True))
    groups = layer_groups(model, model.encoder, model.back_encoder)
    assert len(groups) == 4  # embeddings, layer 1, layer 2, the two output layers
    assert groups[0] == [model.encoder.embedding.weight, model.back_encoder.embedding.weight]
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].split(".")[0] for p in groups[2]} == {"encoder", "back_encoder"}
    assert all("_l1" in names[id(p)] for p in groups[2])
    assert {names[id(p)].split(".")[0] for p in groups[3]} == {"out", "back_out"}


def test_classifier_from_a_forward_and_a_backward_lm_round_trips(lms, tmp_path):
    _, fwd, bwd = lms
    texts, labels = ["a good film", "a bad film", "the plot was good", "the plot was bad"] * 8, ["p", "n"] * 16
    said = []
    clf = Classifier.fit((texts, labels), epochs=1, init_from=str(fwd), init_from_backward=str(bwd),
                         lr_decay_per_layer=2.6, batch=8, out=tmp_path / "clf", save_every=0, log=said.append)
    assert clf.model.cfg.backward and len(clf.model.member_logits(torch.tensor([[4, 5]]))) == 2
    assert sum(f"init from {bwd}:" in s for s in said) == 1 and any("a backward member" in s for s in said)
    back = LM.load(bwd).model.encoder.rnns[0].weight_hh_l0
    assert clf.model.back_encoder.rnns[0].weight_hh_l0.shape == back.shape
    again = seqlab.load(tmp_path / "clf")
    probe = ["a good film", "the plot was bad"]
    assert again.predict(probe) == clf.predict(probe)
    assert again.model.cfg.backward


def test_the_backward_lm_is_copied_into_the_backward_member(lms):
    _, fwd, bwd = lms
    texts, labels = ["a good film", "a bad film"] * 8, ["p", "n"] * 8
    clf = Classifier.fit((texts, labels), epochs=1, lr=1e-12, init_from=str(fwd), init_from_backward=str(bwd),
                         batch=8, **QUIET)
    src = LM.load(bwd).model.encoder.rnns[0]
    assert torch.allclose(clf.model.back_encoder.rnns[0].weight_hh_l0, src.weight_hh_l0, atol=1e-6)
    assert not torch.allclose(clf.model.encoder.rnns[0].weight_hh_l0, src.weight_hh_l0, atol=1e-3)


def test_mismatched_pairs_are_user_errors(lms):
    tmp, fwd, bwd = lms
    data = (["a good film", "a bad film"] * 4, ["p", "n"] * 4)
    cases = [
        (dict(init_from=str(bwd), init_from_backward=str(fwd)), "is a backward LM"),
        (dict(init_from=str(fwd), init_from_backward=str(fwd)), "reads left to right"),
        (dict(init_from_backward=str(bwd)), "give --init-from"),
    ]
    big = _lm(tmp, "bwd16", True, hidden=16)[1]
    cases.append((dict(init_from=str(fwd), init_from_backward=str(big)), "hidden 16 and 12"))
    for kw, said in cases:
        with pytest.raises(UserError, match=said):
            Classifier.fit(data, epochs=1, **kw, **QUIET)
    with pytest.raises(UserError, match="regression"):
        Classifier.fit((data[0], ["1.0", "2.0"] * 4), epochs=1, regression=True, init_from=str(fwd),
                       init_from_backward=str(bwd), **QUIET)


def test_the_taggers_backward_lm_features_see_only_the_words_after_them():
    enc = EncoderConfig(vocab_size=0, input_dim=6 + 5 + 5, hidden=4, bidirectional=True)
    lm = EncoderConfig(vocab_size=20, embed_dim=5, hidden=5)
    torch.manual_seed(0)
    model = TaggerModel(TaggerConfig(enc, 20, 6, 3, lm=lm, lm_back=lm)).eval()
    pipe_words = torch.tensor([[4, 5, 6, 7], [8, 9, 10, 0]])

    def feats(words):
        return model.features(TagBatch(words=words, lengths=torch.tensor([4, 3]), targets=None,
                                       index=torch.arange(2)))

    first = feats(pipe_words)
    changed = pipe_words.clone()
    changed[:, 0] = 11  # the first word changes: the backward features of the later words do not
    second = feats(changed)
    back = slice(6 + 5, 6 + 5 + 5)
    assert torch.allclose(first[:, 1:, back], second[:, 1:, back])
    assert not torch.allclose(first[:, 1:, 6:11], second[:, 1:, 6:11])  # the forward LM's do
    assert not torch.allclose(first[:, 0, back], second[:, 0, back])


def test_cli_backward_lm_then_classify_and_tag(tmp_path, capsys):
    (tmp_path / "text.txt").write_text("\n".join(LINES * 50) + "\n")
    fast = ["--epochs", "1", "--save-every", "0", "--threads", "1"]
    for name, extra in (("fwd", []), ("bwd", ["--backward"])):
        assert main(["lm", "train", "--data", str(tmp_path / "text.txt"), "--level", "word", "--hidden", "8",
                     "--embed", "8", "--seq-len", "8", "--batch", "4", *extra, *fast,
                     "--out", str(tmp_path / name)]) == 0
    assert main(["lm", "generate", "--model", str(tmp_path / "bwd"), "--prime", "film", "--length", "3",
                 "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip().endswith("film")
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"{t},{t.split()[-1]}\n" for t in LINES * 8))
    pair = ["--init-from", str(tmp_path / "fwd"), "--init-from-backward", str(tmp_path / "bwd")]
    assert main(["classify", "train", "--train", str(tmp_path / "train.csv"), *pair, "--batch", "8", *fast,
                 "--out", str(tmp_path / "clf")]) == 0
    assert main(["classify", "predict", "--model", str(tmp_path / "clf"), "a good film"]) == 0
    (tmp_path / "train.conll").write_text("".join("John B-PER\nlives O\nin O\nParis B-LOC\n\n" for _ in range(8)))
    assert main(["tag", "train", "--train", str(tmp_path / "train.conll"), *pair, "--min-freq", "1", "--hidden", "8",
                 "--char-out", "8", *fast, "--out", str(tmp_path / "tag")]) == 0
    tagger = Tagger.load(tmp_path / "tag")
    assert tagger.model.lm_back is not None and tagger.predict([["John", "lives", "in", "Paris"]])
    capsys.readouterr()
    rc = main(["classify", "train", "--train", str(tmp_path / "train.csv"), "--init-from", str(tmp_path / "bwd"),
               "--init-from-backward", str(tmp_path / "fwd"), *fast, "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert rc == 2 and "is a backward LM" in err and "Traceback" not in err and not (tmp_path / "bad").exists()
