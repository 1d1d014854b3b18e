"""Decoding a seq2seq model: greedy and beam search, both batched over sentences.

The encoder reads every source sentence of a batch once (packed); the decoder then advances all
sentences (and, for beam search, all beams of all sentences, as batch*beam rows) one token per
step. The loop over output steps is the only Python loop, as it must be for autoregressive output.

greedy  takes the most likely token at each step; sentences that emit <eos> leave the batch.
beam    keeps the `beam` best partial translations per sentence. At each step the 2*beam best
        extensions are scored; those among the best `beam` that end in <eos> become finished
        candidates, ranked by length-normalised score  sum(log p) / length**alpha  (alpha 0: raw
        sum; 1: mean per token), and the best `beam` that do not end become the new beams. A
        sentence is done when its best finished candidate beats what any live beam could still
        reach (live scores only fall as tokens are added). `beam=1, alpha=0` is greedy search.
Both stop at `max_len` output tokens; a hypothesis cut there has no <eos> (`finished` False).
Attention weights (one row per output step, <eos> included) come back for plotting and for
replacing <unk> by the most-attended source word (`replace_unk`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from seqlab.data.batching import pad_batch


@dataclass
class Hypothesis:
    """One decoded output: token ids without <eos>, total log-probability `score` (over the
    tokens and the final <eos> if `finished`), attention (steps, src_len) or None."""

    tokens: list[int]
    score: float
    finished: bool
    attention: torch.Tensor | None = None

    @property
    def steps(self) -> int:
        return len(self.tokens) + int(self.finished)

    @property
    def mean_logprob(self) -> float:
        """Average log-probability per output step: a confidence in (-inf, 0]."""
        return self.score / max(1, self.steps)


@torch.no_grad()
def greedy_search(model, src: torch.Tensor, lengths: torch.Tensor, max_len: int,
                  return_attention: bool = False) -> list[Hypothesis]:
    """Greedy decoding of a batch: src (batch, src) ids, lengths (batch,) -> one Hypothesis each."""
    cfg = model.cfg
    return_attention = return_attention and model.attention is not None
    mem, state = model.encode(src, lengths)
    b, device = src.shape[0], src.device
    tokens = torch.full((b, max_len), cfg.pad_id, dtype=torch.long, device=device)
    attn = torch.zeros(b, max_len, src.shape[1], device=device) if return_attention else None
    score = torch.zeros(b, device=device)
    steps = torch.zeros(b, dtype=torch.long, device=device)
    finished = torch.zeros(b, dtype=torch.bool, device=device)
    active = torch.arange(b, device=device)  # batch rows still decoding
    y = torch.full((b,), cfg.bos_id, dtype=torch.long, device=device)
    for t in range(max_len):
        logits, state, w = model.step(y, state, mem)
        lp, y = F.log_softmax(logits.float(), -1).max(-1)
        tokens[active, t] = y
        score[active] += lp
        steps[active] = t + 1
        if attn is not None:
            attn[active, t] = w.float()
        ended = y == cfg.eos_id
        if ended.any():
            finished[active[ended]] = True
            keep = (~ended).nonzero().squeeze(1)
            if len(keep) == 0:
                break
            active, y, mem, state = active[keep], y[keep], mem.select(keep), state.select(keep)
    return _collect(tokens, steps, score, finished, attn, lengths)


def _collect(tokens, steps, score, finished, attn, lengths) -> list[Hypothesis]:
    out = []
    tokens, steps, score, finished = tokens.cpu(), steps.tolist(), score.cpu().tolist(), finished.tolist()
    for i in range(len(steps)):
        n = steps[i] - int(finished[i])
        a = attn[i, : steps[i], : int(lengths[i])].cpu() if attn is not None else None
        out.append(Hypothesis(tokens[i, :n].tolist(), score[i], finished[i], a))
    return out


@torch.no_grad()
def beam_search(model, src: torch.Tensor, lengths: torch.Tensor, beam: int, max_len: int,
                alpha: float = 1.0, return_attention: bool = False) -> list[Hypothesis]:
    """Beam search over a batch: src (batch, src) ids, lengths (batch,) -> the best Hypothesis of
    each sentence under length normalisation `alpha` (see the module docstring)."""
    cfg = model.cfg
    return_attention = return_attention and model.attention is not None
    b, k, s_len, device = src.shape[0], beam, src.shape[1], src.device
    mem, state = model.encode(src, lengths)
    rows = torch.arange(b, device=device).repeat_interleave(k)
    mem, state = mem.select(rows), state.select(rows)  # batch*beam rows, sentence-major
    ar = torch.arange(b, device=device)[:, None]
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    hist = torch.zeros(b, k, 0, dtype=torch.long, device=device)  # (b, k, t) tokens of each beam
    hist_attn = torch.zeros(b, k, 0, s_len, device=device) if return_attention else None
    best = torch.full((b,), float("-inf"), device=device)  # normalised score of the best finished
    best_raw = torch.zeros(b, device=device)
    best_tok = torch.full((b, max_len), cfg.pad_id, dtype=torch.long, device=device)
    best_len = torch.zeros(b, dtype=torch.long, device=device)
    best_fin = torch.zeros(b, dtype=torch.bool, device=device)
    best_attn = torch.zeros(b, max_len, s_len, device=device) if return_attention else None
    done = torch.zeros(b, dtype=torch.bool, device=device)
    y = torch.full((b * k,), cfg.bos_id, dtype=torch.long, device=device)
    for t in range(max_len):
        logits, state, w = model.step(y, state, mem)
        logp = F.log_softmax(logits.float(), -1)
        v = logp.shape[-1]
        cand = (scores[:, :, None] + logp.view(b, k, v)).view(b, k * v)
        top_s, top_i = cand.topk(min(2 * k, k * v), dim=-1)  # (b, 2k) best extensions
        from_beam, tok = top_i // v, top_i % v
        w3 = w.float().view(b, k, s_len) if hist_attn is not None else None
        # extensions ending in <eos> among the best k: finished candidates
        in_beam = torch.arange(top_s.shape[1], device=device)[None, :] < k
        fin = torch.where((tok == cfg.eos_id) & in_beam & ~done[:, None], top_s / (t + 1) ** alpha, float("-inf"))
        f_best, f_j = fin.max(-1)
        better = f_best > best
        if better.any():
            fb = from_beam.gather(1, f_j[:, None]).squeeze(1)
            seq = torch.cat([hist[ar[:, 0], fb], torch.full((b, 1), cfg.eos_id, device=device)], 1)
            best_tok[:, : t + 1] = torch.where(better[:, None], seq, best_tok[:, : t + 1])
            best_len = torch.where(better, t + 1, best_len)
            best_raw = torch.where(better, top_s.gather(1, f_j[:, None]).squeeze(1), best_raw)
            best_fin |= better
            best = torch.where(better, f_best, best)
            if w3 is not None:
                a = torch.cat([hist_attn[ar[:, 0], fb], w3[ar[:, 0], fb][:, None]], 1)
                best_attn[:, : t + 1] = torch.where(better[:, None, None], a, best_attn[:, : t + 1])
        # the best k extensions that go on become the new beams
        live_s, live_j = top_s.masked_fill(tok == cfg.eos_id, float("-inf")).topk(k, dim=-1)
        nb, nt = from_beam.gather(1, live_j), tok.gather(1, live_j)  # (b, k)
        hist = torch.cat([hist[ar, nb], nt[:, :, None]], 2)
        if w3 is not None:
            hist_attn = torch.cat([hist_attn[ar, nb], w3[ar, nb][:, :, None]], 2)
        scores, y = live_s, nt.reshape(-1)
        state = state.select((ar * k + nb).reshape(-1))
        # done: no live beam can beat the best finished one (scores only fall; the length
        # normalisation can lift a score by at most the factor (max_len / (t+1))**alpha)
        done |= best >= scores[:, 0] / max_len ** alpha
        if bool(done.all()):
            break
    else:  # max_len reached: the best live beam (without <eos>) competes with the finished ones
        cut = ~done & (scores[:, 0] / max_len ** alpha > best)
        best_tok = torch.where(cut[:, None], hist[:, 0], best_tok)
        best_len = torch.where(cut, max_len, best_len)
        best_raw = torch.where(cut, scores[:, 0], best_raw)
        best_fin &= ~cut
        if best_attn is not None:
            best_attn = torch.where(cut[:, None, None], hist_attn[:, 0], best_attn)
    return _collect(best_tok, best_len, best_raw, best_fin, best_attn, lengths)


def decode(model, seqs: Sequence[torch.Tensor], beam: int = 1, max_len: int = 50, alpha: float = 1.0,
           batch_size: int = 128, return_attention: bool = False, pad_id: int = 0) -> list[Hypothesis]:
    """Decode many source sentences (1-d id tensors), in batches of similar length; the results
    come back in the order of `seqs`. beam 1 is greedy search."""
    if beam < 1 or max_len < 1:
        raise ValueError("beam and max_len must be at least 1")
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    out: list[Hypothesis | None] = [None] * len(seqs)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        ids, lengths = pad_batch([seqs[i] for i in idx], pad_id)
        ids = ids.to(device)
        if beam == 1:
            hyps = greedy_search(model, ids, lengths, max_len, return_attention)
        else:
            hyps = beam_search(model, ids, lengths, beam, max_len, alpha, return_attention)
        for i, h in zip(idx, hyps):
            out[i] = h
    return out


def replace_unk(tokens: list[str], src_tokens: list[str], attention: torch.Tensor | None,
                unk: str = "<unk>") -> list[str]:
    """Replace each `unk` output token by the source token it attended to most (attention
    (steps, src_len), rows aligned with `tokens`); unchanged without attention."""
    if attention is None or unk not in tokens:
        return list(tokens)
    return [src_tokens[int(attention[i].argmax())] if t == unk and i < len(attention) else t
            for i, t in enumerate(tokens)]
