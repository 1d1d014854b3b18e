"""What a model does with one input, step by step: the unrolled encoder and each step's output.

    load_model(path)                 -> (task, pipeline) for any seqlab checkpoint (`seqlab.load`)
    trace(pipe, text)                -> Trace: tokens, the unrolled encoder, and per step what the
                                        pipeline's `steps(text)` says (classify: class probabilities
                                        if the text ended there; lm: the most likely next tokens;
                                        tag: tag marginals; translate/qa: the encoder only)
    toy_trace(cell, text, hidden)    -> the same for a tiny scratch NumPy cell over fixed 2-d word vectors

The web app (`seqlab serve`) and `seqlab plot hidden` both draw a Trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqlab.errors import UserError
from seqlab.viz.unroll import Unrolled, unroll_encoder, unroll_scratch

TOY_CELLS = ("rnn", "lstm", "gru")
TOY_CLASSES = ("negative", "positive")


@dataclass
class Trace:
    """tokens (time,); unrolled: the encoder over them; kind: what `probs` holds per step:
    'classes' (time, classes), 'next_token' (time, top_k) with `top_tokens` (time, top_k) strings,
    'tags' (time, tags), or 'none' (probs None). labels: class or tag names. note: one line on what
    the output means for this model."""

    task: str
    tokens: list[str]
    unrolled: Unrolled
    kind: str = "none"
    probs: np.ndarray | None = None
    labels: list[str] | None = None
    top_tokens: list[list[str]] | None = None
    note: str = ""


def load_model(path: str | Path) -> tuple[str, object]:
    """(task, the task's pipeline) for any checkpoint or exported file, through the task registry."""
    from seqlab.pipelines.registry import load

    pipe = load(path)
    if hasattr(pipe.model, "eval"):  # an exported stand-in has no training mode
        pipe.model.eval()
    return pipe.task, pipe


def trace(pipe, text: str, top_k: int = 5) -> Trace:
    """Trace `text` through a loaded pipeline: its `steps(text)` and its encoder unrolled over them."""
    st = pipe.steps(text, top_k)
    return Trace(pipe.task, st.tokens, unroll_encoder(pipe.encoder, st.inputs), st.kind, st.probs, st.labels,
                 st.top_tokens, st.note)


def toy_parts(cell: str, text: str, hidden: int = 4, seed: int = 0):
    """(the scratch layer, words, x (time, 2), readout W (classes, hidden), b (classes,)) of `toy_trace`."""
    from seqlab.scratch import make_cell
    from seqlab.scratch.explain import WORD_DIM, word_vectors

    if cell not in TOY_CELLS:
        raise UserError(f"unknown toy cell {cell!r}; choose one of {', '.join(TOY_CELLS)}")
    words = text.split()
    if not words:
        raise UserError("the text is empty; type at least one word")
    vectors = word_vectors(words, seed)
    layer = make_cell(cell, WORD_DIM, hidden, 1, seed)
    rng = np.random.default_rng(seed + 1)
    w, b = rng.normal(0, 1, (len(TOY_CLASSES), hidden)), rng.normal(0, 0.1, len(TOY_CLASSES))
    return layer, words, np.stack([vectors[w] for w in words]), w, b


def toy_trace(cell: str, text: str, hidden: int = 4, seed: int = 0) -> Trace:
    """A 1-layer scratch `cell` (rnn/lstm/gru, NumPy, weights drawn with `seed`) over the words of
    `text`, each a fixed 2-d vector (`seqlab.scratch.explain.word_vectors`); per step, a random
    untrained 2-class readout softmax(W h_t + b), to show where a classifier's output comes from."""
    layer, words, x, w, b = toy_parts(cell, text, hidden, seed)
    unrolled = unroll_scratch(layer, x)
    z = unrolled.outputs @ w.T + b
    probs = np.exp(z - z.max(1, keepdims=True))
    note = "an untrained random readout softmax(W h_t + b): how a classifier turns h_t into class probabilities"
    return Trace("toy", words, unrolled, "classes", probs / probs.sum(1, keepdims=True), list(TOY_CLASSES),
                 note=note)
