"""The trained checkpoints' pages: generate (lm), translate / answer with attention (translate, qa),
tag with per-token probabilities (tag), forecast (forecast), and training curves (any run)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from fastapi import APIRouter, Query, Request

from seqlab.errors import UserError
from seqlab.web.api_unroll import num
from seqlab.web.schemas import ForecastRequest, GenerateRequest, Seq2SeqRequest, TagRequest

router = APIRouter(prefix="/api")


@router.post("/generate")
def generate_text(req: GenerateRequest, request: Request) -> dict:
    """Sample `length` tokens after `prime` from a language model (seeded: the same request, the same text)."""
    from seqlab.decode.sampling import generate

    reg = request.app.state.registry
    with reg.lock:
        _, pipe = reg.get(req.model, ("lm",))
        prime = pipe.encode_prime(req.prime)
        gen = torch.Generator(device=next(pipe.model.parameters()).device).manual_seed(req.seed)
        ids = generate(pipe.model, prime, req.length, 1, req.temperature, req.top_k, req.top_p, gen,
                       banned=pipe.banned_ids)[0]
    return {"model": req.model, "prime": req.prime, "text": pipe.decode(ids.tolist()),
            "tokens": [pipe.vocab.itos[i] for i in ids.tolist()], "level": pipe.level}


@router.post("/seq2seq")
def seq2seq(req: Seq2SeqRequest, request: Request) -> dict:
    """Translate (or answer) `text`; with attention, the weights (output tokens + <eos>, source tokens)."""
    reg = request.app.state.registry
    with reg.lock:
        task, pipe = reg.get(req.model, ("translate", "qa"))
        inner = pipe.generator
        if inner is None:  # a classify-mode QA model
            ans, conf = pipe.answer([req.text])[0]
            return {"model": req.model, "task": task, "output": ans, "confidence": conf,
                    "threshold": pipe.threshold if np.isfinite(pipe.threshold) else None, "attention": None,
                    "tokens": [], "src_tokens": [], "note": "a classify-mode QA model picks a training answer"}
        has_att = inner.model.attention is not None
        o = inner.generate([req.text], req.beam, attention=has_att)[0]
    rows = o.tokens + ["<eos>"] * ((len(o.attention) if has_att else 0) - len(o.tokens))
    out = {"model": req.model, "task": task, "output": o.text, "tokens": rows, "src_tokens": o.src_tokens,
           "attention": num(o.attention) if has_att else None, "score": o.score, "mean_logprob": o.mean_logprob}
    if hasattr(pipe, "threshold"):  # an answer: tidied, with its confidence and the abstain threshold
        thr = pipe.threshold
        out.update(output=pipe.tidy(o.text), confidence=o.mean_logprob, threshold=thr if np.isfinite(thr) else None)
    return out


@router.post("/tag")
def tag(req: TagRequest, request: Request) -> dict:
    """The tagger's tags (Viterbi) and each token's tag probabilities (CRF marginals)."""
    from seqlab.data.conll import spans

    words = req.text.split()
    if not words:
        raise UserError("the sentence is empty; type at least one word")
    reg = request.app.state.registry
    with reg.lock:
        _, pipe = reg.get(req.model, ("tag",))
        tags = pipe.predict([words])[0]
        probs = pipe.probabilities(words)
    ents = [{"type": t, "start": i, "end": j, "text": " ".join(words[i:j])} for t, i, j in spans(tags)] \
        if pipe.entities else []
    return {"model": req.model, "tokens": words, "tags": tags, "tag_names": list(pipe.tags.itos),
            "probs": num(probs), "entities": ents, "crf": pipe.model.crf is not None}


@router.post("/forecast")
def forecast(req: ForecastRequest, request: Request) -> dict:
    """A forecast from `origin` on the series the model was trained on: history, mean, intervals, actual."""
    reg = request.app.state.registry
    with reg.lock:
        _, pipe = reg.get(req.model, ("forecast",))
        try:
            s = pipe.training_series()
        except UserError as e:
            raise UserError(f"the series this model was trained on cannot be read here ({e})") from None
        origin = s.locate(req.origin) if req.origin else min(int(pipe.data["test_start"]), s.n)
        fc = pipe.forecast(s, np.array([origin]))
    H, start = pipe.horizon, max(0, origin - req.history)
    known = min(H, s.n - origin)
    return {
        "model": req.model, "targets": list(s.targets), "origin": s.label(origin), "horizon": H,
        "history_times": [s.label(i) for i in range(start, origin)], "history": num(s.values[start:origin]),
        "forecast_times": [s.label(origin + i) for i in range(H)], "mean": num(fc.mean[0]),
        "intervals": {str(lv): {"lo": num(lo[0]), "hi": num(hi[0])} for lv, (lo, hi) in sorted(fc.intervals.items())},
        "actual": num(s.values[origin:origin + known]),
    }


@router.get("/curves")
def curves(request: Request, run: Annotated[list[str], Query()]) -> dict:
    """Training loss per step and dev metrics per epoch of each `run` (repeat ?run=... for several), and
    its per-layer gradient norms per step (grad_norms: {layer: [[step, norm], ...]}, {} when not logged)."""
    from seqlab.train.grad_flow import read_grad_norms
    from seqlab.viz.curves import read_log
    from seqlab.viz.grad_plot import grad_series

    if len(run) > 20:
        raise UserError(f"{len(run)} runs asked for; show at most 20 at once")
    reg = request.app.state.registry
    out = []
    for name in run:
        path = reg.run_dir(name)
        if not (path / "metrics.jsonl").is_file():
            raise UserError(f"run {name!r} has no metrics.jsonl yet")
        steps, epochs = read_log(path)
        grads = {k: [list(p) for p in zip(*xy)] for k, xy in grad_series(read_grad_norms(path)).items()}
        out.append({"name": name, "steps": [[r["step"], r["loss"]] for r in steps],
                    "epochs": [{k: v for k, v in r.items() if k == "epoch" or k.startswith("dev_")} for r in epochs],
                    "grad_norms": grads})
    return {"runs": out}
