"""The one training loop every seqlab task uses.

A task gives the Trainer three things: the model, a `step_fn(model, batch) -> loss` and an
`eval_fn(model) -> {metric: value}`. The Trainer does the rest: AdamW, gradient-norm clipping,
the learning-rate schedule, early stopping on a dev metric, seeding, device choice, a progress
bar, a JSON-lines metrics log, a loss-curve PNG, and checkpoints `best/` and `last/`.

Resuming is exact: `last/` holds the optimizer state, the RNG state and the position inside the
epoch, and the batch order of an epoch depends only on (seed, epoch), so a run that is killed
and resumed ends with the same weights as one that was never interrupted.

Under torchrun the same loop trains data-parallel: each rank reads its share of every batch and
the gradients are averaged over the ranks (`seqlab.train.distributed`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from seqlab.errors import UserError
from seqlab.train.checkpoint import load_state_tensors, load_weights, read_trainer_state, recover, save_checkpoint
from seqlab.train.distributed import setup
from seqlab.train.lock import RunLock

SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class TrainConfig:
    """Settings of the training loop (saved in config.json under "train")."""

    epochs: int = 10  # 0 = no limit: train until the time budget is spent
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    clip: float = 1.0  # max global gradient norm; 0 = no clipping
    schedule: str = "constant"  # constant | linear | cosine (decay to 0 over all steps)
    warmup: int = 0  # steps of linear warm-up
    patience: int = 0  # stop after this many evaluations without dev improvement; 0 = never
    seed: int = 1
    device: str = "auto"
    save_every: int = 500  # also write last/ every N steps; 0 = only at epoch ends
    time_budget: float = 0.0  # stop after this many seconds of training (evaluation not counted); 0 = no limit
    log_every: int = 20  # steps between metrics-log lines
    eval_every: int = 0  # also evaluate on dev every N steps; 0 = only at epoch ends
    target: float | None = None  # stop once the dev metric reaches this value (>= for mode max, <= for min)
    amp: str = "none"  # none | bf16 | fp16: run step_fn under autocast (bf16 on CPU or GPU, fp16 on GPU)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_factor(step: int, total: int, cfg: TrainConfig, time_frac: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based).

    The decay follows whichever runs out first: the steps (`total`, 0 = unknown) or the time
    budget (`time_frac`, the share of it spent), so a `--time` run ends at the bottom of its schedule.
    """
    if cfg.warmup and step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.schedule == "constant" or (total and total <= cfg.warmup):
        return 1.0
    step_frac = (step - cfg.warmup) / max(1, total - cfg.warmup) if total else 0.0
    frac = min(1.0, max(step_frac, time_frac))
    if cfg.schedule == "linear":
        return 1.0 - frac
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    raise UserError(f"unknown schedule {cfg.schedule!r}; choose one of {', '.join(SCHEDULES)}")


AMP = ("none", "bf16", "fp16")


def bf16_native(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 matrix products natively (CPU: AVX-512 BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_amp(amp: str, device: str = "auto") -> str:
    """'auto' -> 'bf16' where the device runs it natively, else 'none'; other values unchanged."""
    return ("bf16" if bf16_native(pick_device(device)) else "none") if amp == "auto" else amp


def autocast(cfg: TrainConfig, device: torch.device):
    """The autocast context of `cfg.amp` on `device` (a no-op context for 'none')."""
    if cfg.amp not in AMP:
        raise UserError(f"unknown --amp {cfg.amp!r}; choose one of {', '.join(AMP)}")
    if cfg.amp == "fp16" and device.type != "cuda":
        raise UserError("--amp fp16 needs a CUDA GPU; on CPU use --amp bf16")
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype, enabled=cfg.amp != "none")


class _Clock:
    """Training time: wall time minus the pauses for evaluation and checkpoints."""

    def __init__(self, elapsed: float = 0.0):
        self.start = time.perf_counter() - elapsed

    def __call__(self) -> float:
        return time.perf_counter() - self.start

    def pause(self):
        clock = self

        class _Pause:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                clock.start += time.perf_counter() - self.t

        return _Pause()


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict, js: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in js["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": js["param_groups"]})


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
        callbacks: objects with any of on_fit_start(trainer, resume), on_log(trainer, record),
            on_fit_end(trainer) (seqlab.train.callbacks); None = the defaults for `out`
            (metrics.jsonl and loss.png in a run directory, nothing in memory).
        restore_best: load the best weights into `model` when training ends.
        tie: (metric, "min"|"max") that breaks a tie of `metric`, e.g. ("loss", "min") so that of two
            evaluations with the same dev accuracy the one with the lower dev loss is kept.
    """

    def __init__(self, model, cfg: TrainConfig, out: str | Path | None, step_fn: Callable,
                 eval_fn: Callable | None = None, metric: str = "loss", mode: str = "min",
                 meta: dict | None = None, log: Callable[[str], None] = print,
                 callbacks: list | None = None, restore_best: bool = False, tie: tuple[str, str] | None = None):
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
        self.opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._rng = torch.get_rng_state()
        # fp16 needs loss scaling; for none/bf16 the scaler is disabled and passes everything through
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        self.state = {"epoch": 0, "batch": 0, "step": 0, "best": None, "best_epoch": None,
                      "bad_evals": 0, "last_eval_step": -1, "elapsed": 0.0, "done": False, "best_tie": None}

    # ---- checkpoints -------------------------------------------------------------------------
    def _save(self, name: str, with_state: bool, rng: torch.Tensor | None = None) -> None:
        tensors = trainer = None
        if with_state:
            own = {"rng.torch": torch.get_rng_state() if rng is None else rng}
            if hasattr(self.step_fn, "state_tensors"):  # e.g. an LM's carried hidden state
                own.update({f"step.{k}": v for k, v in self.step_fn.state_tensors().items()})
            if torch.cuda.is_available():
                own["rng.cuda"] = torch.cuda.get_rng_state()
            tensors, opt_js = _optimizer_to_flat(self.opt)
            tensors.update(self.dist.stack(own))  # every rank's, (world, ...), in a multi-process run
            trainer = {**self.state, "optimizer": opt_js, "train_config": asdict(self.cfg),
                       "world_size": self.dist.world}
        if not self.dist.main:
            return
        if not all(bool(torch.isfinite(v).all()) for v in self.model.state_dict().values() if v.is_floating_point()):
            good = (f"the last good checkpoint is {self._last_good}" if self._last_good is not None
                    else "no checkpoint was written")
            raise UserError(f"the weights became inf or nan by step {self.state['step']}; lower --lr (now "
                            f"{self.cfg.lr}) or set --clip; {good}")
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
            for cb in self.callbacks:
                if hasattr(cb, "on_log"):
                    cb.on_log(self, rec)

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
        with RunLock(self.out):
            for line in recover(self.out):
                self.log(line)
            return self._fit(batches, resume)

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
            self.dist.broadcast_model(self.model)
        if resume:
            self._resume()
        else:
            seed_everything(cfg.seed + self.dist.rank)  # each rank its own dropout masks
        if self.dist.main:
            for cb in self.callbacks:
                if hasattr(cb, "on_fit_start"):
                    cb.on_fit_start(self, resume)
        if not cfg.epochs and not cfg.time_budget:
            raise UserError("give a number of epochs or a time budget (--time); with neither, training never ends")
        total = cfg.epochs * len(batches)
        self.clock = _Clock(st["elapsed"])
        try:
            while (not cfg.epochs or st["epoch"] < cfg.epochs) and not st["done"]:
                self._train_epoch(batches, total)
                self._end_epoch()  # also after a partial epoch cut by the time budget
        except KeyboardInterrupt:  # save the state as it was before the unfinished step
            if self.out is None:
                raise
            if self.dist.world > 1:  # the other ranks may be gone already: no collective save
                self.log(f"interrupted; --resume continues from the last checkpoint in {self.out / 'last'}")
                raise
            st["elapsed"] = self.clock()
            self._save("last", with_state=True, rng=self._rng)
            self.log(f"interrupted; progress saved in {self.out / 'last'}; continue with --resume")
            raise
        st["elapsed"] = self.clock()
        if self.dist.main and (self.eval_fn is None or st["best"] is None):
            self._save("best", with_state=False)
        if self.dist.main:
            for cb in self.callbacks:
                if hasattr(cb, "on_fit_end"):
                    cb.on_fit_end(self)
        self.dist.barrier()  # best/ is complete before any rank reads it
        if self.restore_best:
            self.load_best()
        return dict(st)

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
        skip = st["batch"]
        bar = tqdm(batches, total=len(batches), desc=f"epoch {st['epoch'] + 1}{self._epochs_shown}",
                   initial=skip, leave=False, dynamic_ncols=True, disable=None if self.dist.main else True)
        it = iter(bar)
        for _ in range(skip):  # resume inside an epoch: the order is the same, skip what was done
            next(it)
        run_loss, run_n = 0.0, 0
        for batch in it:
            self._rng = torch.get_rng_state()
            time_frac = self.clock() / cfg.time_budget if cfg.time_budget else 0.0
            factor = lr_factor(st["step"], total, cfg, time_frac)
            for g in self.opt.param_groups:
                g["lr"] = cfg.lr * factor
            with autocast(cfg, self.device):
                loss = self.step_fn(self.model, batch.to(self.device))
            loss = loss.float()
            if not torch.isfinite(loss):
                good = (f"the last good checkpoint is {self._last_good}" if self._last_good is not None
                        else "no checkpoint was written")
                raise UserError(f"the training loss became {loss.item()} at step {st['step'] + 1}; lower "
                                f"--lr (now {cfg.lr}) or set --clip; {good}")
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.dist.average_gradients(self.model)
            self.scaler.unscale_(self.opt)
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip or float("inf"))
            self.scaler.step(self.opt)
            self.scaler.update()
            st["step"] += 1
            st["batch"] += 1
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
                self._validate_paused(epoch)
            self.state["done"] = self.dist.flag(self.state["done"])
            self.state["last_eval_step"] = self.state["step"]

    def _validate_paused(self, epoch: float) -> None:
        st = self.state
        st["elapsed"] = self.clock()
        metrics = self.evaluate()
        st["last_eval_step"] = st["step"]
        rec = {"step": st["step"], "epoch": round(epoch, 4), "time": st["elapsed"],
               **{f"dev_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}}
        self._write_log(rec)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in rec.items() if k.startswith("dev_") and k != "dev_n")
        line = f"epoch {epoch:.4g}{self._epochs_shown}  step {st['step']}  {shown}  ({st['elapsed']:.0f}s)"
        if st["done"]:
            line += "  (time budget reached)"
        if self.metric in metrics:
            if self._improved(metrics[self.metric], metrics):
                st["best"], st["best_epoch"], st["bad_evals"] = metrics[self.metric], rec["epoch"], 0
                st["best_tie"] = metrics.get(self.tie[0]) if self.tie else None
                self._save("best", with_state=False)
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
        self.log(line)
