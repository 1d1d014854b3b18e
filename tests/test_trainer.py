"""The Trainer: exact resume after an interrupt or a kill, schedules, NaN guard, atomic checkpoints."""

import json

import pytest
import torch
import torch.nn.functional as F

from seqlab.data import BucketBatcher
from seqlab.errors import UserError
from seqlab.models import ClassifierConfig, EncoderConfig, TextClassifier
from seqlab.train import TrainConfig, Trainer
from seqlab.train.checkpoint import load_weights, save_checkpoint
from seqlab.train.run_dir import resolve_checkpoint
from seqlab.train.trainer import lr_factor


def _data():
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(4, 30, (int(n),), generator=g) for n in torch.randint(1, 12, (40,), generator=g)]
    y = torch.tensor([int(s.sum()) % 2 for s in seqs])
    return seqs, y


def _model():
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=30, embed_dim=8, hidden=8, cell="lstm", dropout=0.3, layers=2,
                        embed_dropout=0.2)
    return TextClassifier(ClassifierConfig(enc, 2, "last", head_dropout=0.3))


class Boom(Exception):
    pass


def _run(tmp, fail_at=None, exc=KeyboardInterrupt, resume=False, epochs=3):
    seqs, y = _data()
    model = _model()
    calls = {"n": 0}

    def step_fn(m, b):
        calls["n"] += 1
        out = m(b.ids, b.lengths)  # uses the RNG (dropout) before a possible interrupt
        if fail_at is not None and calls["n"] == fail_at:
            raise exc()
        return F.cross_entropy(out, b.targets)

    def eval_fn(m):
        return {"accuracy": float((m(*_pad(seqs)).argmax(1) == y).float().mean())}

    cfg = TrainConfig(epochs=epochs, batch_size=6, lr=1e-2, save_every=5, seed=7, log_every=1, schedule="cosine",
                      eval_every=4)
    tr = Trainer(model, cfg, tmp, step_fn, eval_fn, metric="accuracy", mode="max",
                 meta={"config.json": {"task": "test"}})
    batches = BucketBatcher(seqs, y, 6, shuffle=True, seed=7)
    return tr, tr.fit(batches, resume=resume)


def _pad(seqs):
    from seqlab.data import pad_batch

    return pad_batch(seqs, 0)


@pytest.mark.parametrize("exc, fail_at", [(KeyboardInterrupt, 12), (Boom, 13)])
def test_resume_after_interrupt_or_kill_ends_with_identical_weights(tmp_path, exc, fail_at):
    """Ctrl-C saves the state before the unfinished step; a kill (any other death) falls back to
    the last periodic checkpoint. Either way, resuming ends where an uninterrupted run ends."""
    ref, ref_state = _run(tmp_path / "ref")
    with pytest.raises(exc):
        _run(tmp_path / "cut", fail_at=fail_at, exc=exc)
    saved = json.loads((tmp_path / "cut" / "last" / "trainer.json").read_text())
    assert saved["step"] == (fail_at - 1 if exc is KeyboardInterrupt else 10)
    resumed, state = _run(tmp_path / "cut", resume=True)
    assert state["step"] == ref_state["step"]
    for (name, a), b in zip(ref.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    # the metrics log has no duplicated steps after the resume
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(ln)]
    assert steps == sorted(set(steps)) and steps[-1] == ref_state["step"]


def test_best_checkpoint_holds_the_best_epoch(tmp_path):
    tr, st = _run(tmp_path / "run")
    log = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in log if "dev_accuracy" in r]
    assert len(dev) == 3 + 21 // 4  # every 4 steps and at each epoch end (7 steps per epoch)
    best = max(dev, key=lambda r: r["dev_accuracy"])  # the first of equals, as the Trainer keeps it
    assert st["best"] == best["dev_accuracy"] and st["best_epoch"] == best["epoch"]
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    model = _model()
    seqs, y = _data()
    tr = Trainer(model, TrainConfig(epochs=1), tmp_path, lambda m, b: torch.tensor(float("nan")))
    with pytest.raises(UserError, match="loss became nan at step 1; lower --lr"):
        tr.fit(BucketBatcher(seqs, y, 8))


def test_lr_schedules():
    cfg = TrainConfig(lr=1.0, schedule="linear", warmup=10)
    assert lr_factor(0, 110, cfg) == pytest.approx(0.1) and lr_factor(9, 110, cfg) == 1.0
    assert lr_factor(60, 110, cfg) == pytest.approx(0.5)
    cfg.schedule = "cosine"
    assert lr_factor(60, 110, cfg) == pytest.approx(0.5) and lr_factor(110, 110, cfg) == pytest.approx(0.0)


def test_checkpoint_is_replaced_atomically(tmp_path, monkeypatch):
    """A crash while writing a new checkpoint leaves the previous one loadable."""
    model = _model()
    save_checkpoint(tmp_path / "last", model, {"config.json": {"task": "t"}})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("seqlab.train.checkpoint.save_file", broken)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "last", model, {"config.json": {"task": "t"}}, tensors={"x": torch.ones(1)})
    fresh = _model()
    load_weights(fresh, resolve_checkpoint(tmp_path / "last"))
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k])


def test_target_metric_stops_training(tmp_path):
    seqs, y = _data()
    model = _model()
    cfg = TrainConfig(epochs=50, batch_size=8, eval_every=2, target=0.0, save_every=0)
    tr = Trainer(model, cfg, tmp_path, lambda m, b: F.cross_entropy(m(b.ids, b.lengths), b.targets),
                 lambda m: {"loss": 0.0}, metric="loss", mode="min")
    st = tr.fit(BucketBatcher(seqs, y, 8))
    assert st["step"] == 2 and st["done"]


def test_schedule_follows_the_time_budget_when_it_runs_out_first():
    cfg = TrainConfig(schedule="cosine", time_budget=60.0)
    assert lr_factor(0, 0, cfg, 0.0) == pytest.approx(1.0)
    assert lr_factor(10, 0, cfg, 0.5) == pytest.approx(0.5)  # halfway in time: cos(pi/2)
    assert lr_factor(10, 1000, cfg, 1.0) == pytest.approx(0.0)  # time is up before the steps
    assert lr_factor(900, 1000, cfg, 0.1) < 0.03  # the steps run out first
    assert lr_factor(5, 0, TrainConfig(schedule="cosine", warmup=10), 0.9) == pytest.approx(0.6)  # warm-up first


def _tiny_fit(tmp, **kw):
    seqs, y = _data()
    model = _model()
    evals = []

    def eval_fn(m):
        import time

        time.sleep(0.3)  # a slow evaluation must not eat the training budget
        evals.append(1)
        return {"accuracy": 0.5}

    cfg = TrainConfig(batch_size=6, lr=1e-2, seed=7, **kw)
    tr = Trainer(model, cfg, tmp, lambda m, b: F.cross_entropy(m(b.ids, b.lengths), b.targets), eval_fn,
                 metric="accuracy", mode="max", meta={"config.json": {"task": "test"}})
    return tr.fit(BucketBatcher(seqs, y, 6, shuffle=True, seed=7)), evals


def test_time_budget_without_epochs_trains_until_time_is_up_and_excludes_evaluation(tmp_path):
    st, evals = _tiny_fit(tmp_path, epochs=0, time_budget=1.0)
    assert st["epoch"] >= 2 and len(evals) == st["epoch"]  # several passes, one evaluation each
    assert 1.0 <= st["elapsed"] < 1.0 + 0.25 * len(evals)  # the sleeps in evaluation are not counted
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert max(r["time"] for r in lines) <= st["elapsed"] + 1e-6


def test_no_epochs_and_no_time_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="time budget"):
        _tiny_fit(tmp_path, epochs=0)


def test_bf16_autocast_trains_on_cpu_or_says_why_not(tmp_path):
    from seqlab.train.settings import bf16_recurrent_ok

    if not bf16_recurrent_ok("cpu"):  # e.g. AMD EPYC: oneDNN has no bf16 LSTM primitive there
        with pytest.raises(UserError, match="--amp bf16: this CPU's oneDNN has no bfloat16 kernels"):
            _tiny_fit(tmp_path, epochs=2, amp="bf16", log_every=1)
        return
    st, _ = _tiny_fit(tmp_path, epochs=2, amp="bf16", log_every=1)
    losses = [json.loads(x)["loss"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if "loss" in x]
    assert st["step"] == 14 and all(torch.isfinite(torch.tensor(losses)))


def test_fp16_on_cpu_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="CUDA"):
        _tiny_fit(tmp_path, epochs=1, amp="fp16", device="cpu")


def test_a_run_shorter_than_log_every_still_logs_its_loss_and_plots(tmp_path):
    seqs, y = _data()
    cfg = TrainConfig(epochs=1, batch_size=6, lr=1e-2, save_every=0, log_every=20)  # 7 steps < 20
    tr = Trainer(_model(), cfg, tmp_path, lambda m, b: F.cross_entropy(m(b.ids, b.lengths), b.targets),
                 meta={"config.json": {"task": "test"}})
    tr.fit(BucketBatcher(seqs, y, 6, shuffle=True, seed=7))
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in recs if "loss" in r and "step" in r]
    assert [r["step"] for r in losses] == [7] and losses[0]["epoch"] == 1
    assert (tmp_path / "loss.png").is_file()
