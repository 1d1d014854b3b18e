"""Gradient flow during training: per-layer gradient norms of a run, so vanishing or exploding
gradients show in the user's own run (`seqlab plot curves`, the curves page of `seqlab serve`).

`GradNorms` is one of a run directory's default callbacks. On every `every`-th optimizer step (the
Trainer's log_every by default) and on the first, it reads the gradients right after the backward
pass (the Trainer's `on_after_backward`: after AMP's unscaling and the data-parallel averaging,
before clipping) and appends one line to out/grad_norms.jsonl:

    {"step": 40, "total": 1.31,
     "layers": {"encoder.embedding": 0.012, "encoder.rnns.0.l0": 0.20, "encoder.rnns.0.l1": 0.71, "out": 0.93},
     "params": {"encoder.embedding.weight": 0.012, "encoder.rnns.0.weight_ih_l0": 0.11, ...}}

params: the L2 norm of each parameter's gradient (what `p.grad.norm()` says at that step); layers:
the norm of all the gradients of one layer together (the root of the sum of their squares), a layer
being a module (its path) or one layer of a fused multi-layer RNN ("encoder.rnns.0.l1", both
directions); total: the norm of all of them, the `grad_norm` the Trainer clips. A non-finite norm
(an AMP overflow, a step the scaler skips) is written as null. On --resume the lines after the
checkpoint's step are dropped, as metrics.jsonl's are.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

FILE = "grad_norms.jsonl"
_RNN_PARAM = re.compile(r"^(.*?)(?:\.)?(?:weight|bias)_(?:ih|hh)_l(\d+)(?:_reverse)?$")


def layer_of(name: str) -> str:
    """The layer a parameter belongs to: 'encoder.rnns.0.weight_hh_l1_reverse' -> 'encoder.rnns.0.l1',
    'out.weight' -> 'out', 'crf.transitions' -> 'crf'."""
    m = _RNN_PARAM.match(name)
    if m:
        return f"{m.group(1)}.l{m.group(2)}" if m.group(1) else f"l{m.group(2)}"
    return name.rpartition(".")[0] or name


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def grad_norms(model: torch.nn.Module) -> dict:
    """{"total", "layers", "params"} of the gradients `model` holds now (parameters without one skipped)."""
    named = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    if not named:
        return {"total": None, "layers": {}, "params": {}}
    norms = torch.stack([g.detach().float().norm() for _, g in named]).tolist()  # one device sync
    params = dict(zip((n for n, _ in named), norms))
    squares: dict[str, float] = {}
    for n, v in params.items():
        squares[layer_of(n)] = squares.get(layer_of(n), 0.0) + v * v
    total = math.sqrt(sum(v * v for v in norms))
    return {"total": _finite(total), "layers": {k: _finite(math.sqrt(s)) for k, s in squares.items()},
            "params": {k: _finite(v) for k, v in params.items()}}


class GradNorms:
    """Log per-layer gradient norms to out/grad_norms.jsonl (see the module docstring); `rows` keeps
    them in memory too (out None: memory only). every: log each `every`-th step (None: log_every)."""

    def __init__(self, out: str | Path | None, every: int | None = None):
        if every is not None and every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.path = Path(out) / FILE if out is not None else None
        self.every = every
        self.rows: list[dict] = []

    def on_fit_start(self, trainer, resume: bool) -> None:
        step = trainer.state["step"]
        self.rows = [r for r in self.rows if r["step"] <= step] if resume else []
        if self.path is None or not trainer.dist.main:
            return
        if not resume:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
            self.path.write_text("".join(ln + "\n" for ln in keep))

    def on_after_backward(self, trainer) -> None:
        step = trainer.state["step"] + 1  # the step whose gradients these are
        every = self.every or trainer.cfg.log_every or 1
        if not trainer.dist.main or (step % every and step != 1):
            return
        row = {"step": step, **grad_norms(trainer.model)}
        self.rows.append(row)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")


def read_grad_norms(run: str | Path) -> list[dict]:
    """The rows of a run directory's grad_norms.jsonl ([] when it has none)."""
    path = Path(run) / FILE
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
