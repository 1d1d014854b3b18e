"""/api/models and /api/unroll: which models there are, and one input unrolled step by step.

/api/unroll returns, for one text (every array a nested JSON list; shapes for batch 1):
    tokens (time,)                         what the model read, one per step
    x (time, input)                        each step's input vector (embedding / features)
    layers[l][d].h, .c, .gates[name]       (time, hidden): per layer l and direction d
    outputs (time, dirs*hidden)            the top layer's h_t at every step: what the RNN returns as
                                           `outputs` (batch, time, dirs*hidden)
    h_n, c_n (layers*dirs, hidden)         the final state per layer and direction: `h_n` (layers*dirs,
                                           batch, hidden); for a backward direction that is step 0's
    output.probs                           per step: class probabilities, next-token top-k or tag marginals
Values are rounded to 7 decimals (the model's own float32 carries about as many digits).
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request

from seqlab.viz.model_trace import TOY_CELLS, Trace, toy_trace, trace
from seqlab.web.schemas import UnrollRequest

router = APIRouter(prefix="/api")
TEXT_TASKS = ("classify", "lm", "translate", "qa", "tag")


def num(a) -> list | None:
    """An array as nested lists of floats rounded to 7 decimals (None stays None)."""
    if a is None:
        return None
    return np.round(np.asarray(a, dtype=np.float64), 7).tolist()


def trace_json(tr: Trace, name: str) -> dict:
    u = tr.unrolled
    T, H, D, L = len(tr.tokens), u.hidden, u.directions, len(u.layers)
    layers = [[{"direction": "backward" if d.reverse else "forward", "h": num(d.h), "c": num(d.c),
                "gates": {g: num(v) for g, v in d.gates.items()}} for d in layer] for layer in u.layers]
    shapes = {"x": [1, T, u.x.shape[1]], "h_t": [1, H], "outputs": [1, T, D * H], "h_n": [L * D, 1, H]}
    if u.c_n is not None:
        shapes.update(c_n=[L * D, 1, H], c_t=[1, H])
    return {
        "model": name, "task": tr.task, "cell": u.cell, "tokens": tr.tokens, "steps": T, "hidden": H,
        "input_dim": int(u.x.shape[1]), "num_layers": L, "directions": D, "shapes": shapes,
        "x": num(u.x), "layers": layers, "outputs": num(u.outputs), "h_n": num(u.h_n), "c_n": num(u.c_n),
        "output": {"kind": tr.kind, "labels": tr.labels, "probs": num(tr.probs), "top_tokens": tr.top_tokens,
                   "note": tr.note},
    }


@router.get("/models")
def models(request: Request) -> dict:
    """The toy cells and every run under --models, with its task and encoder summary."""
    reg = request.app.state.registry
    toys = [{"name": f"toy:{c}", "task": "toy", "cell": c, "has_checkpoint": True, "has_metrics": False,
             "layers": 1, "bidirectional": False} for c in TOY_CELLS]
    return {"root": str(reg.root) if reg.root else None, "toys": toys, "models": list(reg.scan().values())}


@router.post("/unroll")
def unroll(req: UnrollRequest, request: Request) -> dict:
    """Unroll `text` through a toy cell ('toy:lstm') or a run's encoder."""
    reg = request.app.state.registry
    with reg.lock:
        if req.model.startswith("toy:"):
            tr = toy_trace(req.model[4:], req.text, req.hidden, req.seed)
        else:
            task, pipe = reg.get(req.model, TEXT_TASKS)
            tr = trace(pipe, req.text, req.top_k)
        return trace_json(tr, req.model)
