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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from seqlab.errors import UserError
from seqlab.train.checkpoint import (
    load_state_tensors,
    load_weights,
    read_trainer_state,
    recover,
    remove_if_no_checkpoint,
    save_checkpoint,
)
from seqlab.train.distributed import setup
from seqlab.train.lock import RunLock
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
from seqlab.train.state import _Clock, _HeldSignals, _optimizer_from_flat, _optimizer_to_flat


class Trainer:
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

    # ---- checkpoints -------------------------------------------------------------------------
    def _last_checkpoint(self, finite: bool = True) -> tuple[Path, int] | None:
        """(last/, its step) when this run has a last/ on disk, readable (with `finite`: finite weights and
        optimizer state, read back); else None. For messages after a failure, which must not point at a
        checkpoint that is not there."""
        from seqlab.train.checkpoint import STATE, WEIGHTS, _load_tensors

        ckpt = self._last_good
        try:
            if ckpt is not None and (ckpt / "trainer.json").is_file():
                step = read_trainer_state(ckpt)["step"]
                if not finite or all(bool(torch.isfinite(v).all()) for f in (WEIGHTS, STATE)
                                     for v in _load_tensors(ckpt / f).values() if v.is_floating_point()):
                    return ckpt, step
        except UserError:
            pass
        return None

    def _good_note(self) -> str:
        last = self._last_checkpoint()
        if last:
            return f"the last good checkpoint is {last[0]} (step {last[1]})"
        if self.out is not None and (self.out / "best" / "model.safetensors").is_file():
            return f"no last/ checkpoint to resume from; the best weights so far are in {self.out / 'best'}"
        return "no checkpoint was written"

    def _save(self, name: str, with_state: bool, rng: torch.Tensor | None = None,
              step_state: dict | None = None) -> None:
        tensors = trainer = None
        if with_state:
            own = {"rng.torch": torch.get_rng_state() if rng is None else rng}
            if hasattr(self.step_fn, "state_tensors"):  # e.g. an LM's carried hidden state
                carried = self.step_fn.state_tensors() if step_state is None else step_state
                own.update({f"step.{k}": v for k, v in carried.items()})
            if torch.cuda.is_available():
                own["rng.cuda"] = torch.cuda.get_rng_state()
            tensors, opt_js = _optimizer_to_flat(self.opt)
            tensors.update(self.dist.stack(own))  # every rank's, (world, ...), in a multi-process run
            trainer = {**self.state, "optimizer": opt_js, "train_config": asdict(self.cfg),
                       "world_size": self.dist.world}
        if not self.dist.main:
            return
        finite = all(bool(torch.isfinite(v).all()) for v in self.model.state_dict().values() if v.is_floating_point())
        if finite and tensors is not None:  # the optimizer's moments overflow before the weights do
            finite = all(bool(torch.isfinite(v).all()) for v in tensors.values() if v.is_floating_point())
        if not finite:
            raise UserError(f"the weights became inf or nan by step {self.state['step']}; lower --lr (now "
                            f"{self.cfg.lr}) or set --clip; {self._good_note()}")
        if self.out is None:  # in memory: keep a copy of the best weights; there is no last/ to resume
            if name == "best":
                self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            return
        save_checkpoint(self.out / name, self.model, self.meta, tensors, trainer)
        if name == "last":
            self._last_good = self.out / name

    def _resume(self) -> None:
        if self.out is None:
            raise UserError("resuming needs the run directory of the interrupted training; give out=")
        ckpt = self.out / "last"
        if not (ckpt / "trainer.json").is_file():
            raise UserError(f"nothing to resume in {self.out} (no last/trainer.json); drop --resume")
        load_weights(self.model, ckpt, self.device)
        tr = read_trainer_state(ckpt)
        tensors = load_state_tensors(ckpt)
        _optimizer_from_flat(self.opt, {k: v.to(self.device) for k, v in tensors.items()}, tr["optimizer"])
        tensors = self.dist.pick({k: v for k, v in tensors.items() if not k.startswith("opt.")},
                                 tr.get("world_size", 1))
        torch.set_rng_state(tensors["rng.torch"])
        if hasattr(self.step_fn, "load_state_tensors"):
            self.step_fn.load_state_tensors({k[5:]: v.to(self.device) for k, v in tensors.items()
                                             if k.startswith("step.")})
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        self.state.update({k: tr.get(k, self.state[k]) for k in self.state})
        self._last_good = ckpt
        self.log(f"resumed from {ckpt} at epoch {self.state['epoch'] + 1}, step {self.state['step']}")

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
    def evaluate(self) -> dict:
        self.model.eval()
        with torch.no_grad():
            return self.eval_fn(self.model) if self.eval_fn else {}

    def _improved(self, value: float, metrics: dict) -> bool:
        best = self.state["best"]
        if best is None or (value > best if self.mode == "max" else value < best):
            return True
        if value != best or self.tie is None or self.tie[0] not in metrics or self.state["best_tie"] is None:
            return False
        t, bt = metrics[self.tie[0]], self.state["best_tie"]
        return t > bt if self.tie[1] == "max" else t < bt

    def fit(self, batches, resume: bool = False) -> dict:
        """Train over `batches` (an iterable of Batch with set_epoch and len) for cfg.epochs.

        A run directory is locked for the training's life (one writer per run); a save that a kill
        interrupted is repaired first (`checkpoint.recover`)."""
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

    def _interrupted(self) -> None:
        """Save last/ after a KeyboardInterrupt, if the state it found is consistent (see _phase)."""
        st = self.state
        if self.out is None:
            return
        if self.dist.world > 1:  # the other ranks may be gone already: no collective save
            self.log(f"interrupted; nothing saved; {self._resume_note()}")
            return
        if self._phase == "update":  # inside the weight update: neither the state before nor after it
            self.log(f"interrupted while the weights were being updated (step {st['step'] + 1}); nothing saved; "
                     f"{self._resume_note()}")
            return
        st["elapsed"] = self.clock()
        before = self._phase == "step"  # forward/backward: the weights are as they were before this step
        self._save("last", with_state=True, rng=self._rng if before else None,
                   step_state=self._carried if before else None)
        self.log(f"interrupted; progress saved in {self.out / 'last'} (step {st['step']}); continue with --resume")

    def _resume_note(self) -> str:
        last = self._last_checkpoint(finite=False)  # every last/ written was checked finite when saved
        return f"--resume continues from {last[0]} (step {last[1]})" if last else "no checkpoint was written"

    def _finish_interrupted_evaluation(self, n_batches: int) -> None:
        """A resumed run whose evaluation was cut short (an interrupt during it) does that evaluation
        first, and what followed it (the checkpoint at an epoch end, the epoch end of an early stop),
        as the uninterrupted run did."""
        cfg, st = self.cfg, self.state
        at_epoch_end = st["batch"] == 0 and st["epoch"] > 0
        mid_epoch = bool(cfg.eval_every and self.eval_fn and st["batch"] and st["step"] % cfg.eval_every == 0)
        if st["done"] or st["step"] == 0 or st["last_eval_step"] == st["step"] or not (at_epoch_end or mid_epoch):
            return
        self._validate(st["epoch"] + st["batch"] / n_batches)
        if mid_epoch and st["done"]:
            self._end_epoch()
        elif at_epoch_end:
            st["elapsed"] = self.clock()
            with self.clock.pause():
                self._save("last", with_state=True)

    def load_best(self) -> None:
        """Put the best weights (best/ on disk, or the in-memory copy) into the model."""
        if self.out is None:
            if self._best_state is not None:
                self.model.load_state_dict(self._best_state)
        elif (self.out / "best").is_dir():
            load_weights(self.model, self.out / "best", self.device)

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

    def _validate(self, epoch: float) -> None:
        """Evaluate on dev, log it, keep the best checkpoint, count evaluations without gain.
        The training clock stops meanwhile: `--time` budgets training, not evaluation."""
        with self.clock.pause():
            if self.dist.main:  # rank 0 evaluates; its decision to stop goes to every rank
                self._callbacks("on_validate_start")  # e.g. averaged weights in, for the scores and best/
                try:
                    self._validate_paused(epoch)
                finally:
                    self._callbacks("on_validate_end")
            self.state["done"] = self.dist.flag(self.state["done"])
            self.state["last_eval_step"] = self.state["step"]

    def _validate_paused(self, epoch: float) -> None:
        st = self.state
        st["elapsed"] = self.clock()
        metrics = self.evaluate()
        rec = {"step": st["step"], "epoch": round(epoch, 4), "time": st["elapsed"],
               **{f"dev_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}}
        self._write_log(rec)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in rec.items() if k.startswith("dev_") and k != "dev_n")
        line = f"epoch {epoch:.4g}{self._epochs_shown}  step {st['step']}  {shown}  ({st['elapsed']:.0f}s)"
        if st["done"]:
            line += "  (time budget reached)"
        if self.metric in metrics:
            if self._improved(metrics[self.metric], metrics):
                self._save("best", with_state=False)  # first: an interrupt inside it leaves best and best/ as they were
                st["best"], st["best_epoch"], st["bad_evals"] = metrics[self.metric], rec["epoch"], 0
                st["best_tie"] = metrics.get(self.tie[0]) if self.tie else None
                line += "  *best*"
            else:
                st["bad_evals"] += 1
                if self.cfg.patience and st["bad_evals"] >= self.cfg.patience:
                    st["done"] = True
                    line += f"  (no gain in {st['bad_evals']} evaluations: stopping early)"
            target, value = self.cfg.target, metrics[self.metric]
            if target is not None and (value >= target if self.mode == "max" else value <= target):
                st["done"] = True
                line += f"  (target {self.metric} {target} reached: stopping)"
        st["last_eval_step"] = st["step"]  # done (a resume re-runs an evaluation that an interrupt cut short)
        self.log(line)
