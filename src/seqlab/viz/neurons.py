"""Neuron search, as in LSTMVis: which hidden units track a pattern, and where one unit fires.

    a = unit_activations(pipe, "not good at all")                 # tokens, h (time, units) of one layer
    units = match_units(pipe, "it was not good at all", 2, 4)     # units on inside tokens [2, 4), off outside
    hits = top_contexts(pipe, lines, unit=17)                     # where unit 17 is highest across a corpus

`pipe` is a loaded text pipeline, or a toy cell given as "toy:lstm" (`toy_trace`). A layer's units are
its h_t, both directions side by side (unit j < hidden: forward; the rest: backward), from the
unroller's recomputation (`seqlab.viz.unroll`); `layer` indexes the recurrent layers (-1: the top).

match_units scores each unit u by LSTMVis's selection rule made continuous:
    score_u = mean_{t in [start, end)} h_t,u  -  mean_{t outside} h_t,u
(all of the text when nothing is outside), so the best units are high inside the selection and low
outside it; `sign=-1` asks for units that are low inside and high outside instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqlab.errors import UserError

MAX_LINES = 2000


@dataclass
class Activations:
    """tokens (time,); h (time, units): the layer's hidden states; layer: its index (from 0)."""

    tokens: list[str]
    h: np.ndarray
    layer: int


def unit_activations(pipe, text: str, layer: int = -1, hidden: int = 4, seed: int = 0) -> Activations:
    """The hidden states of one layer over `text` (a pipeline, or "toy:<cell>" with hidden and seed)."""
    from seqlab.viz.model_trace import toy_trace
    from seqlab.viz.unroll import unroll_encoder

    if isinstance(pipe, str):
        tr = toy_trace(pipe[4:], text, hidden, seed)
        tokens, u = tr.tokens, tr.unrolled
    else:  # the encoder's input as the gradient views read it (no per-step outputs: only the states)
        ro = pipe.readout(text)
        tokens, u = ro.tokens, unroll_encoder(ro.encoder, ro.inputs)
    n = len(u.layers)
    if not -n <= layer < n:
        raise UserError(f"layer {layer} is out of range: this model has recurrent layers 0..{n - 1}")
    k = layer % n
    return Activations(tokens, np.concatenate([d.h for d in u.layers[k]], 1), k)


def corpus_activations(pipe, texts: list[str], layer: int = -1, hidden: int = 4, seed: int = 0) -> list[Activations]:
    """`unit_activations` of many texts: for a pipeline in batches of texts of the same length, through
    one float64 copy of the encoder (`seqlab.viz.unroll_torch`, the same arithmetic), toy cells one by one."""
    import copy

    import torch

    from seqlab.viz.unroll_torch import unroll_autograd

    if isinstance(pipe, str) or not texts:
        return [unit_activations(pipe, t, layer, hidden, seed) for t in texts]
    ros = [pipe.readout(t) for t in texts]
    enc = copy.deepcopy(ros[0].encoder).to("cpu", torch.float64).eval()
    out: list[Activations | None] = [None] * len(texts)
    by_len: dict[int, list[int]] = {}
    for i, ro in enumerate(ros):
        by_len.setdefault(len(ro.tokens), []).append(i)
    with torch.no_grad():
        for idx in by_len.values():
            xs = [ros[i].inputs.cpu() for i in idx]
            x = enc.embedding(torch.stack(xs)) if enc.embedding is not None else torch.stack(xs).to(torch.float64)
            _, traces = unroll_autograd(enc, x)  # traces[layer][direction].h: per step (batch, hidden)
            n = len(traces)
            if not -n <= layer < n:
                raise UserError(f"layer {layer} is out of range: this model has recurrent layers 0..{n - 1}")
            h = torch.cat([torch.stack(d.h, 1) for d in traces[layer % n]], -1).numpy()  # (batch, time, units)
            for j, i in enumerate(idx):
                out[i] = Activations(ros[i].tokens, h[j], layer % n)
    return out


@dataclass
class UnitMatch:
    unit: int
    score: float
    inside: float
    outside: float | None


def match_units(pipe, text: str, start: int, end: int, layer: int = -1, k: int = 10, sign: int = 1,
                hidden: int = 4, seed: int = 0) -> tuple[Activations, list[UnitMatch]]:
    """The `k` units whose activation is highest inside tokens [start, end) of `text` and lowest
    outside (see the module docstring), best first, with the layer's activations."""
    a = unit_activations(pipe, text, layer, hidden, seed)
    T = len(a.tokens)
    if not 0 <= start < end <= T:
        raise UserError(f"the selection [{start}, {end}) is not a span of the text's tokens 0..{T - 1}; "
                        "select at least one token")
    inside = a.h[start:end].mean(0)
    rest = np.concatenate([a.h[:start], a.h[end:]])
    outside = rest.mean(0) if len(rest) else None
    score = sign * (inside - (outside if outside is not None else 0.0))
    order = np.argsort(-score, kind="stable")[:k]
    return a, [UnitMatch(int(u), float(score[u]), float(inside[u]), None if outside is None else float(outside[u]))
               for u in order]


@dataclass
class Context:
    """Where a unit fired: line (index into the corpus), position (token index), value, and the
    tokens around it: left (up to `width`), token, right."""

    line: int
    position: int
    value: float
    left: list[str]
    token: str
    right: list[str]


def top_contexts(pipe, lines: list[str], unit: int, layer: int = -1, k: int = 10, width: int = 4,
                 hidden: int = 4, seed: int = 0) -> list[Context]:
    """The `k` highest activations of `unit` over every token of every non-empty line, with context."""
    todo = [(i, ln) for i, ln in enumerate(lines) if ln.strip()]
    if not todo:
        raise UserError("the corpus is empty; give some lines of text")
    if len(todo) > MAX_LINES:
        raise UserError(f"the corpus has {len(todo):,} lines; give at most {MAX_LINES:,}")
    found: list[Context] = []
    for i, a in zip((i for i, _ in todo), corpus_activations(pipe, [ln for _, ln in todo], layer, hidden, seed)):
        if not 0 <= unit < a.h.shape[1]:
            raise UserError(f"unit {unit} is out of range: this layer has units 0..{a.h.shape[1] - 1}")
        for t in np.argsort(-a.h[:, unit], kind="stable")[:k]:
            found.append(Context(i, int(t), float(a.h[t, unit]), a.tokens[max(0, t - width):t], a.tokens[t],
                                 a.tokens[t + 1:t + 1 + width]))
    found.sort(key=lambda c: -c.value)
    return found[:k]
