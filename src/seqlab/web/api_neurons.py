"""/api/neurons/match and /api/neurons/contexts: neuron search (`seqlab.viz.neurons`, LSTMVis-style).

/api/neurons/match: for a text and a selected token span [start, end), the units most on inside it
    and off outside: {tokens, layer, units: [{unit, score, inside, outside}], activations: {unit:
    (time,)} of those units}, numbers to 7 significant digits.
/api/neurons/contexts: a unit's top-activating tokens across a corpus (lines of text, sent in the
    request): {unit, layer, contexts: [{line, position, value, left, token, right}]}.
/api/neurons/trace: one unit over one text (time,): what clicking a unit in the unroller draws.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field

from seqlab.web.api_backward import TEXT_TASKS, sig
from seqlab.web.schemas import MAX_TEXT, ModelName, Strict

router = APIRouter(prefix="/api/neurons")


class _Model(Strict):
    model: str = ModelName
    layer: int = Field(-1, ge=-16, le=15, description="recurrent layer, -1: the top one")
    hidden: int = Field(4, ge=1, le=16, description="toy cells only: hidden size")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="toy cells only: seed")


class MatchRequest(_Model):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    start: int = Field(ge=0, le=10_000, description="first selected token")
    end: int = Field(ge=1, le=10_000, description="one past the last selected token")
    k: int = Field(10, ge=1, le=100)
    sign: int = Field(1, ge=-1, le=1, description="1: on inside, off outside; -1: the reverse")


class ContextsRequest(_Model):
    corpus: str = Field(min_length=1, max_length=60_000, description="lines of text")
    unit: int = Field(ge=0, le=100_000)
    k: int = Field(10, ge=1, le=100)
    width: int = Field(4, ge=0, le=20, description="tokens shown on each side")


class TraceRequest(_Model):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    unit: int = Field(ge=0, le=100_000)


def _pipe(req, request):
    if req.model.startswith("toy:"):
        return req.model
    return request.app.state.registry.get(req.model, TEXT_TASKS)[1]


@router.post("/match")
def match(req: MatchRequest, request: Request) -> dict:
    """The units most on inside tokens [start, end) of `text` and off outside it."""
    from seqlab.viz.neurons import match_units

    with request.app.state.registry.lock:
        a, units = match_units(_pipe(req, request), req.text, req.start, req.end, req.layer, req.k, req.sign or 1,
                               req.hidden, req.seed)
    return {"model": req.model, "tokens": a.tokens, "layer": a.layer, "units": [
        {"unit": u.unit, "score": sig(u.score), "inside": sig(u.inside), "outside": sig(u.outside)} for u in units],
        "activations": {str(u.unit): sig(a.h[:, u.unit]) for u in units}}


@router.post("/contexts")
def contexts(req: ContextsRequest, request: Request) -> dict:
    """Where `unit` fires most across the lines of `corpus`."""
    from seqlab.viz.neurons import top_contexts

    with request.app.state.registry.lock:
        hits = top_contexts(_pipe(req, request), req.corpus.splitlines(), req.unit, req.layer, req.k, req.width,
                            req.hidden, req.seed)
    return {"model": req.model, "unit": req.unit, "layer": req.layer, "contexts": [
        {"line": c.line, "position": c.position, "value": sig(c.value), "left": c.left, "token": c.token,
         "right": c.right} for c in hits]}


@router.post("/trace")
def trace_unit(req: TraceRequest, request: Request) -> dict:
    """One unit of one layer over the tokens of `text`."""
    from seqlab.errors import UserError
    from seqlab.viz.neurons import unit_activations

    with request.app.state.registry.lock:
        a = unit_activations(_pipe(req, request), req.text, req.layer, req.hidden, req.seed)
    if req.unit >= a.h.shape[1]:
        raise UserError(f"unit {req.unit} is out of range: this layer has units 0..{a.h.shape[1] - 1}")
    return {"model": req.model, "tokens": a.tokens, "layer": a.layer, "unit": req.unit, "values": sig(a.h[:, req.unit])}
