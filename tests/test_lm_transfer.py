"""LM pretraining -> fine-tuning (ULMFiT): vocabulary mapping, the copy of the LM into classify / tag / lm
models, discriminative learning rates, gradual unfreezing, the slanted triangular schedule, concat pooling."""

import math
import random
import shutil

import pytest
import torch

import seqlab
from seqlab.data.vocab import Vocab
from seqlab.errors import UserError
from seqlab.models.classifier import ClassifierConfig, TextClassifier
from seqlab.models.encoder import EncoderConfig
from seqlab.models.language_model import LanguageModel, LMConfig
from seqlab.pipelines import LM, Classifier, Tagger
from seqlab.pipelines.lm_transfer import (
    GradualUnfreeze,
    copy_lm,
    copy_lm_encoder,
    discriminative,
    layer_groups,
    map_rows,
)
from seqlab.train.callbacks import History
from seqlab.train.settings import TrainConfig, lr_factor

QUIET = dict(save_every=0, log=lambda s: None)
LINES = ["a good film", "a bad film", "the plot was good", "the plot was bad", "John lives in Paris"]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """A tiny 2-layer word-level LM saved as a run directory."""
    rnd = random.Random(0)
    text = "\n".join(rnd.choice(LINES) for _ in range(200)) + "\n"
    lm = LM.fit(text, level="word", hidden=12, embed=12, layers=2, epochs=1, seq_len=8, batch=4, **QUIET)
    return lm, lm.save(tmp_path_factory.mktemp("lm") / "lm")


def _reviews(n=32):
    texts = ["a good film", "a bad film", "the plot was good", "Brand new bad"]
    return texts * (n // 4), ["p", "n", "p", "n"] * (n // 4)


def test_map_rows_copies_shared_tokens_falls_back_to_case_and_starts_new_ones_at_the_mean():
    sp = ("<pad>", "<unk>")
    src = Vocab(["<pad>", "<unk>", "good", "Paris", "film"], sp)
    dst = Vocab(["<pad>", "<unk>", "film", "paris", "brand-new"], sp)
    w = torch.arange(15, dtype=torch.float32).reshape(5, 3)
    rows, found = map_rows(w, src, dst)
    assert found == 2  # film, paris (by Paris); brand-new is new
    assert torch.equal(rows[2], w[4]) and torch.equal(rows[3], w[3]) and torch.equal(rows[1], w[1])
    assert torch.allclose(rows[4], w[2:].mean(0)) and torch.equal(rows[0], torch.zeros(3))


def test_classifier_takes_the_lms_encoder_mapped_by_token(lm_run):
    lm, _ = lm_run
    vocab = Vocab(["<pad>", "<unk>", "<bos>", "<eos>", "plot", "zebra"])
    enc = EncoderConfig(vocab_size=len(vocab), embed_dim=12, hidden=12, layers=2)
    clf = TextClassifier(ClassifierConfig(enc, 2, "concat"))
    assert copy_lm_encoder(clf.encoder, vocab, lm) == 1
    lm_rows = lm.model.encoder.embedding.weight
    assert torch.equal(clf.encoder.embedding.weight[4], lm_rows[lm.vocab.stoi["plot"]])
    assert torch.allclose(clf.encoder.embedding.weight[5], lm_rows[4:].mean(0))  # new to the LM: the mean
    for k, v in lm.model.encoder.rnns.state_dict().items():
        assert torch.equal(clf.encoder.rnns.state_dict()[k], v)
    out = clf(torch.tensor([[4, 5, 0]]), torch.tensor([2]))
    assert out.shape == (1, 2) and clf.out.in_features == 36  # concat pooling: last, max, mean


def test_fit_init_from_adopts_the_lms_sizes_and_tokenizer(lm_run):
    lm, path = lm_run
    lines = []
    clf = Classifier.fit(_reviews(), init_from=str(path), hidden=64, embed=32, layers=1, epochs=1, batch=8,
                         pooling="concat", **{**QUIET, "log": lines.append})
    assert (clf.config.model.hidden, clf.config.model.embed, clf.config.model.layers) == (12, 12, 2)
    assert any("init from" in ln and "of the vocabulary found in the LM's" in ln for ln in lines)
    assert clf.tokenizer.to_json() == lm.tokenizer.to_json()
    assert clf.predict("a good film") in ("p", "n")


def test_a_char_lm_does_not_start_a_word_classifier_and_vectors_exclude_init_from(lm_run, tmp_path):
    char_lm = LM.fit("abc abd\n" * 200, hidden=8, embed=8, epochs=1, seq_len=8, batch=4, **QUIET)
    path = char_lm.save(tmp_path / "char")
    with pytest.raises(UserError, match="char-level language model but this classifier reads word tokens; "
                                        "pass --tokenizer char"):
        Classifier.fit(_reviews(), init_from=str(path), epochs=1, **QUIET)
    with pytest.raises(UserError, match="the tagger reads word tokens"):
        Tagger.fit([(["a", "b"], ["O", "O"])] * 4, init_from=str(path), epochs=1, **QUIET)
    with pytest.raises(UserError, match="choose one"):
        Classifier.fit(_reviews(), init_from=str(lm_run[1]), embeddings="v.txt", epochs=1, **QUIET)


class Snapshots:
    """Copies of the weights at each epoch start and at the end; the learning rates of each step."""

    def __init__(self):
        self.at, self.lrs = [], []

    def on_epoch_start(self, trainer):
        self.at.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})

    def on_after_backward(self, trainer):
        self.lrs.append([g["lr"] for g in trainer.opt.param_groups])

    def on_fit_end(self, trainer):
        self.on_epoch_start(trainer)


def _changed(a, b, prefix):
    return any(not torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))


def test_gradual_unfreezing_trains_one_more_group_each_epoch(lm_run):
    snap = Snapshots()
    Classifier.fit(_reviews(), init_from=str(lm_run[1]), gradual_unfreeze=True, epochs=3, batch=8, lr=0.01,
                   patience=0, dropout=0.0, embed_dropout=0.0, callbacks=[History(), snap], **QUIET)
    e0, e1, e2, end = snap.at  # groups: embedding, layer 0, layer 1, head
    assert _changed(e0, e1, "out.") and not _changed(e0, e1, "encoder.")
    assert _changed(e1, e2, "encoder.rnns.0.weight_hh_l1") and not _changed(e1, e2, "encoder.rnns.0.weight_hh_l0")
    assert not _changed(e1, e2, "encoder.embedding")
    assert _changed(e2, end, "encoder.rnns.0.weight_hh_l0") and not _changed(e2, end, "encoder.embedding")


def test_unfreeze_callback_says_what_is_frozen_per_epoch_and_keeps_frozen_embeddings():
    clf = TextClassifier(ClassifierConfig(EncoderConfig(vocab_size=9, embed_dim=4, hidden=4, layers=2), 2))
    clf.encoder.embedding.weight.requires_grad_(False)  # --freeze-embeddings
    groups = layer_groups(clf, clf.encoder)
    assert [len(g) for g in groups] == [1, 4, 4, 2]  # embedding, layer 0 (w_ih, w_hh, b_ih, b_hh), layer 1, head
    cb = GradualUnfreeze(groups)

    class T:
        state = {"epoch": 0}

    trainable = []
    for epoch in range(5):
        T.state["epoch"] = epoch
        cb.on_epoch_start(T)
        trainable.append([all(p.requires_grad for p in g) for g in groups])
    assert trainable == [[False, False, False, True], [False, False, True, True], [False, True, True, True],
                         [False, True, True, True], [False, True, True, True]]
    cb.on_fit_end(T)
    assert all(p.requires_grad for g in groups[1:] for p in g) and not groups[0][0].requires_grad


def test_discriminative_learning_rates_per_layer_group(lm_run):
    clf = TextClassifier(ClassifierConfig(EncoderConfig(vocab_size=9, embed_dim=4, hidden=4, layers=2), 2))
    scales = [g["lr_scale"] for g in discriminative(layer_groups(clf, clf.encoder), 2.6)]
    assert [round(s, 6) for s in scales] == [round(2.6 ** -k, 6) for k in (3, 2, 1, 0)]
    snap = Snapshots()
    Classifier.fit(_reviews(), init_from=str(lm_run[1]), lr_decay_per_layer=2.6, lr=0.01, epochs=1, batch=8,
                   callbacks=[History(), snap], **QUIET)
    for lrs in snap.lrs:  # constant schedule: every step, the top group at lr and each one below / 2.6
        assert [round(x, 8) for x in lrs] == [round(0.01 * 2.6 ** -k, 8) for k in (3, 2, 1, 0)]


def test_discriminative_groups_survive_a_checkpoint_and_resume(lm_run, tmp_path):
    kw = dict(init_from=str(lm_run[1]), lr_decay_per_layer=2.6, batch=8, save_every=0, log=lambda s: None)
    Classifier.fit(_reviews(), epochs=1, out=tmp_path / "run", **kw)
    clf = Classifier.fit(_reviews(), epochs=2, out=tmp_path / "run", resume=True, **kw)
    assert clf.results["steps"] == 8


def test_slanted_triangular_schedule():
    cfg = TrainConfig(schedule="slanted")
    f = [lr_factor(s, 100, cfg) for s in (0, 10, 55, 100)]
    assert math.isclose(f[0], 1 / 32) and math.isclose(f[1], 1.0) and math.isclose(f[3], 1 / 32)
    assert math.isclose(f[2], (1 + 31 * 0.5) / 32)


def test_tagger_reads_lm_features_and_round_trips(lm_run, tmp_path):
    lm, path = lm_run
    pairs = [(["John", "lives", "in", "Paris"], ["B-PER", "O", "O", "B-LOC"])] * 8
    tag = Tagger.fit(pairs, init_from=str(path), gradual_unfreeze=True, epochs=2, hidden=8, char_out=8,
                     char_dim=4, min_freq=1, **QUIET)
    assert tag.model.lm is not None and tag.model.cfg.lm.hidden == 12
    tag.save(tmp_path / "tag")
    assert seqlab.load(tmp_path / "tag").predict(["John lives in Paris"]) == tag.predict(["John lives in Paris"])


def test_lm_continues_on_new_text_with_its_vocabulary_mapped(lm_run):
    lm, path = lm_run
    new = LanguageModel(LMConfig(EncoderConfig(vocab_size=6, embed_dim=12, hidden=12, layers=2)))
    vocab = Vocab(["<pad>", "<unk>", "<bos>", "<eos>", "plot", "zebra"])
    assert copy_lm(new, vocab, lm) == 1
    old_b = lm.model.decoder.bias
    assert torch.equal(new.decoder.bias[4], old_b[lm.vocab.stoi["plot"]])
    assert torch.equal(new.encoder.embedding.weight[4], lm.model.encoder.embedding.weight[lm.vocab.stoi["plot"]])
    lines = []
    more = LM.fit("the zebra was good\n" * 60, init_from=str(path), epochs=1, seq_len=8, batch=4,
                  **{**QUIET, "log": lines.append})
    assert more.level == "word" and more.config.model.hidden == 12 and "zebra" in more.vocab
    assert any("init from" in ln for ln in lines)


def test_open_lm_reads_a_directory_once_until_its_files_change(tmp_path):
    from seqlab.pipelines.lm_transfer import open_lm

    text = "\n".join(LINES * 20) + "\n"
    first = LM.fit(text, level="word", hidden=6, embed=6, epochs=1, seq_len=8, batch=4, **QUIET)
    path = first.save(tmp_path / "lm")
    assert open_lm(path) is open_lm(str(path))  # one read for the several questions a fit asks
    shutil.rmtree(path)
    LM.fit(text, level="word", hidden=8, embed=8, epochs=1, seq_len=8, batch=4, **QUIET).save(path)
    assert open_lm(path).model.cfg.encoder.hidden == 8  # retrained in place: read again
