"""The classifier's bag-of-embeddings member (ClassifierConfig.bag, `--bag auto|on|off`): the prediction is
the members' averaged probability, each member learns from its own loss only, and "auto" turns it on for
small text sets trained from scratch."""

import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.cli import main
from seqlab.errors import UserError
from seqlab.models import ClassifierConfig, EncoderConfig, TextClassifier
from seqlab.models.bag import BIGRAM_PRIME, BagOfEmbeddings
from seqlab.pipelines import Classifier, classify_bag
from seqlab.pipelines import classify as classify_pipeline

POS = ["good great film", "a fine and funny movie", "loved it", "great acting"]
NEG = ["bad boring film", "awful plot", "hated it", "dull and slow"]


def _data(n=40):
    return [POS[i % 4] for i in range(n)] + [NEG[i % 4] for i in range(n)], ["pos"] * n + ["neg"] * n


def _model(**kw) -> TextClassifier:
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=17, embed_dim=6, hidden=5, cell="lstm")
    return TextClassifier(ClassifierConfig(enc, 3, "max", bag=True, **kw))


def test_forward_is_the_log_of_the_members_mean_probability():
    model = _model().eval()
    ids, lengths = torch.randint(1, 17, (4, 7)), torch.tensor([7, 5, 3, 1])
    a, b = model.member_logits(ids, lengths)
    want = torch.log((F.softmax(a, -1) + F.softmax(b, -1)) / 2)
    got = model(ids, lengths)
    assert torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(got.exp().sum(-1), torch.ones(4), atol=1e-6)
    # the bag member has its own embedding and ignores order: reversing the valid tokens leaves it unchanged
    rev = ids.clone()
    for i, n in enumerate(lengths.tolist()):
        rev[i, :n] = ids[i, :n].flip(0)
    assert torch.allclose(model.bag(rev, lengths), b, atol=1e-6)
    assert model.bag.embedding.weight.data_ptr() != model.encoder.embedding.weight.data_ptr()
    assert math.isclose(F.softmax(model(ids[:1], lengths[:1]), -1).sum().item(), 1.0, rel_tol=1e-6)


def test_each_member_learns_from_its_own_loss_only():
    model = _model()
    model.train()
    torch.manual_seed(1)
    ids, lengths, y = torch.randint(1, 17, (4, 7)), torch.tensor([7, 5, 3, 1]), torch.tensor([0, 1, 2, 1])
    torch.manual_seed(2)
    a, b = model.member_logits(ids, lengths)
    F.cross_entropy(b, y).backward()  # the bag's loss alone
    assert all(p.grad is None or p.grad.abs().max() == 0 for n, p in model.named_parameters()
               if not n.startswith("bag."))
    assert model.bag.out.weight.grad.abs().max() > 0


def test_auto_is_on_for_small_text_sets_and_off_otherwise(monkeypatch):
    m = classify_pipeline.ClassifyModel()
    on, why = classify_bag.bag_default(m, 8_000, True, True)
    assert on and "8,000 training texts" in why and "--bag off" in why
    assert classify_bag.bag_default(m, 20_000, True, True)[0] is False
    assert classify_bag.bag_default(m, 100, False, True) == (False, "")  # numeric feature sequences
    assert classify_bag.bag_default(m, 100, True, False) == (False, "")  # regression
    assert classify_bag.bag_default(classify_pipeline.ClassifyModel(cell="none"), 100, True, True)[0] is False
    assert classify_bag.bag_default(classify_pipeline.ClassifyModel(init_from="lm"), 100, True, True)[0] is False
    assert classify_bag.bag_default(classify_pipeline.ClassifyModel(bag="on"), 10**6, True, True)[0] is True
    assert classify_bag.bag_default(classify_pipeline.ClassifyModel(bag="off"), 10, True, True)[0] is False
    with pytest.raises(UserError, match="--bag on .* needs a text classifier"):
        classify_bag.bag_default(classify_pipeline.ClassifyModel(bag="on"), 10, False, True)
    monkeypatch.setattr(classify_bag, "BAG_BELOW", 50)
    texts, labels = _data(40)  # 72 training texts after the dev hold-out
    logged = []
    clf = Classifier.fit((texts, labels), epochs=1, hidden=8, embed=4, log=logged.append)
    assert clf.model.bag is None and any("no bag member: 72 training texts" in x for x in logged)


def test_trains_saves_loads_and_predicts_with_the_bag(tmp_path):
    texts, labels = _data()
    logged = []
    clf = Classifier.fit((texts, labels), epochs=8, hidden=16, embed=8, lr=0.02, out=tmp_path / "run",
                         log=logged.append)
    assert clf.model.bag is not None and clf.model.bag.bigrams.num_embeddings == 64  # 14 distinct bigrams
    assert any("averages the lstm with a bag of embeddings" in x for x in logged)
    assert clf.evaluate((texts, labels))["accuracy"] == 1.0  # the tiny set is learnt
    again = Classifier.load(tmp_path / "run")
    assert again.model.bag is not None
    assert (again.predict_proba(texts) == clf.predict_proba(texts)).all()
    off = Classifier.fit((texts, labels), epochs=1, hidden=16, embed=8, bag="off", log=lambda s: None)
    assert off.model.bag is None
    tokens = Classifier.fit((texts, labels), epochs=1, hidden=16, embed=8, bag_buckets=0, log=lambda s: None)
    assert tokens.model.bag.bigrams is None


def test_cli_flag(tmp_path, capsys):
    texts, labels = _data()
    (tmp_path / "t.csv").write_text("text,label\n" + "".join(f"{t},{lb}\n" for t, lb in zip(texts, labels)))
    assert main(["classify", "train", "--train", str(tmp_path / "t.csv"), "--text-col", "text", "--out",
                 str(tmp_path / "off"), "--epochs", "1", "--hidden", "8", "--bag", "off"]) == 0
    assert Classifier.load(tmp_path / "off").model.bag is None
    assert main(["classify", "train", "--train", str(tmp_path / "t.csv"), "--text-col", "text", "--out",
                 str(tmp_path / "on"), "--epochs", "1", "--hidden", "8", "--bag-buckets", "64"]) == 0
    assert "averages the lstm with a bag of embeddings" in capsys.readouterr().out
    assert Classifier.load(tmp_path / "on").model.bag.bigrams.num_embeddings == 64


def test_the_bag_trains_at_a_higher_learning_rate_in_its_own_group():
    model = _model()
    bag = {id(p) for p in model.bag.parameters()}
    tune = classify_bag.bag_groups(model, {"param_groups": None, "callbacks": None})
    (rest, own) = tune["param_groups"]
    assert {id(p) for p in own["params"]} == bag and own["lr_scale"] == classify_bag.BAG_LR_SCALE > 1
    assert rest["lr_scale"] == 1.0 and not bag & {id(p) for p in rest["params"]}
    assert len(rest["params"]) + len(own["params"]) == len(list(model.parameters()))
    # ULMFiT's groups (the head on top holding the bag): the bag leaves them for its own group
    params = list(model.parameters())
    ulmfit = [{"params": params[:2], "lr_scale": 0.4}, {"params": params[2:], "lr_scale": 1.0}]
    groups = classify_bag.bag_groups(model, {"param_groups": ulmfit})["param_groups"]
    assert [g["lr_scale"] for g in groups] == [0.4, 1.0, classify_bag.BAG_LR_SCALE]
    assert sum(len(g["params"]) for g in groups) == len(params)
    plain = TextClassifier(ClassifierConfig(EncoderConfig(vocab_size=5, embed_dim=3, hidden=2), 2))
    assert classify_bag.bag_groups(plain, {"param_groups": None}) == {"param_groups": None}


def test_bigram_rows_see_local_order_and_ignore_padding():
    torch.manual_seed(0)
    plain, bi = BagOfEmbeddings(11, 4, 2), BagOfEmbeddings(11, 4, 2, buckets=7)
    bi.embedding.load_state_dict(plain.embedding.state_dict())
    bi.out.load_state_dict(plain.out.state_dict())
    a, b = torch.tensor([[3, 5, 8, 2]]), torch.tensor([[5, 3, 8, 2]])  # the first two tokens swapped
    assert torch.allclose(plain(a), plain(b)) and not torch.allclose(bi(a), bi(b))
    # by hand: the mean of 4 token rows and 3 bigram rows (a*prime + b) mod 7, then the linear layer
    rows = [bi.embedding.weight[t] for t in a[0]] + \
        [bi.bigrams.weight[(x * BIGRAM_PRIME + y) % 7] for x, y in zip(a[0, :-1].tolist(), a[0, 1:].tolist())]
    assert torch.allclose(bi(a), bi.out(torch.stack(rows).mean(0))[None], atol=1e-6)
    padded = torch.tensor([[3, 5, 8, 2, 0, 0], [3, 5, 0, 0, 0, 0]])
    got = bi(padded, torch.tensor([4, 2]))
    assert torch.allclose(got[0], bi(a)[0], atol=1e-6)
    assert torch.allclose(got[1], bi(torch.tensor([[3, 5]]))[0], atol=1e-6)
    assert torch.allclose(bi(torch.tensor([[4]])), bi.out(bi.embedding.weight[4])[None], atol=1e-6)  # no bigram


def test_bigram_rows_are_sized_to_the_data():
    def t(*rows):
        return [torch.tensor(r) for r in rows]

    assert classify_bag.bigram_buckets(t([1, 2, 3], [1, 2], [4])) == 64  # 2 distinct: the minimum
    assert classify_bag.bigram_buckets(t(list(range(100)))) == 256  # 99 distinct -> 198 -> 256
    assert classify_bag.bigram_buckets(t(list(range(10**5)))) == classify_bag.BAG_BUCKETS
