"""The backward view: how the gradient of one output flows back through the unrolled network.

    b = backward(pipe, "not good at all", target="negative")     # any text checkpoint (seqlab.load)
    b = toy_backward("lstm", "not good at all")                   # the unroller's scratch NumPy cells

Pick an output L (a class score, the next-token probability or loss at step t, a tag, a translation
token; `measure` 'prob' p(target), 'loss' -log p(target) or 'logit' its score before the softmax;
`position="all"`: the loss summed over the whole sequence); then, per layer l and direction d,
b.layers[l][d] holds (position order, one sequence):

    dh        (time, hidden)  dL/dh_t in total: from the output/layer above at t and every later step
    dc        (time, hidden)  LSTM: dL/dc_t in total
    dgates[g] (time, hidden)  dL/d(pre-activation of gate g): LSTM i f g o, GRU r z n, RNN "a"
    via[k]    (time, hidden)  the gradient step t hands to the step before, split by path (see
                              `seqlab.scratch.bptt_trace`: one per gate through W_hh, the GRU's "skip"
                              z*dh, the LSTM's "cell" f*dc into dc_{t-1}, a plain RNN's "W_hh")
b.dx (time, input) is dL/dx_t; b.gxi (time,) = sum_i x_t,i dL/dx_t,i is gradient x input.
For a backward direction, "the step before" is step t+1 (it reads the tokens right to left).

Checkpoints: autograd through the recomputed float64 unroll (`unroll_torch`), read by a float64 copy
of the model whose encoder is replaced by it (the head, attention, CRF are the model's own modules);
toy cells: the scratch cell's own BPTT on its forward cache (`seqlab.scratch.bptt_trace`). Both are
tested against autograd on the torch module to 1e-8.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from seqlab.errors import UserError
from seqlab.viz.unroll_torch import StepTensors, unroll_autograd

MEASURES = ("prob", "loss", "logit")


@dataclass
class DirGrads:
    """One direction of one layer (every array in position order; see the module docstring)."""

    dh: np.ndarray
    dc: np.ndarray | None
    dgates: dict[str, np.ndarray]
    via: dict[str, np.ndarray]
    reverse: bool = False

    def norms(self) -> dict:
        """The L2 norm over units of each: {"dh": (time,), "dc": (time,) or None, "dgates": {g: (time,)},
        "via": {k: (time,)}}."""
        n = lambda a: np.linalg.norm(a, axis=-1)  # noqa: E731
        return {"dh": n(self.dh), "dc": None if self.dc is None else n(self.dc),
                "dgates": {g: n(v) for g, v in self.dgates.items()}, "via": {k: n(v) for k, v in self.via.items()}}


@dataclass
class Backward:
    """The gradient of one output over one text. layers[l][d]: DirGrads; x, dx (time, input); value:
    L itself; what: L in words; position: the output position (None: summed over `total`); target:
    the choice scored (None when summed); top: [(label, probability)] of the choices at `position`."""

    cell: str
    tokens: list[str]
    layers: list[list[DirGrads]]
    x: np.ndarray
    dx: np.ndarray
    value: float
    measure: str
    what: str
    positions: list[str]
    position: int | None
    target: int | None
    target_name: str | None
    top: list[tuple[str, float]]
    labels: list[str] | None = None  # the names of the choices (classes, tags, the vocabulary)

    @property
    def gxi(self) -> np.ndarray:
        """Gradient x input per token (time,): sum_i x_t,i dL/dx_t,i."""
        return (self.x * self.dx).sum(-1)


@dataclass
class Choice:
    """What L is: positions (k,) and targets (k,) summed over, `measure`, and for the page the one
    position shown (None: summed) and its target."""

    positions: list[int]
    targets: list[int]
    measure: str
    position: int | None
    what: str
    top: list[tuple[str, float]]


def choose(logits: torch.Tensor, names: list[str], labels: list[str], defaults: list[int], default_pos: int,
           total: list[int], regression: bool, position=None, target=None, measure=None) -> Choice:
    """Resolve the user's choice against logits (positions, choices) of the text: `position` an int
    (negative from the end), None (the default) or "all"; `target` a label, an index or None (the
    default at that position: -1 in `defaults` is the most likely)."""
    n_pos = logits.shape[0]
    measure = measure or ("logit" if regression else "loss" if position == "all" else "prob")
    if measure not in MEASURES:
        raise UserError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    if regression and measure != "logit":
        raise UserError("a regression model has one raw output and no probabilities; use measure 'logit'")
    best = logits.argmax(-1).tolist()
    dflt = [best[p] if t < 0 else t for p, t in enumerate(defaults)]
    word = {"prob": "p({})", "loss": "-log p({})", "logit": "logit({})"}[measure]
    if position == "all":
        if target is not None:
            raise UserError("a target belongs to one output position; pick a position or drop the target")
        what = f"the sum over {len(total)} position(s) of {word.format('target_t')}"
        return Choice(list(total), [dflt[p] for p in total], measure, None, what, [])
    p = default_pos if position is None else int(position)
    if not -n_pos <= p < n_pos:
        raise UserError(f"output position {p} is out of range: this text has positions 0..{n_pos - 1}")
    p %= n_pos
    if target is None:
        t = dflt[p]
    elif isinstance(target, int) or (isinstance(target, str) and target.lstrip("-").isdigit() and target not in labels):
        t = int(target)
        if not 0 <= t < len(labels):
            raise UserError(f"target {t} is out of range: the model has choices 0..{len(labels) - 1}")
    elif target in labels:
        t = labels.index(target)
    else:
        some = ", ".join(repr(x) for x in labels[:8]) + (", ..." if len(labels) > 8 else "")
        raise UserError(f"target {target!r} is not one of the model's outputs ({some})")
    probs = logits[p] if regression else torch.softmax(logits[p], -1)
    k = min(5, len(labels))
    top = [(labels[i], float(probs[i])) for i in probs.topk(k).indices.tolist()]
    what = "the predicted value" if regression else f"{word.format(labels[t])} at {names[p]}"
    return Choice([p], [t], measure, p, what, top)


def scalar(logits: torch.Tensor, ch: Choice) -> torch.Tensor:
    """L for each of n sequences from logits (n, positions, choices) -> (n,)."""
    sel = logits[:, ch.positions]  # (n, k, choices)
    idx = torch.tensor(ch.targets, device=logits.device)[None, :, None].expand(sel.shape[0], -1, 1)
    if ch.measure == "logit":
        v = sel
    elif ch.measure == "prob":
        v = torch.softmax(sel, -1)
    else:
        v = -torch.log_softmax(sel, -1)
    return v.gather(-1, idx)[..., 0].sum(1)


class ModelGraph:
    """One text through a float64 copy of a pipeline's model whose encoder is the autograd unroll.

    x (time, input): the encoder's input for the text (embeddings or features), float64.
    logits(x (n, time, input), keep) -> (logits (n, positions, choices), traces [layer][dir])."""

    def __init__(self, pipe, text: str):
        if not isinstance(getattr(pipe, "model", None), torch.nn.Module):
            raise UserError("gradients need a checkpoint with its weights, not an exported .onnx/.pt file")
        ro = pipe.readout(text)
        if ro.encoder is None or ro.encoder.cfg.cell == "none":
            raise UserError("this model has no recurrent cell (cell 'none'): there are no steps to go back through")
        path = next(n for n, m in ro.model.named_modules() if m is ro.encoder)
        self.ro = ro
        self.model = copy.deepcopy(ro.model).to("cpu", torch.float64).eval()
        self.encoder = self.model.get_submodule(path) if path else self.model
        self._replay = None
        self.encoder.forward = lambda *a, **k: self._replay  # the model's head reads the recomputed steps
        with torch.no_grad():
            emb = self.encoder.embedding
            self.x = emb(ro.inputs.cpu()) if emb is not None else ro.inputs.cpu().to(torch.float64)

    def logits(self, x: torch.Tensor, keep: bool = False) -> tuple[torch.Tensor, list[list[StepTensors]]]:
        self._replay, traces = unroll_autograd(self.encoder, x, keep)
        try:
            return self.ro.run(self.model, x.shape[0]), traces
        finally:
            self._replay = None

    def choose(self, logits0: torch.Tensor, position=None, target=None, measure=None) -> Choice:
        ro = self.ro
        return choose(logits0, ro.positions, ro.labels, ro.targets, ro.position, ro.total or [ro.position],
                      ro.regression, position, target, measure)


def _grad(t: torch.Tensor) -> np.ndarray:
    return np.zeros(t.shape[1:]) if t.grad is None else t.grad[0].numpy()


def dir_grads(tr: StepTensors) -> DirGrads:
    """The DirGrads of one direction after L.backward() (batch entry 0)."""
    dh = np.stack([_grad(h) for h in tr.h])
    dc = np.stack([_grad(c) for c in tr.c]) if tr.c is not None else None
    dgates = {g: np.stack([_grad(p) for p in ps]) for g, ps in tr.pre.items()}
    d_hh, w = np.stack([_grad(hh) for hh in tr.hh]), tr.w_hh.detach().numpy()
    H = w.shape[1]
    if tr.cell in ("rnn", "rnn_relu"):
        via = {"W_hh": d_hh @ w}
    else:
        via = {g: d_hh[:, j * H:(j + 1) * H] @ w[j * H:(j + 1) * H] for j, g in enumerate(tr.pre)}
        if tr.cell == "lstm":
            via["cell"] = np.stack([f[0].detach().numpy() for f in tr.act["f"]]) * dc
        else:
            via["skip"] = np.stack([z[0].detach().numpy() for z in tr.act["z"]]) * dh
    return DirGrads(dh, dc, dgates, via, tr.reverse)


def backward(pipe, text: str, position=None, target=None, measure: str | None = None) -> Backward:
    """The backward view of a loaded text pipeline over `text` (see the module docstring)."""
    g = ModelGraph(pipe, text)
    x = g.x[None].clone().requires_grad_(True)
    logits, traces = g.logits(x, keep=True)
    ch = g.choose(logits.detach()[0], position, target, measure)
    f = scalar(logits, ch)
    f.sum().backward()
    layers = [[dir_grads(tr) for tr in dirs] for dirs in traces]
    t = ch.targets[0] if ch.position is not None else None
    return Backward(g.encoder.cfg.cell, g.ro.tokens, layers, g.x.numpy(), x.grad[0].numpy(), f[0].item(), ch.measure,
                    ch.what, g.ro.positions, ch.position, t, None if t is None else g.ro.labels[t], ch.top, g.ro.labels)


def toy_backward(cell: str, text: str, hidden: int = 4, seed: int = 0, position=None, target=None,
                 measure: str | None = None) -> Backward:
    """The backward view of a toy cell (`seqlab.viz.model_trace.toy_trace`): its per-step readout
    softmax(W h_t + b) scored at `position` (default the last step), BPTT from the scratch cell's cache."""
    from seqlab.scratch.bptt_trace import bptt_trace
    from seqlab.viz.model_trace import TOY_CLASSES, toy_parts

    layer, words, x, w, b = toy_parts(cell, text, hidden, seed)
    outputs, _, cache = layer.forward(x[None])  # outputs (1, time, hidden)
    z = torch.tensor(outputs[0] @ w.T + b, requires_grad=True)  # (time, classes)
    T = len(words)
    ch = choose(z.detach(), [f"step {t} ({words[t]!r})" for t in range(T)], list(TOY_CLASSES), [-1] * T, T - 1,
                list(range(T)), False, position, target, measure)
    f = scalar(z[None], ch)
    (dz,) = torch.autograd.grad(f.sum(), z)
    recs, dx = bptt_trace(layer, cache, (dz.numpy() @ w)[None])
    layers = [[DirGrads(r["dh"][0], None if r["dc"] is None else r["dc"][0], {g: v[0] for g, v in r["dgates"].items()},
                        {k: v[0] for k, v in r["via"].items()})] for r in recs]
    t = ch.targets[0] if ch.position is not None else None
    return Backward(cell, words, layers, x, dx[0], f[0].item(), ch.measure, ch.what,
                    [f"step {i}" for i in range(T)], ch.position, t, None if t is None else TOY_CLASSES[t], ch.top,
                    list(TOY_CLASSES))
