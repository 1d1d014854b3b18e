"""Where results are written: a bad --out / --output is one line before any work, a write that fails
(a directory in the way, a full disk) is one line with no temporary file left behind and the previous
checkpoint intact, and a training stopped by NaN/inf names only a checkpoint that exists and is finite
(or says that none was written, and leaves no empty run directory)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqlab.cli import main
from seqlab.data.synthetic import contrast_sentiment, write_csv
from seqlab.errors import UserError
from seqlab.train import TrainConfig, Trainer
from seqlab.train.checkpoint import load_state_tensors, load_weights, read_trainer_state

sys.path.insert(0, str(Path(__file__).parent))
from test_faults import _write_data  # noqa: E402  (the same tiny data files)

TINY = ["--hidden", "8", "--embed", "8", "--epochs", "1", "--save-every", "0", "--threads", "1"]


def _leftovers(*dirs: Path) -> list[str]:
    """Temporary files or directories of an atomic write, anywhere under `dirs`."""
    return [str(p) for d in dirs for p in Path(d).rglob("*") if ".tmp" in p.name or ".old-" in p.name]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqlab: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("outdata")
    return d, _write_data(d)


# ---- --out naming a regular file ------------------------------------------------------------------
@pytest.mark.parametrize("path", ["classify train", "lm train", "translate train", "qa train", "tag train",
                                  "forecast train", "scratch vanishing"])
@pytest.mark.parametrize("where", ["file", "under a file"])
def test_out_naming_a_file_fails_before_anything_is_read(path, where, data, tmp_path, capsys, monkeypatch):
    _, base = data
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    out = precious if where == "file" else precious / "run"
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit) as e:
        main([*path.split(), *base[path], "--out", str(out)])
    assert e.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert "--out" in line and str(precious) in line and "is a file" in line
    assert precious.read_text() == "keep me\n" and sorted(os.listdir(tmp_path)) == ["precious.txt"]


# ---- export --out DIR, predict --output DIR ----------------------------------------------------------
@pytest.fixture(scope="module")
def models(data, tmp_path_factory):
    d, base = data
    runs = tmp_path_factory.mktemp("outruns")
    assert main(["classify", "train", *base["classify train"], *TINY, "--out", str(runs / "clf")]) == 0
    assert main(["tag", "train", *base["tag train"], *TINY, "--dev-fraction", "0.3", "--out", str(runs / "tag")]) == 0
    assert main(["forecast", "train", *base["forecast train"], *TINY, "--ensemble", "1", "--out",
                 str(runs / "fc")]) == 0
    assert main(["translate", "train", *base["translate train"], *TINY, "--out", str(runs / "tr")]) == 0
    return d, runs


@pytest.mark.parametrize("name", ["adir", "model.onnx", "model.pt"])
def test_export_to_a_directory_is_one_line_and_leaves_no_temp_file(models, tmp_path, capsys, name):
    _, runs = models
    target = tmp_path / name
    target.mkdir()
    assert main(["export", "--model", str(runs / "clf"), "--out", str(target)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"--out {target} is a directory" in line
    assert os.listdir(tmp_path) == [name] and not os.listdir(target)


def test_export_disk_full_is_one_line_and_leaves_nothing(models, tmp_path, capsys, monkeypatch):
    import seqlab.export.export as ex

    _, runs = models

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ex.os, "fsync", full)
    assert main(["export", "--model", str(runs / "clf"), "--out", str(tmp_path / "m.pt")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "no space left to write" in line and str(tmp_path / "m.pt") in line
    assert os.listdir(tmp_path) == []


def _predict_cases(d: Path, runs: Path, target: Path) -> list[list[str]]:
    t = str(target)
    return [
        ["classify", "predict", "--model", str(runs / "clf"), "--output", t, "a film"],
        ["tag", "predict", "--model", str(runs / "tag"), "--output", t, "the cat"],
        ["tag", "eval", "--model", str(runs / "tag"), "--data", str(d / "train.conll"), "--output", t],
        ["forecast", "predict", "--model", str(runs / "fc"), "--output", t],
        ["translate", "eval", "--model", str(runs / "tr"), "--data", str(d / "pairs.tsv"), "--output", t],
    ]


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_predict_output_that_cannot_be_a_file_is_one_line_and_leaves_no_temp_file(models, tmp_path, capsys, where):
    d, runs = models
    blocker = tmp_path / "blocker"
    if where == "a directory":
        blocker.mkdir()
        target = blocker
    else:
        blocker.write_text("x\n")
        target = blocker / "pred.csv"
    for argv in _predict_cases(d, runs, target):
        capsys.readouterr()
        assert main(argv) == 2, argv
        line = _one_line(capsys.readouterr().err)
        assert str(blocker) in line, (argv, line)
        assert sorted(os.listdir(tmp_path)) == ["blocker"] and not _leftovers(tmp_path), argv
    if where == "a directory":
        assert os.listdir(blocker) == []


# ---- a full disk while a checkpoint is written ----------------------------------------------------
def _limited(argv: list[str], limit: int, cwd: Path) -> subprocess.CompletedProcess:
    """`seqlab argv` with every file it writes limited to `limit` bytes (a full disk: EFBIG)."""
    code = ("import resource, sys\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
            "from seqlab.cli import main\n"
            f"sys.exit(main({argv!r}))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_disk_full_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path):
    write_csv(contrast_sentiment(120, seed=1), tmp_path / "train.csv")
    out = tmp_path / "run"
    args = ["classify", "train", "--train", str(tmp_path / "train.csv"), "--hidden", "32", "--embed", "32",
            "--batch", "16", "--save-every", "0", "--threads", "1", "--patience", "0", "--out", str(out)]
    assert main([*args, "--epochs", "1"]) == 0
    before = read_trainer_state(out / "last")
    weights, state = (out / "last" / "model.safetensors").stat().st_size, (out / "last" / "state.safetensors").stat()
    limit = (weights + state.st_size) // 2  # the weights fit, the optimizer state of last/ does not
    r = _limited([*args, "--epochs", "2", "--resume"], limit, tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    line = _one_line(r.stderr)
    assert f"no space left to write {out / 'last'}" in line and "free disk space, then --resume" in line
    assert not _leftovers(out), _leftovers(out)
    assert read_trainer_state(out / "last")["step"] == before["step"]  # the previous last/ is still there
    load_state_tensors(out / "last")
    # and it resumes once there is room again
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    assert read_trainer_state(out / "last")["step"] == 2 * before["step"]


def test_a_full_disk_while_writing_the_metrics_log_is_one_line(tmp_path, monkeypatch):
    """A callback's file (metrics.jsonl here) on a full disk: a UserError, not a traceback."""
    from seqlab.train.callbacks import MetricsLog

    def full(self, trainer, rec):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr(MetricsLog, "on_log", full)
    with pytest.raises(UserError, match=r"no space left to write .*metrics\.jsonl"):
        _nan_trainer(tmp_path / "run", loss=lambda m, b: m(b.ids, b.lengths).sum() * 0).fit(_batches())


# ---- NaN / inf stops ------------------------------------------------------------------------------
def _batches():
    from seqlab.data import BucketBatcher

    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(4, 30, (5,), generator=g) for _ in range(24)]
    return BucketBatcher(seqs, torch.tensor([i % 2 for i in range(24)]), 6)


def _nan_trainer(out, loss, **kw):
    from seqlab.models import ClassifierConfig, EncoderConfig, TextClassifier

    torch.manual_seed(0)
    model = TextClassifier(ClassifierConfig(EncoderConfig(vocab_size=30, embed_dim=4, hidden=4), 2, "last"))
    cfg = TrainConfig(epochs=2, batch_size=6, log_every=1, device="cpu", **kw)
    return Trainer(model, cfg, out, loss, meta={"config.json": {"task": "test"}}, log=lambda s: None)


def test_a_nan_stop_before_any_checkpoint_leaves_no_run_directory(tmp_path):
    with pytest.raises(UserError, match="loss became nan at step 1; .*no checkpoint was written"):
        _nan_trainer(tmp_path / "run", lambda m, b: torch.tensor(float("nan"), requires_grad=True)).fit(_batches())
    assert not (tmp_path / "run").exists()


def test_a_nan_stop_in_an_existing_directory_removes_only_what_it_wrote(tmp_path, capsys):
    write_csv(contrast_sentiment(200, seed=1), tmp_path / "train.csv")
    argv = ["classify", "train", "--train", str(tmp_path / "train.csv"), "--batch", "8", *TINY, "--lr", "1e30"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    (mine / "loss.png").write_bytes(b"not ours either")
    assert main([*argv, "--out", str(mine)]) == 2
    assert "no checkpoint was written" in capsys.readouterr().err
    assert sorted(os.listdir(mine)) == ["loss.png", "notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*argv, "--out", str(empty)]) == 2
    assert not empty.exists()


@pytest.mark.parametrize("task", ["classify", "lm"])
def test_lr_1e30_from_the_command_line_says_no_checkpoint_and_leaves_no_run(task, tmp_path, capsys):
    """The weights blow up inside the first epoch, before any checkpoint."""
    out = tmp_path / "run"
    if task == "classify":
        write_csv(contrast_sentiment(200, seed=1), tmp_path / "train.csv")
        argv = ["classify", "train", "--train", str(tmp_path / "train.csv"), "--batch", "8"]
    else:
        (tmp_path / "t.txt").write_text("the cat sat on the mat and the dog ran after it\n" * 100)
        argv = ["lm", "train", "--data", str(tmp_path / "t.txt"), "--batch", "4", "--seq-len", "8"]
    assert main([*argv, *TINY, "--lr", "1e30", "--epochs", "3", "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "became" in line and "no checkpoint was written" in line and "last good" not in line, line
    assert not out.exists()


def test_a_nan_stop_names_only_a_finite_last_checkpoint_that_exists(tmp_path, capsys):
    """--lr 1e10 with a checkpoint every step: the stop names last/ with its step, and that last/ is there,
    loads, and holds finite weights and optimizer state."""
    write_csv(contrast_sentiment(80, seed=1), tmp_path / "train.csv")
    out = tmp_path / "run"
    assert main(["classify", "train", "--train", str(tmp_path / "train.csv"), "--hidden", "8", "--embed", "8",
                 "--epochs", "3", "--lr", "1e10", "--clip", "0", "--save-every", "1", "--threads", "1",
                 "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "lower --lr" in line
    if "no checkpoint was written" in line:  # the very first step overflowed
        assert not out.exists()
        return
    named = line.split("the last good checkpoint is ", 1)[1]
    path, step = named.rsplit(" (step ", 1)
    assert Path(path) == out / "last" and read_trainer_state(out / "last")["step"] == int(step.rstrip(")"))
    from safetensors.torch import load_file

    for f in ("model.safetensors", "state.safetensors"):
        assert all(bool(torch.isfinite(v).all()) for v in load_file(str(out / "last" / f)).values()
                   if v.is_floating_point()), f
    assert json.loads((out / "last" / "trainer.json").read_text())["step"] == int(step.rstrip(")"))


def test_optimizer_state_that_overflowed_is_never_saved(tmp_path):
    """Finite weights but an inf in AdamW's second moment (a huge gradient squared): not a good checkpoint."""
    tr = _nan_trainer(tmp_path / "run", lambda m, b: m(b.ids, b.lengths).sum(), save_every=1)
    real = torch.optim.AdamW.step

    def step(self, *a, **k):
        out = real(self, *a, **k)
        if tr.state["step"] == 2:
            next(iter(self.state.values()))["exp_avg_sq"].fill_(float("inf"))
        return out

    torch.optim.AdamW.step = step
    try:
        with pytest.raises(UserError, match=r"became inf or nan by step 3; .* the last good checkpoint is "
                                            r".*last \(step 2\)"):
            tr.fit(_batches())
    finally:
        torch.optim.AdamW.step = real
    load_weights(_nan_trainer(None, None).model, tmp_path / "run" / "last")
