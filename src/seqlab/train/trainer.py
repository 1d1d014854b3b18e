"""The one training loop every seqlab task uses.

A task gives the Trainer three things: the model, a `step_fn(model, batch) -> loss` and an
`eval_fn(model) -> {metric: value}`. The Trainer does the rest: AdamW, gradient-norm clipping,
the learning-rate schedule, early stopping on a dev metric, seeding, device choice, a progress
bar, a JSON-lines metrics log, a loss-curve PNG, and checkpoints `best/` and `last/`.

Resuming is exact: `last/` holds the optimizer state, the RNG state and the position inside the
epoch, and the batch order of an epoch depends only on (seed, epoch), so a run that is killed
and resumed ends with the same weights as one that was never interrupted.

Ctrl-C (SIGINT) and, where a handler turns it into KeyboardInterrupt (the CLI does), SIGTERM stop
the training between two steps: the signal is held while a step runs (forward, backward, the
weight update and the bookkeeping after it) and acted on when the step is done, so the `last/`
it saves is one consistent state (weights, optimizer, schedule position, RNG, the step function's
carried state, the position in the data). A second signal while one is held stops at once; the
save then takes the state before the unfinished step if the weights were not touched yet, and
saves nothing if the interrupt came inside the weight update (`--resume` then continues from the
previous checkpoint).

Under torchrun the same loop trains data-parallel: each rank reads its share of every batch and
the step runs as the forward of torch's DistributedDataParallel, which averages the gradients over the
ranks during backward (`seqlab.train.distributed`).

This file holds the loop (epochs, steps, logging); saving and resuming are in `seqlab.train.resume`,
the dev evaluation and the best checkpoint in `seqlab.train.validation` (mixins of the Trainer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from seqlab.errors import UserError
from seqlab.train.distributed import setup
from seqlab.train.lock import RunLock
from seqlab.train.resume import ResumeMixin
from seqlab.train.run_dir import recover, remove_if_no_checkpoint
from seqlab.train.settings import (  # noqa: F401  (TrainConfig, AMP, SCHEDULES, ...: the Trainer's settings)
    AMP,
    SCHEDULES,
    TrainConfig,
    autocast,
    bf16_native,
    lr_factor,
    pick_device,
    resolve_amp,
    seed_everything,
)
from seqlab.train.state import _Clock, _HeldSignals
from seqlab.train.validation import ValidationMixin


class Trainer(ResumeMixin, ValidationMixin):
    """Train `model` with `step_fn` on batches, evaluate with `eval_fn` after each epoch.

    Args:
        model: the nn.Module to train.
        cfg: TrainConfig.
        out: run directory; gets best/, last/, metrics.jsonl and loss.png. None trains in memory: the best
            weights are kept as a copy (no files, no resume).
        step_fn: (model, batch) -> scalar loss tensor (batch already on the device). A step_fn
            with memory between batches may define state_tensors() -> {name: tensor} and
            load_state_tensors(dict); last/ then saves it, so a resume continues it exactly.
        eval_fn: model -> dict of dev metrics (called in eval mode without gradients), or None.
        metric: the key of eval_fn's dict that decides the best checkpoint; `mode` 'max' or 'min'.
        meta: JSON files written into every checkpoint, e.g. {"config.json": ..., "vocab.json": ...}.
        callbacks: objects with any of on_fit_start(trainer, resume), on_after_backward(trainer),
            on_log(trainer, record), on_fit_end(trainer) (seqlab.train.callbacks); None = the defaults for `out`
            (metrics.jsonl and loss.png in a run directory, nothing in memory). Under torchrun they run on rank 0,
            except on_fit_start of a callback with `every_rank = True` (one the step function reads).
        restore_best: load the best weights into `model` when training ends.
        tie: (metric, "min"|"max") that breaks a tie of `metric`, e.g. ("loss", "min") so that of two
            evaluations with the same dev accuracy the one with the lower dev loss is kept.
    """

    def __init__(self, model, cfg: TrainConfig, out: str | Path | None, step_fn: Callable,
                 eval_fn: Callable | None = None, metric: str = "loss", mode: str = "min",
                 meta: dict | None = None, log: Callable[[str], None] = print,
                 callbacks: list | None = None, restore_best: bool = False, tie: tuple[str, str] | None = None,
                 param_groups: list[dict] | None = None):
        self.model, self.cfg, self.out = model, cfg, Path(out) if out is not None else None
        if callbacks is None:
            from seqlab.train.callbacks import default_callbacks

            callbacks = default_callbacks(self.out)
        self.callbacks, self.restore_best = list(callbacks), restore_best
        self._best_state: dict | None = None  # in-memory best weights when out is None
        self.tie = tie
        self.step_fn, self.eval_fn = step_fn, eval_fn
        self.metric, self.mode = metric, mode
        self.meta = meta or {}
        self.dist = setup(pick_device(cfg.device))  # a single process unless started by torchrun
        self.log = log if self.dist.main else (lambda line: None)
        self.device = self.dist.device
        # param_groups: AdamW groups ({"params": [...], "lr_scale": s}); a group trains at lr * s (ULMFiT's
        # discriminative learning rates, seqlab.pipelines.lm_transfer)
        self.opt = torch.optim.AdamW(param_groups or model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._rng = torch.get_rng_state()
        # where an interrupt finds the loop: "idle" between steps (all state consistent), "step" inside
        # forward/backward (weights untouched: the state before the step is _rng and _carried), "update"
        # inside the optimizer step and the counters after it (nothing consistent to save)
        self._phase, self._carried = "idle", None
        self._signals = _HeldSignals(active=False)
        self._last_good: Path | None = None
        # fp16 needs loss scaling; for none/bf16 the scaler is disabled and passes everything through
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        self.state = {"epoch": 0, "batch": 0, "step": 0, "best": None, "best_epoch": None,
                      "bad_evals": 0, "last_eval_step": -1, "elapsed": 0.0, "done": False, "best_tie": None}

    # ---- callbacks ---------------------------------------------------------------------------
    def _write_log(self, rec: dict) -> None:
        if self.dist.main:
            self._callbacks("on_log", rec)

    def _callbacks(self, event: str, *args) -> None:
        """Call `event` on every callback that has it; a full disk (or a denied write) while a callback
        writes its file (metrics.jsonl, loss.png, ...) is a one-line UserError, like a checkpoint's."""
        from seqlab.train.checkpoint import _write_error

        for cb in self.callbacks:
            if hasattr(cb, event):
                try:
                    getattr(cb, event)(self, *args)
                except OSError as e:
                    err = _write_error(Path(e.filename) if getattr(e, "filename", None) else self.out or Path("."), e)
                    if err is e:
                        raise
                    raise err from None

    # ---- the loop ----------------------------------------------------------------------------
    def fit(self, batches, resume: bool = False) -> dict:
        """Train over `batches` (an iterable of Batch with set_epoch and len) for cfg.epochs.

        A run directory is locked for the training's life (one writer per run); a save that a kill
        interrupted is repaired first (`run_dir.recover`)."""
        if self.out is None or not self.dist.main:
            return self._fit(batches, resume)
        since = None if not self.out.exists() else time.time()  # None: this call makes the directory
        try:
            with RunLock(self.out):
                for line in recover(self.out):
                    self.log(line)
                return self._fit(batches, resume)
        except BaseException:  # stopped before any checkpoint (a NaN stop at step 1): leave no empty run behind
            remove_if_no_checkpoint(self.out, since)
            raise

    def _fit(self, batches, resume: bool) -> dict:
        cfg, st = self.cfg, self.state
        self._last_good = None
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        self.model.to(self.device)
        if self.dist.world > 1:
            if not hasattr(batches, "shard"):
                raise UserError(f"{type(batches).__name__} cannot be split across processes; train without torchrun")
            batches.shard(self.dist.rank, self.dist.world)
        if resume:
            self.dist.barrier()  # rank 0 has repaired a last/ that a kill cut short before any rank reads it
            self._resume()
        else:
            seed_everything(cfg.seed + self.dist.rank)  # each rank its own dropout masks
        self._step = self.dist.wrap(self.model, self.step_fn)  # under torchrun: DDP (rank 0's weights to all)
        if self.dist.main:
            self._callbacks("on_fit_start", resume)
        else:  # under torchrun: only callbacks the step itself needs (`every_rank`, e.g. seq2seq's trainer handle)
            for cb in self.callbacks:
                if getattr(cb, "every_rank", False) and hasattr(cb, "on_fit_start"):
                    cb.on_fit_start(self, resume)
        if not cfg.epochs and not cfg.time_budget:
            raise UserError("give a number of epochs or a time budget (--time); with neither, training never ends")
        total = cfg.epochs * len(batches)
        self.clock = _Clock(st["elapsed"])
        self._phase = "idle"
        # single process with a run directory: a signal waits for the end of the step (see the module doc);
        # under torchrun every rank must stop at the same step, so a signal acts at once there
        self._signals = _HeldSignals(active=self.out is not None and self.dist.world == 1)
        with self._signals:
            try:
                if resume:
                    self._finish_interrupted_evaluation(len(batches))
                while (not cfg.epochs or st["epoch"] < cfg.epochs) and not st["done"]:
                    self._train_epoch(batches, total)
                    self._end_epoch()  # also after a partial epoch cut by the time budget
                    self._signals.deliver()
                self._signals.deliver()
            except KeyboardInterrupt:
                self._interrupted()
                raise
        st["elapsed"] = self.clock()
        if self.dist.main and (self.eval_fn is None or st["best"] is None):
            self._save("best", with_state=False)
        if self.dist.main:
            self._callbacks("on_fit_end")
        self.dist.barrier()  # best/ is complete before any rank reads it
        if self.restore_best:
            self.load_best()
        return dict(st)

    @property
    def _epochs_shown(self) -> str:
        return f"/{self.cfg.epochs}" if self.cfg.epochs else ""

    def _train_epoch(self, batches, total: int) -> None:
        cfg, st = self.cfg, self.state
        batches.set_epoch(st["epoch"])
        self.model.train()
        self._callbacks("on_epoch_start")  # e.g. gradual unfreezing (also when a resume starts mid-epoch)
        skip = st["batch"]
        bar = tqdm(batches, total=len(batches), desc=f"epoch {st['epoch'] + 1}{self._epochs_shown}",
                   initial=skip, leave=False, dynamic_ncols=True, disable=None if self.dist.main else True)
        it = iter(bar)
        for _ in range(skip):  # resume inside an epoch: the order is the same, skip what was done
            next(it)
        run_loss, run_n = 0.0, 0
        for batch in it:
            self._rng = torch.get_rng_state()
            self._carried = self.step_fn.state_tensors() if hasattr(self.step_fn, "state_tensors") else None
            self._phase = "step"
            time_frac = self.clock() / cfg.time_budget if cfg.time_budget else 0.0
            factor = lr_factor(st["step"], total, cfg, time_frac)
            for g in self.opt.param_groups:
                g["lr"] = cfg.lr * factor * g.get("lr_scale", 1.0)
            with autocast(cfg, self.device):
                loss = self._step(batch.to(self.device))
            loss = loss.float()
            if not torch.isfinite(loss):
                raise UserError(f"the training loss became {loss.item()} at step {st['step'] + 1}; lower "
                                f"--lr (now {cfg.lr}) or set --clip; {self._good_note()}")
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
            self._callbacks("on_after_backward")  # the step's gradients, before clipping (GradNorms reads them)
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip or float("inf"))
            self._phase = "update"
            self.scaler.step(self.opt)
            self.scaler.update()
            st["step"] += 1
            st["batch"] += 1
            self._phase = "idle"
            run_loss += loss.item()
            run_n += 1
            if st["step"] % cfg.log_every == 0:
                self._log_steps(run_loss, run_n, len(batches), cfg.lr * factor, gnorm, bar)
                run_loss, run_n = 0.0, 0
            if cfg.eval_every and st["step"] % cfg.eval_every == 0 and self.eval_fn:
                self._validate(st["epoch"] + st["batch"] / len(batches))
                if st["done"]:  # early stop or target reached
                    break
                self.model.train()
            if cfg.save_every and st["step"] % cfg.save_every == 0:
                st["elapsed"] = self.clock()
                with self.clock.pause():
                    self._save("last", with_state=True)
            if cfg.time_budget and self.dist.flag(self.clock() > cfg.time_budget):  # rank 0's clock decides
                self.log(f"time budget of {cfg.time_budget:.0f}s reached at step {st['step']}")
                st["done"] = True
                break
            self._signals.deliver()  # the step is complete: a held Ctrl-C / SIGTERM stops here
        if run_n:  # the steps since the last log line, so that even a short run has a loss curve
            self._log_steps(run_loss, run_n, len(batches), cfg.lr * factor, gnorm, bar)
        bar.close()

    def _log_steps(self, run_loss: float, run_n: int, n_batches: int, lr: float, gnorm, bar) -> None:
        """One metrics-log line: the mean training loss of the last `run_n` steps (over the ranks)."""
        st = self.state
        loss = self.dist.mean(run_loss) / run_n
        self._write_log({"step": st["step"], "epoch": st["epoch"] + st["batch"] / n_batches, "loss": loss,
                         "lr": lr, "grad_norm": float(gnorm), "time": self.clock()})
        bar.set_postfix(loss=f"{loss:.4f}")

    def _end_epoch(self) -> None:
        st = self.state
        st["epoch"] += 1
        st["batch"] = 0
        if st["last_eval_step"] != st["step"]:
            self._validate(st["epoch"])
        st["elapsed"] = self.clock()
        with self.clock.pause():
            self._save("last", with_state=True)

