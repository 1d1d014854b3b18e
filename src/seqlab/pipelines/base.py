"""The surface every task's pipeline shares, and the one training skeleton behind every `fit`.

    pipe = Classifier.fit("train.csv", epochs=3, hidden=64)     # data as paths or Python objects
    pipe.predict(["a fine film"])                                # the task's natural output
    pipe.evaluate("test.csv")                                    # {metric: value}
    pipe.save("model/");  seqlab.load("model/")                  # one directory, no pickle

`run_training` is what used to be written once per task: check the run directory, seed, count the
parameters, train with the one Trainer (in memory when `out` is None), take the best weights, write
run.yaml and results.json.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from seqlab.errors import UserError
from seqlab.pipelines.config import Config
from seqlab.train.checkpoint import save_checkpoint
from seqlab.train.lock import RunLock
from seqlab.train.run_dir import recover, remove_if_no_checkpoint
from seqlab.train.trainer import Trainer

logger = logging.getLogger("seqlab")


@dataclass
class Steps:
    """One text as the model reads it, for the unroller: `tokens` (time,) as shown; `inputs` what the
    encoder takes, ids (time,) or features (time, input_dim); `kind` what `probs` holds per step:
    'classes' (time, classes), 'next_token' (time, top_k) with `top_tokens` (time, top_k),
    'tags' (time, tags), or 'none'. `labels`: class or tag names; `note`: what the output means."""

    tokens: list[str]
    inputs: torch.Tensor
    kind: str = "none"
    probs: np.ndarray | None = None
    labels: list[str] | None = None
    top_tokens: list[list[str]] | None = None
    note: str = ""


@dataclass
class Readout:
    """One text as the backward view and input saliency differentiate it (`Pipeline.readout`).

    model: the module `run` calls (its `encoder` inside it is what the unroller recomputes; they run
    it on a float64 copy of `model` whose encoder is replaced by the recomputed steps); tokens, inputs:
    as in `Steps`; run(model, n) -> logits (n, positions, choices): the model's scores for n copies of
    the text (softmax over the last axis gives its probabilities; a CRF tagger's are log-marginals);
    positions: a name for each output position; labels: the name of each choice (classes, tags, the
    vocabulary); targets (positions,): the choice each position is scored on by default (-1: the
    model's most likely); position: the position shown by default; total: the positions a
    whole-sequence loss sums over; regression: one raw output, no softmax."""

    model: torch.nn.Module
    encoder: torch.nn.Module
    tokens: list[str]
    inputs: torch.Tensor
    run: object
    positions: list[str]
    labels: list[str]
    targets: list[int]
    position: int = -1
    total: list[int] | None = None
    regression: bool = False


def shown(tok: str) -> str:
    """A token as the unroller prints it: whitespace made visible."""
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(tok, tok)


class Pipeline:
    """Base of every task pipeline: `fit` (classmethod), `predict`, `evaluate`, `save`, `load`."""

    task: ClassVar[str]
    Config: ClassVar[type[Config]]
    model: torch.nn.Module
    config: Config | None = None
    results: dict | None = None  # what fit measured (dev metrics, best epoch, time, steps, parameters)
    history: list[dict] | None = None  # the metrics records of fit (training loss, dev metrics)

    @classmethod
    def make_config(cls, config=None, **overrides) -> Config:
        """A config from a Config, a dict, a run.yaml path or None (defaults), with flat overrides."""
        if config is None:
            config = cls.Config()
        elif isinstance(config, dict):
            config = cls.Config.from_dict(config)
        elif isinstance(config, (str, Path)):
            config = cls.Config.read(config)
        return config.with_values(**overrides).validate() if overrides else config.validate()

    def meta(self) -> dict:  # the JSON files of a checkpoint: config.json, vocab.json
        raise NotImplementedError

    @classmethod
    def graph_model(cls, cfg: dict) -> tuple[str, torch.nn.Module]:
        """(inference-graph kind, the eager model with random weights) for a checkpoint's config.json:
        what `seqlab.export` traces ('classify', 'lm', 'seq2seq', 'tag', 'forecast')."""
        raise UserError(f"a {cls.task} model cannot be exported")

    @property
    def encoder(self) -> torch.nn.Module | None:
        """The RecurrentEncoder that the unroller shows, or None (no tokens to unroll)."""
        return getattr(self.model, "encoder", None)

    def steps(self, text: str, top_k: int = 5) -> Steps:
        """What the model reads and says at each step of `text` (the unroller's view of it)."""
        raise UserError(f"the unroller shows text models; a {self.task} model has no tokens to unroll")

    def count_steps(self, text: str) -> int:
        """len(steps(text).tokens), from the tokenizer alone (no model run): what unrolling `text` costs."""
        raise UserError(f"the unroller shows text models; a {self.task} model has no tokens to unroll")

    def readout(self, text: str) -> Readout:
        """`text` as the backward view and input saliency differentiate it (see `Readout`)."""
        raise UserError(f"the backward view shows text models; a {self.task} model has no tokens to unroll")

    def save(self, path: str | Path) -> Path:
        """Write this model as a checkpoint directory that `seqlab.load` (and the CLI's --model) opens."""
        path = save_checkpoint(path, self.model, self.meta())
        if self.config is not None:
            write_text_atomic(Path(path) / "run.yaml", run_yaml(self.task, self.config))
        return path

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"<{type(self).__name__} task={self.task!r} parameters={n:,}>"


def run_yaml(task: str, config: Config) -> str:
    return f"task: {task}\n" + config.to_yaml()


def check_out_dir(out: str | Path, resume: bool, overwrite: bool) -> Path:
    """Refuse to silently overwrite an earlier run; the user must say resume or overwrite."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a directory; give another --out")
    if resume:
        if not (path / "last").is_dir():
            raise UserError(f"{path} holds no run to resume (no last/ checkpoint); drop --resume")
        return path
    if path.exists() and any((path / n).exists() for n in ("best", "last", "metrics.jsonl")):
        if not overwrite:
            raise UserError(f"{path} already holds a training run; pass --resume to continue it "
                            "or --overwrite to replace it")
        for n in ("best", "last"):
            shutil.rmtree(path / n, ignore_errors=True)
    return path


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a user-visible text file atomically (see `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write a user-visible output file via `.NAME.tmp-PID`, fsync and a rename: never half a file, and
    no temporary file left behind whatever stops it (a full disk is a one-line UserError)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory; give a file name to write")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink()
        except OSError:  # never made (or its folder could not be)
            pass
        if isinstance(e, OSError):
            from seqlab.train.checkpoint import _write_error

            err = _write_error(path, e)
            raise (err if err is not e else UserError(f"cannot write {path} ({e.strerror or e})")) from None
        raise


def run_training(pipe: Pipeline, batches, step_fn, eval_fn, *, metric: str, mode: str, default_epochs: int = 10,
                 out=None, resume: bool = False, overwrite: bool = False, callbacks=None, log=print,
                 trainer_config=None, tie=None, param_groups=None) -> dict:
    """Train `pipe.model` with the one Trainer; afterwards the model holds the best weights.
    `param_groups`: the optimizer's groups with their "lr_scale" (None: one group of all parameters).

    Returns the trainer's final state ({"step", "epoch", "best", "best_epoch", "elapsed", ...}) with
    "parameters" added; `pipe.history` gets the metrics records.
    """
    cfg = pipe.config
    tcfg = trainer_config or cfg.train.trainer_config(default_epochs)
    other_rank = int(os.environ.get("RANK", "0")) != 0  # under torchrun rank 0 owns the run directory
    if out is None or other_rank or (resume and not Path(out).is_dir()):
        run_dir = check_out_dir(out, resume, overwrite) if out is not None else None
        return _train(pipe, cfg, tcfg, run_dir, batches, step_fn, eval_fn, metric, mode, resume, callbacks, log, tie,
                      param_groups)
    if Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"{out} is a file, not a directory; give another --out")
    since = None if not Path(out).exists() else time.time()  # None: this call makes the directory
    try:
        with RunLock(out):  # one writer per run directory, from the first check to the last checkpoint
            for line in recover(out):
                log(line)
            run_dir = check_out_dir(out, resume, overwrite)
            write_text_atomic(run_dir / "run.yaml", run_yaml(pipe.task, cfg))
            return _train(pipe, cfg, tcfg, run_dir, batches, step_fn, eval_fn, metric, mode, resume, callbacks, log,
                          tie, param_groups)
    except BaseException:  # stopped before any checkpoint (NaN at step 1, ...): no run directory left behind
        remove_if_no_checkpoint(out, since)
        raise



def _train(pipe, cfg, tcfg, run_dir, batches, step_fn, eval_fn, metric, mode, resume, callbacks, log, tie,
           param_groups=None) -> dict:
    if callbacks is None:
        from seqlab.train.callbacks import default_callbacks

        callbacks = default_callbacks(run_dir, getattr(cfg.train, "logger", "jsonl"))
    trainer = Trainer(pipe.model, tcfg, run_dir, step_fn, eval_fn, metric=metric, mode=mode, meta=pipe.meta(),
                      log=log, callbacks=callbacks, restore_best=True, tie=tie, param_groups=param_groups)
    st = trainer.fit(batches, resume=resume)
    hist = next((cb for cb in callbacks if hasattr(cb, "records")), None)
    pipe.history = hist.records if hist is not None else None
    st["parameters"] = sum(p.numel() for p in pipe.model.parameters())
    return st


def finish(pipe: Pipeline, st: dict, metrics: dict, out=None, prefix: str = "dev", extra: dict | None = None) -> dict:
    """pipe.results (and results.json in the run directory): the best model's `metrics` (named
    `prefix`_name), `extra` figures (already named) and the run's figures."""
    res = {f"{prefix}_{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "n"}
    res |= extra or {}
    res |= {"best_epoch": st.get("best_epoch"), "train_seconds": round(st.get("elapsed", 0.0), 1),
            "steps": st.get("step"), "parameters": st.get("parameters")}
    pipe.results = res
    if out is not None:
        write_text_atomic(Path(out) / "results.json", json.dumps(res, indent=2) + "\n")
    return res
