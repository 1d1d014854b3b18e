"""What a model does with one input, step by step: the unrolled encoder and each step's output.

    load_model(path)                 -> (task, pipeline) for any seqlab checkpoint, by its config.json
    trace(task, pipe, text)          -> Trace: tokens, the unrolled encoder, and per step
                                        classify  class probabilities if the text ended there
                                        lm        the most likely next tokens
                                        tag       each token's tag probabilities (CRF marginals)
                                        translate/qa  the encoder only (the decoder reads it at every step)
    toy_trace(cell, text, hidden)    -> the same for a tiny scratch NumPy cell over fixed 2-d word vectors

The web app (`seqlab serve`) and `seqlab plot hidden` both draw a Trace.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqlab.errors import UserError
from seqlab.train.checkpoint import CONFIG, read_json, resolve_checkpoint
from seqlab.viz.unroll import Unrolled, unroll_encoder, unroll_scratch

TASKS = ("classify", "lm", "translate", "qa", "tag", "forecast")
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


def checkpoint_task(path: str | Path) -> str:
    """The task named in a checkpoint's config.json (path: a run dir or a checkpoint dir)."""
    task = read_json(resolve_checkpoint(path), CONFIG).get("task")
    if task not in TASKS:
        raise UserError(f"{path}: unknown task {task!r} in its {CONFIG}")
    return task


def load_model(path: str | Path) -> tuple[str, object]:
    """(task, the task's Pipeline) for a checkpoint; weights from safetensors, never pickle."""
    task = checkpoint_task(path)
    if task == "classify":
        from seqlab.tasks.classify import ClassifyPipeline as P
    elif task == "lm":
        from seqlab.pipelines.lm import LM as P
    elif task == "translate":
        from seqlab.pipelines.seq2seq import Seq2SeqPipeline

        return task, Seq2SeqPipeline.load(path, task)
    elif task == "qa":
        from seqlab.pipelines.qa import QA as P
    elif task == "tag":
        from seqlab.tasks.tag import TagPipeline as P
    else:
        from seqlab.pipelines.forecast import Forecaster as P
    pipe = P.load(path)
    getattr(pipe, "model", getattr(getattr(pipe, "inner", None), "model", None)).eval()
    return task, pipe


def encoder_of(task: str, pipe) -> torch.nn.Module | None:
    """The RecurrentEncoder the unroller shows, or None (forecasters)."""
    if task == "qa":
        return pipe.inner.model.encoder
    if task == "forecast":
        return None
    return pipe.model.encoder


def shown(tok: str) -> str:
    """A token as the page prints it: whitespace made visible."""
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(tok, tok)


@torch.no_grad()
def _classify(pipe, text: str, task: str) -> Trace:
    if pipe.vocab is None:
        raise UserError("this classifier reads numeric feature sequences, not text; the unroller shows text models")
    ids = pipe.encode([text])[0]  # (time,)
    tokens = [shown(t) for t in pipe.vocab.decode(ids.tolist())]
    unrolled = unroll_encoder(pipe.model.encoder, ids)
    n = len(ids)  # every prefix as one batch: what the model says if the text ended at step t
    prefixes = ids.expand(n, n).tril()
    lengths = torch.arange(1, n + 1)
    probs = torch.softmax(pipe.model(prefixes, lengths), -1).double().numpy()
    note = "p(class | the text up to this token): the classifier's answer if the text ended here"
    return Trace(task, tokens, unrolled, "classes", probs, list(pipe.labels.itos), note=note)


@torch.no_grad()
def lm_ids(pipe, text: str) -> torch.Tensor:
    """A language model's input for `text`: its characters (char level), or <eos> (a line start)
    and its tokens (word/subword), unknown tokens as <unk> -> (time,) long."""
    if pipe.level == "char":
        ids = pipe.encode(text)
    else:
        ids = torch.tensor([pipe.vocab.eos_id, *pipe.vocab.encode(pipe.tokenizer.tokenize(text))])
    if len(ids) == 0:
        raise UserError("the text is empty; type at least one character")
    return ids


@torch.no_grad()
def _lm(pipe, text: str, top_k: int) -> Trace:
    ids = lm_ids(pipe, text)
    logits, _ = pipe.model(ids[None])
    probs = torch.softmax(logits[0].double(), -1)  # (time, vocab)
    k = min(top_k, probs.shape[1])
    top = probs.topk(k, -1)
    itos = pipe.vocab.itos
    tops = [[shown(itos[i]) for i in row] for row in top.indices.tolist()]
    note = "p(next token | the tokens so far): the most likely continuations after each step"
    return Trace("lm", [shown(itos[i]) for i in ids.tolist()], unroll_encoder(pipe.model.encoder, ids),
                 "next_token", top.values.numpy(), top_tokens=tops, note=note)


def tag_marginals(model, batch) -> torch.Tensor:
    """p(tag_t = k | sentence) (batch, time, tags): the CRF's marginals (the gradient of log Z
    with respect to the emissions, by the CRF's own forward algorithm in float64), or a softmax over
    the emissions without a CRF."""
    with torch.no_grad():
        em = model(batch)
    if model.crf is None:
        return torch.softmax(em.double(), -1)
    crf = copy.deepcopy(model.crf).double()
    with torch.enable_grad():
        em = em.detach().double().requires_grad_(True)
        (grad,) = torch.autograd.grad(crf.log_partition(em, model.mask(batch)).sum(), em)
    return grad


@torch.no_grad()
def _tag(pipe, text: str) -> Trace:
    words = text.split()
    if not words:
        raise UserError("the sentence is empty; type at least one word")
    b = next(iter(pipe.batches([words], batch_size=1)))
    feats = pipe.model.features(b)[0]  # (time, input_dim)
    probs = tag_marginals(pipe.model, b)[0].double().numpy()
    note = "p(tag | whole sentence) per token" + (" (CRF marginals)" if pipe.model.crf is not None else "")
    return Trace("tag", words, unroll_encoder(pipe.model.encoder, feats), "tags", probs,
                 list(pipe.tags.itos), note=note)


@torch.no_grad()
def _seq2seq(pipe, text: str, task: str) -> Trace:
    ids = pipe.encode_src([text])[0]
    tokens = [shown(t) for t in pipe.src_vocab.decode(ids.tolist())]
    note = "the encoder: the decoder reads all of its outputs (attention) and starts from its final state"
    return Trace(task, tokens, unroll_encoder(pipe.model.encoder, ids), note=note)


def trace(task: str, pipe, text: str, top_k: int = 5) -> Trace:
    """Trace `text` through a loaded model (see the module docstring)."""
    if task == "classify":
        return _classify(pipe, text, task)
    if task == "lm":
        return _lm(pipe, text, top_k)
    if task == "tag":
        return _tag(pipe, text)
    if task == "translate":
        return _seq2seq(pipe, text, task)
    if task == "qa":
        if pipe.mode == "seq2seq":
            return _seq2seq(pipe.inner, text, task)
        return _classify(pipe.inner, pipe.norm(text), task)
    raise UserError(f"the unroller shows text models; a {task} model has no tokens to unroll")


def toy_trace(cell: str, text: str, hidden: int = 4, seed: int = 0) -> Trace:
    """A 1-layer scratch `cell` (rnn/lstm/gru, NumPy, weights drawn with `seed`) over the words of
    `text`, each a fixed 2-d vector (`seqlab.scratch.explain.word_vectors`); per step, a random
    untrained 2-class readout softmax(W h_t + b), to show where a classifier's output comes from."""
    from seqlab.scratch.explain import WORD_DIM, word_vectors
    from seqlab.tasks.scratch import make_cell

    if cell not in TOY_CELLS:
        raise UserError(f"unknown toy cell {cell!r}; choose one of {', '.join(TOY_CELLS)}")
    words = text.split()
    if not words:
        raise UserError("the text is empty; type at least one word")
    vectors = word_vectors(words, seed)
    layer = make_cell(cell, WORD_DIM, hidden, 1, seed)
    unrolled = unroll_scratch(layer, np.stack([vectors[w] for w in words]))
    rng = np.random.default_rng(seed + 1)
    w, b = rng.normal(0, 1, (len(TOY_CLASSES), hidden)), rng.normal(0, 0.1, len(TOY_CLASSES))
    z = unrolled.outputs @ w.T + b
    probs = np.exp(z - z.max(1, keepdims=True))
    note = "an untrained random readout softmax(W h_t + b): how a classifier turns h_t into class probabilities"
    return Trace("toy", words, unrolled, "classes", probs / probs.sum(1, keepdims=True), list(TOY_CLASSES),
                 note=note)
