"""Sampling text from a language model: priming, temperature, top-k, top-p, several samples at once.

Generation is incremental. The prime is read once, in one call, and leaves the model in state
h_p; every new token then costs a single cell step from the carried state:

    logits, h = model(prime (1, p))          # once
    repeat:  x_t ~ p(. | logits[:, -1])      # (num,) one token per sample
             logits, h = model(x_t (num, 1), h)

The prefix is never run again, so `length` tokens cost `length` cell steps, not length^2 / 2, and
the tokens are the same as re-reading the whole prefix at every step (tested). The `num` samples
share the prime's state (copied `num` times) and advance together as one batch.

How the next token is chosen from the logits z (num, vocab):
  greedy        argmax z: deterministic, and repetitive.
  temperature   p = softmax(z / T): T < 1 sharpens the distribution, T > 1 flattens it, T must be > 0
                (T -> 0 approaches greedy, which is its own flag).
  top-k         keep only the k most likely tokens (k = 0: all); top-k 1 is greedy.
  top-p         nucleus sampling (Holtzman et al. 2020): keep the smallest set of most likely tokens
                whose probabilities sum to at least p, 0 < p <= 1 (1: all). Adapts to the
                distribution's shape: few candidates where the model is sure, many where it is not.
Filters apply after the temperature, top-k before top-p; the kept logits are renormalised by softmax.
A `torch.Generator` makes sampling reproducible (the CLI's --seed).

`banned` token ids are never chosen, greedy or sampled: their logits are set to -inf before anything
else. A language model passes its special tokens (<pad>, <unk>, <bos>; <eos> too where it means
nothing, as at the character level), which an undertrained model would otherwise print.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def _check(temperature: float, top_k: int, top_p: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature} (use greedy=True for argmax)")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = no limit), got {top_k}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set every logit outside the top-k and outside the top-p nucleus to -inf.

    logits (num, vocab) -> (num, vocab), a new tensor. top_k 0 and top_p 1.0 keep everything;
    the most likely token of each row is always kept.
    """
    _check(1.0, top_k, top_p)
    out = logits.clone()
    if 0 < top_k < out.shape[-1]:
        keep = torch.zeros_like(out, dtype=torch.bool)
        keep.scatter_(-1, out.topk(top_k, dim=-1).indices, True)  # exactly k per row, even with ties
        out = out.masked_fill(~keep, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = out.sort(dim=-1, descending=True, stable=True)
        probs = sorted_logits.softmax(-1)  # (num, vocab), largest first
        before = probs.cumsum(-1) - probs  # mass of the more likely tokens
        drop_sorted = before >= top_p  # the nucleus already reached p without this token
        drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


def mask_banned(logits: torch.Tensor, banned: Sequence[int] | torch.Tensor = ()) -> torch.Tensor:
    """logits (..., vocab) with the `banned` ids set to -inf (a new tensor; `logits` itself when none)."""
    if not len(banned):
        return logits
    ids = torch.as_tensor(banned, dtype=torch.long, device=logits.device)
    return logits.index_fill(-1, ids, float("-inf"))


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    greedy: bool = False,
    banned: Sequence[int] = (),
) -> torch.Tensor:
    """One token per row from logits (num, vocab) -> (num,) long: argmax when `greedy`, else a
    draw from softmax(filter_logits(logits / temperature, top_k, top_p)); never one of `banned`."""
    logits = mask_banned(logits, banned)
    if greedy:
        return logits.argmax(-1)
    _check(temperature, top_k, top_p)
    z = filter_logits(logits / temperature, top_k, top_p)
    return torch.multinomial(z.softmax(-1), 1, generator=generator)[:, 0]


def _repeat_state(state, num: int):
    """A batch-1 state (layers, 1, hidden) copied to (layers, num, hidden); tuples element-wise."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(_repeat_state(s, num) for s in state)
    return state.expand(-1, num, -1).contiguous()


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    prime_ids: Sequence[int],
    length: int,
    num: int = 1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    greedy: bool = False,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
    banned: Sequence[int] = (),
) -> torch.Tensor:
    """Continue `prime_ids` by `length` tokens, `num` samples at once -> LongTensor (num, length).

    model: called as model(ids (batch, time), state) -> (logits (batch, time, vocab), state), e.g.
        a `LanguageModel`. It is put in eval mode (no dropout) and restored afterwards.
    prime_ids: at least one token id; read once. The result holds only the new tokens (on the CPU).
    generator: a torch.Generator on the model's device, for reproducible draws.
    on_step: called as on_step(t, tokens (num,)) after each step, to stream output as it comes.
    banned: token ids never generated (e.g. the special tokens; see the module docstring).
    """
    if len(prime_ids) == 0:
        raise ValueError("prime_ids must hold at least one token")
    if length < 0 or num < 1:
        raise ValueError(f"length must be >= 0 and num >= 1, got {length} and {num}")
    if not greedy:
        _check(temperature, top_k, top_p)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        prime = torch.tensor(list(prime_ids), dtype=torch.long, device=device)[None, :]  # (1, p)
        logits, state = model(prime)  # the prefix, read once
        vocab = logits.shape[-1]
        banned = sorted({int(b) for b in banned})
        if any(not 0 <= b < vocab for b in banned):
            raise ValueError(f"banned ids must be in [0, {vocab}), got {banned}")
        if len(banned) >= vocab:
            raise ValueError("every token of the vocabulary is banned; nothing is left to generate")
        banned = torch.tensor(banned, dtype=torch.long, device=device)
        last = logits[:, -1].expand(num, -1)  # (num, vocab)
        state = _repeat_state(state, num)
        out = torch.empty(num, length, dtype=torch.long, device=device)
        for t in range(length):
            nxt = sample_next(last, temperature, top_k, top_p, generator, greedy, banned)  # (num,)
            out[:, t] = nxt
            if on_step is not None:
                on_step(t, nxt)
            if t + 1 < length:
                logits, state = model(nxt[:, None], state)  # one cell step, state carried
                last = logits[:, -1]
    finally:
        model.train(was_training)
    return out.cpu()
