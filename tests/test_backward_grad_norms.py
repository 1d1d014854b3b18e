"""Gradient flow during training: the GradNorms callback's per-parameter and per-layer numbers equal
torch's gradient norms at that step (before clipping), survive a resume, and `seqlab plot curves` and
the curves API show them."""

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.data import BucketBatcher
from seqlab.models import ClassifierConfig, EncoderConfig, TextClassifier
from seqlab.train import TrainConfig, Trainer
from seqlab.train.callbacks import default_callbacks
from seqlab.train.grad_flow import GradNorms, grad_norms, layer_of, read_grad_norms


class Spy:
    """Records every step's gradient norms straight from the parameters, after GradNorms has run."""

    def __init__(self):
        self.seen = {}

    def on_after_backward(self, trainer):
        self.seen[trainer.state["step"] + 1] = {n: p.grad.norm().item() for n, p in trainer.model.named_parameters()}


def _setup(clip=0.5, log_every=3):
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(4, 30, (int(n),), generator=g) for n in torch.randint(2, 10, (36,), generator=g)]
    y = torch.tensor([int(s.sum()) % 2 for s in seqs])
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=30, embed_dim=6, hidden=5, cell="rnn", layers=2, bidirectional=True)
    model = TextClassifier(ClassifierConfig(enc, 2, "last"))
    cfg = TrainConfig(epochs=2, batch_size=6, lr=0.05, save_every=0, seed=3, log_every=log_every, clip=clip)
    return model, cfg, BucketBatcher(seqs, y, 6, shuffle=True, seed=3)


def _step(m, b):
    return F.cross_entropy(m(b.ids, b.lengths), b.targets)


def test_logged_norms_are_torchs_grad_norms_at_that_step(tmp_path):
    model, cfg, batches = _setup()
    start = copy.deepcopy(model)
    spy = Spy()
    cbs = [*default_callbacks(tmp_path), spy]
    Trainer(model, cfg, tmp_path, _step, None, meta={"config.json": {"task": "test"}}, callbacks=cbs).fit(batches)
    rows = read_grad_norms(tmp_path)
    assert [r["step"] for r in rows] == [1, 3, 6, 9, 12]  # the first step and every log_every-th
    for r in rows:
        want = spy.seen[r["step"]]
        assert set(r["params"]) == set(want)
        for n, v in want.items():
            assert r["params"][n] == pytest.approx(v, rel=1e-6, abs=1e-12)
        assert r["total"] == pytest.approx(math.sqrt(sum(v * v for v in want.values())), rel=1e-6)
    assert any(r["total"] > cfg.clip for r in rows)  # before clipping: the norms the clip acts on
    logged = {r["step"]: r["grad_norm"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())
              if "grad_norm" in r}
    for r in rows:
        if r["step"] in logged:
            assert r["total"] == pytest.approx(logged[r["step"]], rel=1e-5)  # the Trainer's own pre-clip norm

    batches.set_epoch(0)  # step 1 recomputed by hand from the initial weights and the first batch
    b = next(iter(batches))
    start.train()
    _step(start, b).backward()
    for n, p in start.named_parameters():
        assert rows[0]["params"][n] == pytest.approx(p.grad.norm().item(), rel=1e-6, abs=1e-12)


def test_layers_group_a_fused_rnns_parameters():
    assert layer_of("encoder.rnns.0.weight_hh_l1_reverse") == "encoder.rnns.0.l1"
    assert layer_of("encoder.rnns.0.bias_ih_l0") == "encoder.rnns.0.l0"
    assert layer_of("rnn.weight_ih_l0") == "rnn.l0" and layer_of("out.weight") == "out"
    model, _, batches = _setup()
    b = next(iter(batches))
    _step(model, b).backward()
    g = grad_norms(model)
    assert list(g["layers"]) == ["encoder.embedding", "encoder.rnns.0.l0", "encoder.rnns.0.l1", "out"]
    l1 = [v for n, v in g["params"].items() if layer_of(n) == "encoder.rnns.0.l1"]
    assert len(l1) == 8 and g["layers"]["encoder.rnns.0.l1"] == pytest.approx(math.sqrt(sum(v * v for v in l1)))


def test_resume_drops_the_rows_after_the_checkpoint(tmp_path):
    model, cfg, batches = _setup(log_every=1)
    gn = GradNorms(tmp_path)
    tr = Trainer(model, cfg, tmp_path, _step, None, meta={"config.json": {"task": "test"}}, callbacks=[gn])
    tr.fit(batches)
    n = len(read_grad_norms(tmp_path))
    with open(tmp_path / "grad_norms.jsonl", "a") as f:  # as if a killed run had gone on past last/
        f.write(json.dumps({"step": 999, "total": 1.0, "layers": {}, "params": {}}) + "\n")
    tr2 = Trainer(model, cfg, tmp_path, _step, None, meta={"config.json": {"task": "test"}},
                  callbacks=[GradNorms(tmp_path)])
    tr2.fit(batches, resume=True)
    assert [r["step"] for r in read_grad_norms(tmp_path)] == list(range(1, n + 1))


def test_plot_curves_and_the_curves_api_show_them(tmp_path, capsys):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from seqlab.cli import main
    from seqlab.data.synthetic import contrast_sentiment, write_csv
    from seqlab.viz.curves import curves_figure
    from seqlab.web.app import create_app

    write_csv(contrast_sentiment(48, seed=1), tmp_path / "train.csv")
    run = tmp_path / "models" / "clf"
    assert main(["classify", "train", "--train", str(tmp_path / "train.csv"), "--embed", "6", "--hidden", "5",
                 "--layers", "2", "--epochs", "1", "--batch", "8", "--save-every", "0", "--threads", "1",
                 "--out", str(run)]) == 0
    rows = read_grad_norms(run)
    assert rows and rows[0]["step"] == 1 and "encoder.rnns.0.l1" in rows[0]["layers"]
    fig = curves_figure([run], grad_norms=True)
    assert fig.axes[-1].get_title() == "gradient norm per layer"
    assert {ln.get_label() for ln in fig.axes[-1].lines} == set(rows[0]["layers"])
    assert len(curves_figure([run]).axes) == len(fig.axes) - 1  # loss.png (LossPlot) stays as it was
    assert main(["plot", "curves", str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 0
    j = TestClient(create_app(tmp_path / "models")).get("/api/curves?run=clf").json()["runs"][0]
    assert j["grad_norms"]["out"] == [[r["step"], r["layers"]["out"]] for r in rows]
