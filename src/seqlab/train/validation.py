"""Validation during training: evaluate on dev, log it, keep the best checkpoint, stop early.

`ValidationMixin` is a part of `seqlab.train.trainer.Trainer` and uses its attributes (model, eval_fn,
metric, mode, tie, state, clock, ...) and its `_save` (`seqlab.train.resume`).
"""

from __future__ import annotations

import torch


class ValidationMixin:
    """The Trainer's dev evaluation, best-checkpoint choice, early stopping and target stop."""

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
