"""Trainer callbacks: what happens around the loop besides training (minGPT-style events).

Each callback defines any of
    on_fit_start(trainer, resume)   before the first step (after a resume has loaded last/)
    on_after_backward(trainer)      after each step's backward pass, before clipping (the gradients)
    on_log(trainer, record)         a metrics record: {"step", "epoch", "loss", "lr", ...} or {"dev_...": ...}
    on_fit_end(trainer)             after the last step, best/ written

`default_callbacks(out)` is what a run directory gets: metrics.jsonl and loss.png. TensorBoard is one more
(`TensorBoardLog`, `--logger tensorboard`; needs `pip install seqlab[tensorboard]`). `SampleText` writes a
short sample of a language model every N evaluations (`seqlab lm train --sample-every N`).
"""

from __future__ import annotations

import json
from pathlib import Path

from seqlab.errors import UserError


class MetricsLog:
    """Append every record to out/metrics.jsonl; on resume drop the lines written after the checkpoint."""

    def __init__(self, out: str | Path):
        self.path = Path(out) / "metrics.jsonl"

    def on_fit_start(self, trainer, resume: bool) -> None:
        if not resume:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            step = trainer.state["step"]
            keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
            self.path.write_text("".join(ln + "\n" for ln in keep))

    def on_log(self, trainer, rec: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")


class LossPlot:
    """Draw out/loss.png (training loss and dev metrics) from metrics.jsonl when training ends."""

    def __init__(self, out: str | Path):
        self.out = Path(out)

    def on_fit_end(self, trainer) -> None:
        from seqlab.viz.curves import plot_curves

        try:
            plot_curves([self.out], self.out / "loss.png")
        except ValueError:
            pass  # too few steps to draw a curve


class History:
    """Keep every record in memory (`.records`): the curves of a run without a directory."""

    def __init__(self):
        self.records: list[dict] = []

    def on_fit_start(self, trainer, resume: bool) -> None:
        self.records = [r for r in self.records if r["step"] <= trainer.state["step"]] if resume else []

    def on_log(self, trainer, rec: dict) -> None:
        self.records.append(dict(rec))


class TensorBoardLog:
    """Write every numeric record to TensorBoard event files in `logdir` (default out/tensorboard)."""

    def __init__(self, logdir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("TensorBoard logging needs the tensorboard package: pip install 'seqlab[tensorboard]'") \
                from None
        self._make, self.logdir, self.writer = SummaryWriter, str(logdir), None

    def on_fit_start(self, trainer, resume: bool) -> None:
        # the event file is opened when training starts, not when the callback is made: a run that is
        # refused (an existing --out without --resume/--overwrite) leaves no file behind
        if self.writer is None:
            self.writer = self._make(self.logdir)

    def on_log(self, trainer, rec: dict) -> None:
        if self.writer is None:
            self.on_fit_start(trainer, False)
        for k, v in rec.items():
            if k not in ("step", "epoch") and isinstance(v, (int, float)):
                tag = f"dev/{k[4:]}" if k.startswith("dev_") else f"train/{k}"
                self.writer.add_scalar(tag, v, rec["step"])
        self.writer.flush()

    def on_fit_end(self, trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class SampleText:
    """Every `every` dev evaluations, write a short sample of the model as it trains (as char-rnn does).

    `sample(k)` returns the text of the k-th sample (k = 1, 2, ...; it should draw from its own seeded
    generator so the training's random stream, and with it an exact resume, is left alone); `write`
    gets the lines (default: the Trainer's log, where the epoch lines go)."""

    def __init__(self, sample, every: int, write=None):
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.sample, self.every, self.write = sample, every, write
        self.evals = 0

    def on_fit_start(self, trainer, resume: bool) -> None:
        self.evals = 0

    def on_log(self, trainer, rec: dict) -> None:
        if not any(k.startswith("dev_") for k in rec):
            return
        self.evals += 1
        if self.evals % self.every:
            return
        text = self.sample(self.evals // self.every)
        (self.write or trainer.log)(f"--- sample at epoch {rec['epoch']:g}, step {rec['step']} ---\n{text}\n---")


LOGGERS = ("jsonl", "tensorboard")


def default_callbacks(out: str | Path | None, log: str = "jsonl") -> list:
    """metrics.jsonl, loss.png and grad_norms.jsonl (`seqlab.train.grad_flow`) in a run directory
    (+ TensorBoard with log="tensorboard"); History in memory."""
    if out is None:
        return [History()]
    from seqlab.train.grad_flow import GradNorms

    cbs = [MetricsLog(out), LossPlot(out), History(), GradNorms(out)]
    if log == "tensorboard":
        cbs.append(TensorBoardLog(Path(out) / "tensorboard"))
    return cbs
