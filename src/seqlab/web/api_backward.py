"""/api/backward, /api/saliency, /api/vanishing: the gradient views (`seqlab.viz.backward`, `.saliency`,
`seqlab.scratch.vanishing`).

/api/backward returns, for one text and one chosen output L (numbers to 7 significant digits, so a
vanished gradient of 1e-30 stays visible):
    tokens (time,); output: what (L in words), value, measure, position (null: summed), positions
        (a name for each), target, top [{label, prob}] at the position, labels (the choices, when at
        most 64: classes, tags)
    layers[l][d]: direction, dh (time, hidden) dL/dh_t, dc (time, hidden) or null, and norm: dh, dc
        (time,) and dgates[g], via[k] (time,) (see `seqlab.viz.backward`)
    dx_norm (time,) ||dL/dx_t||, gxi (time,) gradient x input
/api/saliency: tokens, ig, gxi, grad_norm (time,), value, baseline_value, gap, steps, output as above.
/api/vanishing: per cell, the mean ||dL/dh_t|| against the distance from a loss at the last step, for a
    W_hh of spectral radius rho (with clipping or without): the live vanishing/exploding demo.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from fastapi import APIRouter, Request
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from seqlab.web.schemas import MAX_TEXT, ModelName, Strict

router = APIRouter(prefix="/api")
TEXT_TASKS = ("classify", "lm", "translate", "qa", "tag")
MAX_LABELS = 64


class BackwardRequest(Strict):
    model: str = ModelName
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    position: int | Literal["all"] | None = Field(None, description="output position (negative from the end), "
                                                                    "'all' (the summed loss) or null (the default)")
    target: str | None = Field(None, max_length=200, description="class, tag or token scored; null: the default")
    measure: Literal["prob", "loss", "logit"] | None = None
    hidden: int = Field(4, ge=1, le=16, description="toy cells only: hidden size")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="toy cells only: seed of the weights and word vectors")

    @field_validator("position", mode="before")
    @classmethod
    def _position(cls, v):
        if v is None or v == "all" or (isinstance(v, int) and not isinstance(v, bool)):
            return v
        raise PydanticCustomError("position", "must be a whole number (negative counts from the end) or 'all'")


class SaliencyRequest(BackwardRequest):
    steps: int = Field(64, ge=1, le=256, description="integrated gradients: quadrature points")


class VanishingRequest(Strict):
    cells: list[Literal["rnn", "rnn_relu", "lstm", "gru"]] = Field(["rnn", "lstm", "gru"], min_length=1,
                                                                    max_length=4)
    rho: float = Field(1.0, gt=0.0, le=3.0, description="spectral radius of W_hh")
    length: int = Field(50, ge=2, le=300)
    hidden: int = Field(32, ge=1, le=128)
    clip: float | None = Field(None, gt=0.0, le=1e6, description="per-step clipping of ||dL/dh_t||; null: none")
    gate_bias: float = Field(1.0, ge=-5.0, le=5.0)
    batch: int = Field(8, ge=1, le=64)
    seed: int = Field(0, ge=0, le=2**31 - 1)


def sig(a) -> list | float | None:
    """An array as nested lists of floats to 7 significant digits (None stays None; inf/nan become None)."""
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    flat = [float(s) for s in np.char.mod("%.7g", a.ravel())]
    flat = [v if math.isfinite(v) else None for v in flat]
    return np.array(flat, dtype=object).reshape(a.shape).tolist() if a.ndim else flat[0]


def _output(r) -> dict:
    """What L is (a Backward or a Saliency): its choices listed when there are at most MAX_LABELS."""
    labels = r.labels if r.labels is not None and len(r.labels) <= MAX_LABELS else None
    return {"what": r.what, "value": sig(r.value), "measure": r.measure, "position": r.position,
            "target": r.target_name, "top": [{"label": k, "prob": sig(p)} for k, p in r.top], "labels": labels}


def _pipe(req, request):
    """The pipeline of a request's model, or None for a toy cell."""
    if req.model.startswith("toy:"):
        return None
    return request.app.state.registry.get(req.model, TEXT_TASKS)[1]


@router.post("/backward")
def backward(req: BackwardRequest, request: Request) -> dict:
    """The gradient of one output flowing back through the unrolled steps of a toy cell or a run."""
    from seqlab.viz.backward import backward as run
    from seqlab.viz.backward import toy_backward

    reg = request.app.state.registry
    pick = dict(position=req.position, target=req.target, measure=req.measure)
    with reg.lock:
        pipe = _pipe(req, request)
        b = toy_backward(req.model[4:], req.text, req.hidden, req.seed, **pick) if pipe is None else \
            run(pipe, req.text, **pick)
    layers = [[{"direction": "backward" if d.reverse else "forward", "dh": sig(d.dh), "dc": sig(d.dc),
                "norm": {"dh": sig(n["dh"]), "dc": sig(n["dc"]), "dgates": {g: sig(v) for g, v in n["dgates"].items()},
                         "via": {k: sig(v) for k, v in n["via"].items()}}}
               for d, n in ((d, d.norms()) for d in dirs)] for dirs in b.layers]
    return {"model": req.model, "cell": b.cell, "tokens": b.tokens, "steps": len(b.tokens),
            "hidden": int(b.layers[0][0].dh.shape[1]), "num_layers": len(b.layers), "directions": len(b.layers[0]),
            "output": {**_output(b), "positions": b.positions}, "layers": layers,
            "dx_norm": sig(np.linalg.norm(b.dx, axis=1)), "gxi": sig(b.gxi)}


@router.post("/saliency")
def saliency(req: SaliencyRequest, request: Request) -> dict:
    """Integrated gradients and gradient x input per input token for one output."""
    from seqlab.viz.saliency import saliency as run
    from seqlab.viz.saliency import toy_saliency

    reg = request.app.state.registry
    pick = dict(position=req.position, target=req.target, measure=req.measure, steps=req.steps)
    with reg.lock:
        pipe = _pipe(req, request)
        s = toy_saliency(req.model[4:], req.text, req.hidden, req.seed, **pick) if pipe is None else \
            run(pipe, req.text, **pick)
    return {"model": req.model, "tokens": s.tokens, "ig": sig(s.ig), "gxi": sig(s.gxi), "grad_norm": sig(s.grad_norm),
            "value": sig(s.value), "baseline_value": sig(s.baseline_value), "gap": sig(s.gap), "steps": s.steps,
            "output": _output(s)}


@router.post("/vanishing")
def vanishing(req: VanishingRequest) -> dict:
    """||dL/dh_t|| against the distance from a loss at the last step, per cell, at spectral radius rho."""
    from seqlab.scratch.vanishing import gradient_vs_distance, per_step_factor

    res = gradient_vs_distance(tuple(dict.fromkeys(req.cells)), req.length, req.hidden, (req.rho,), req.batch,
                               req.seed, req.clip, gate_bias=req.gate_bias)
    cells = {c: {"norms": sig(res["norms"][c][req.rho]), "factor": sig(per_step_factor(res["norms"][c][req.rho]))}
             for c in res["cells"]}
    return {"rho": req.rho, "length": req.length, "hidden": req.hidden, "clip": req.clip, "gate_bias": req.gate_bias,
            "distance": list(range(req.length)), "cells": cells}
