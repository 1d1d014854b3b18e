"""Ctrl-C and SIGTERM during training: the progress saved is one consistent state, so `--resume` ends
with the same weights, bit for bit, as a run that was never interrupted.

The in-process tests send a real signal in the middle of a step (after the forward pass has moved the
carried state on, before the weights are updated), where an interrupt used to save the new carried state
with the old weights and data position. The subprocess tests run `seqlab lm train` / `seqlab classify
train`, send SIGTERM (or SIGINT) at a random moment, resume, and compare the tensors of model.safetensors.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqlab.data.streams import StreamBatcher
from seqlab.models.encoder import EncoderConfig
from seqlab.models.language_model import LanguageModel, LMConfig
from seqlab.pipelines.lm import CarriedStateStep
from seqlab.train import TrainConfig, Trainer


@pytest.fixture(autouse=True)
def _ctrl_c_raises():
    """Python's own Ctrl-C handler for every test here: a test run started in the background (`make test &`,
    nohup) inherits SIGINT ignored, and the Trainer rightly leaves an ignored signal ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


# ---- in process: a real signal in the middle of a step ----------------------------------------------
def _lm():
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=23, embed_dim=12, hidden=12, layers=2, cell="lstm")
    return LanguageModel(LMConfig(enc, tie_weights=True, dropout=0.2))  # dropout: the RNG matters too


class SignalledStep(CarriedStateStep):
    """Sends `sig` to this process at call `at`, after the forward pass has replaced the carried state."""

    def __init__(self, batches, at=0, sig=signal.SIGINT, times=1):
        super().__init__(batches)
        self.calls, self.at, self.sig, self.times = 0, at, sig, times

    def __call__(self, model, batch):
        loss = super().__call__(model, batch)
        self.calls += 1
        if self.calls == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), self.sig)
                time.sleep(0.01)  # let Python run the handler here, mid-step
        return loss


def _fit(out, at=0, resume=False, times=1, sig=signal.SIGINT, save_every=0, log=None):
    ids = torch.randint(4, 23, (600,), generator=torch.Generator().manual_seed(5))
    batches = StreamBatcher(ids, 4, 10)
    model = _lm()
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-2, save_every=save_every, seed=3, device="cpu")
    Trainer(model, cfg, out, SignalledStep(batches, at, sig, times), None, log=log or (lambda s: None),
            meta={"config.json": {"task": "test"}}).fit(batches, resume)
    return model.state_dict()


def _same(a: dict, b: dict) -> None:
    for k, v in a.items():
        assert torch.equal(v, b[k]), k


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_in_the_middle_of_a_step_stops_after_it_and_resumes_exactly(tmp_path, sig):
    from seqlab.cli import _sigterm

    # as under the CLI, SIGTERM raises KeyboardInterrupt like Ctrl-C
    before = signal.signal(signal.SIGTERM, _sigterm)
    try:
        whole = _fit(tmp_path / "a")
        lines = []
        with pytest.raises(KeyboardInterrupt):
            _fit(tmp_path / "b", at=7, sig=sig, log=lines.append)  # inside epoch 1 (15 chunks), state carried
        saved = json.loads((tmp_path / "b" / "last" / "trainer.json").read_text())
        assert saved["step"] == 7 and saved["batch"] == 7  # the step that was running was finished
        assert any("progress saved" in ln and "(step 7)" in ln for ln in lines), lines
        _same(whole, _fit(tmp_path / "b", resume=True))
    finally:
        signal.signal(signal.SIGTERM, before)


def test_the_handlers_are_restored_after_training(tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    _fit(tmp_path / "a")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_second_signal_stops_at_once_with_the_state_before_the_step(tmp_path):
    """Twice (an impatient Ctrl-C Ctrl-C) inside forward/backward: the weights are not touched yet, so
    the state before the unfinished step is saved and the resume is still exact."""
    whole = _fit(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "b", at=7, times=2)
    assert json.loads((tmp_path / "b" / "last" / "trainer.json").read_text())["step"] == 6
    _same(whole, _fit(tmp_path / "b", resume=True))


def test_an_interrupt_inside_the_weight_update_saves_nothing_inconsistent(tmp_path, monkeypatch):
    """The optimizer step was half done: nothing is saved, the message names the last periodic checkpoint,
    and resuming from it still ends where the uninterrupted run ends."""
    whole = _fit(tmp_path / "a", save_every=5)
    real, calls = torch.optim.AdamW.step, {"n": 0}

    def step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "b", save_every=5, log=lines.append)
    monkeypatch.setattr(torch.optim.AdamW, "step", real)
    assert json.loads((tmp_path / "b" / "last" / "trainer.json").read_text())["step"] == 5
    assert any("nothing saved" in ln and "(step 5)" in ln for ln in lines), lines
    _same(whole, _fit(tmp_path / "b", resume=True, save_every=5))


# ---- subprocess: `seqlab ... train`, SIGTERM at a random moment, --resume -----------------------
def _text(path: Path) -> Path:
    r = random.Random(0)
    words = "the cat sat on a mat and then it ran to the big red house where some dogs were sleeping".split()
    path.write_text("\n".join(" ".join(r.choice(words) for _ in range(r.randint(4, 12))) for _ in range(800)) + "\n")
    return path


def _csv(path: Path) -> Path:
    from seqlab.data.synthetic import contrast_sentiment, write_csv

    write_csv(contrast_sentiment(400, seed=1), path)
    return path


TASKS = {  # argv after `seqlab`, without --out; training takes about a second of the run
    "lm": lambda d: ["lm", "train", "--data", str(_text(d / "text.txt")), "--hidden", "32", "--seq-len", "16",
                     "--batch", "8", "--epochs", "2", "--amp", "none"],
    "classify": lambda d: ["classify", "train", "--train", str(_csv(d / "train.csv")), "--hidden", "16",
                           "--embed", "16", "--batch", "4", "--epochs", "6", "--patience", "0"],
}
COMMON = ["--threads", "1", "--save-every", "0", "--device", "cpu"]  # no periodic save: the interrupt's own save


def _run(argv, out, *extra):
    r = subprocess.run([sys.executable, "-m", "seqlab", *argv, *COMMON, "--out", str(out), *extra],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def _interrupt(argv, out, seed: int, sig=signal.SIGTERM) -> subprocess.CompletedProcess:
    """Start the training, wait until it is inside the loop (metrics.jsonl appears at step 20), then send
    `sig` after a random delay of 0-0.5 s."""
    p = subprocess.Popen([sys.executable, "-m", "seqlab", *argv, *COMMON, "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(random.Random(seed).uniform(0.0, 0.5))
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)


def _weights(out: Path) -> dict:
    return load_file(str(out / "last" / "model.safetensors"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of each task (made on first use)."""
    d = tmp_path_factory.mktemp("interrupt")
    made = {}

    def get(task):
        if task not in made:
            argv = TASKS[task](d)
            _run(argv, d / f"ref-{task}")
            made[task] = argv, _weights(d / f"ref-{task}")
        return made[task]

    return get


def _check(reference, task, tmp_path, seed, sig=signal.SIGTERM):
    argv, ref = reference(task)
    out = tmp_path / f"cut-{seed}"
    shutil.rmtree(out, ignore_errors=True)
    cut = _interrupt(argv, out, seed, sig)
    if cut.returncode == 0:
        pytest.skip(f"the run ended before the signal (seed {seed}); nothing was interrupted")
    assert cut.returncode == 130, cut.stderr[-2000:]
    assert "Traceback" not in cut.stderr and cut.stderr.strip().endswith("seqlab: interrupted"), cut.stderr
    saved = json.loads((out / "last" / "trainer.json").read_text())
    # the signal came inside the training loop, or after it (final evaluation, plots) with last/ complete
    assert f"progress saved in {out / 'last'}" in cut.stdout or saved["done"] or saved["epoch"] == \
        int(argv[argv.index("--epochs") + 1]), cut.stdout[-1000:]
    saved = saved["step"]
    r = _run(argv, out, "--resume")
    assert "resumed from" in r.stdout
    got = _weights(out)
    assert got.keys() == ref.keys()
    diff = {k: float((got[k].double() - ref[k].double()).abs().max()) for k in ref if not torch.equal(got[k], ref[k])}
    assert not diff, f"resumed from step {saved}: weights differ from the uninterrupted run: {diff}"


def test_lm_sigterm_then_resume_is_bit_exact(reference, tmp_path):
    _check(reference, "lm", tmp_path, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lm_sigterm_at_random_moments_then_resume_is_bit_exact(reference, tmp_path, seed):
    _check(reference, "lm", tmp_path, seed)


@pytest.mark.slow
def test_lm_ctrl_c_then_resume_is_bit_exact(reference, tmp_path):
    _check(reference, "lm", tmp_path, seed=4, sig=signal.SIGINT)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classify_sigterm_then_resume_is_bit_exact(reference, tmp_path, seed):
    _check(reference, "classify", tmp_path, seed)
