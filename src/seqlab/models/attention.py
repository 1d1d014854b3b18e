"""Attention over the encoder's outputs: which source positions the decoder reads at each step.

Given a decoder state q (the query) and the encoder outputs k_1..k_S (the keys, also the values),
a score e_s = score(q, k_s) is turned into weights a = softmax(e) over the *real* source positions
and a context vector c = sum_s a_s k_s. Scores (Luong et al. 2015; Bahdanau et al. 2015):

    none      no attention: the decoder sees the source only through its initial state
    dot       e_s = q . k_s                       (needs query size == key size)
    general   e_s = q . (W k_s)                   (W: key_dim -> query_dim, no bias)
    additive  e_s = v . tanh(W_k k_s + W_q q)     (Bahdanau's MLP score, attn_dim hidden units)

Padding: scores at padded source positions are set to -inf before the softmax, so their weights
are exactly 0 (not merely small) and padding never leaks into the context.

The key-side projections (W k, W_k k) do not depend on the decoder step; `precompute` does them
once per batch of sentences and every decoder step reuses them.
"""

from __future__ import annotations

import torch
from torch import nn

ATTENTIONS = ("none", "dot", "general", "additive")


def source_mask(lengths: torch.Tensor, total: int, device: torch.device | str) -> torch.Tensor:
    """(batch, total) bool, True at the real (non-padded) positions of each sequence."""
    return (torch.arange(total)[None, :] < lengths.cpu()[:, None]).to(device)


class Attention(nn.Module):
    """Scores, masked softmax and context for one kind of attention.

    Args:
        kind: 'dot', 'general' or 'additive' ('none' is handled by the decoder: no module).
        query_dim: size of the decoder state q.
        key_dim: size of each encoder output k_s (dirs*hidden).
        attn_dim: hidden units of the additive score (ignored otherwise).
    """

    def __init__(self, kind: str, query_dim: int, key_dim: int, attn_dim: int = 0):
        super().__init__()
        if kind not in ATTENTIONS or kind == "none":
            raise ValueError(f"unknown attention {kind!r}; choose one of {', '.join(ATTENTIONS[1:])}")
        if kind == "dot" and query_dim != key_dim:
            raise ValueError(f"dot attention needs the decoder size ({query_dim}) to equal the encoder "
                             f"output size ({key_dim}); use 'general' or 'additive', or match the sizes")
        self.kind = kind
        if kind == "general":
            self.w = nn.Linear(key_dim, query_dim, bias=False)
        elif kind == "additive":
            attn_dim = attn_dim or query_dim
            self.w_k = nn.Linear(key_dim, attn_dim, bias=False)
            self.w_q = nn.Linear(query_dim, attn_dim, bias=True)
            self.v = nn.Linear(attn_dim, 1, bias=False)

    def precompute(self, keys: torch.Tensor) -> torch.Tensor:
        """The step-independent key projection: keys (batch, src, key_dim) ->
        (batch, src, query_dim) for general, (batch, src, attn_dim) for additive, keys for dot."""
        if self.kind == "general":
            return self.w(keys)
        if self.kind == "additive":
            return self.w_k(keys)
        return keys

    def scores(self, query: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
        """Raw scores for queries (batch, steps, query_dim) over proj (batch, src, .) -> (batch, steps, src)."""
        if self.kind == "additive":
            hidden = torch.tanh(proj[:, None, :, :] + self.w_q(query)[:, :, None, :])  # (b, steps, src, a)
            return self.v(hidden).squeeze(-1)
        return torch.bmm(query, proj.transpose(1, 2))

    def forward(self, query: torch.Tensor, keys: torch.Tensor, proj: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from one or many decoder steps.

        Args:
            query: (batch, query_dim) for one step, or (batch, steps, query_dim) for many.
            keys: encoder outputs (batch, src, key_dim); proj: `precompute(keys)`.
            mask: (batch, src) bool, True at real source positions.
        Returns:
            context (batch, key_dim) [or (batch, steps, key_dim)] and weights (batch, src)
            [or (batch, steps, src)], each row summing to 1, exactly 0 at padded positions.
        """
        one = query.dim() == 2
        q = query[:, None, :] if one else query
        e = self.scores(q, proj).masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(e, dim=-1)  # (batch, steps, src)
        context = torch.bmm(weights, keys)  # (batch, steps, key_dim)
        if one:
            return context[:, 0], weights[:, 0]
        return context, weights
