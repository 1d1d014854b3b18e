"""Saving and resuming a training run: the Trainer's checkpoints `best/` and `last/`.

`last/` holds the weights, the optimizer state, the RNG state, the step function's carried state and
the position inside the epoch, so a resumed run continues exactly (see `seqlab.train.trainer`). A
KeyboardInterrupt saves `last/` when the state it found is consistent. `ResumeMixin` is a part of
`seqlab.train.trainer.Trainer` and uses its attributes (model, opt, state, dist, out, ...).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from seqlab.errors import UserError
from seqlab.train.checkpoint import load_state_tensors, load_weights, read_trainer_state, save_checkpoint
from seqlab.train.state import _optimizer_from_flat, _optimizer_to_flat


class ResumeMixin:
    """The Trainer's checkpoint writing, resuming, and saving after an interrupt."""

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
