"""A linear-chain conditional random field over per-token tag scores, batched over sentences.

A tagger's network gives emission scores `emissions[b, t, k]` (how well tag k fits token t).
The CRF adds learned transition scores between neighbouring tags, so a whole tag path is scored:

    score(y) = start[y_0] + sum_t emissions[t, y_t] + sum_{t>0} transitions[y_{t-1}, y_t] + end[y_{n-1}]
    p(y | x) = exp(score(y)) / Z,    Z = sum over all K^n paths of exp(score(path))

`log Z` comes from the forward algorithm (a log-sum-exp recursion over time: O(n K^2) instead of
K^n), the best path from Viterbi (the same recursion with max, then backtracking). Both loop over
time steps only, every step handles the whole batch at once. Sentences of different lengths are
handled with a mask: a padded step leaves the running scores unchanged, so padding never changes
a sentence's score, its log Z or its best path. Every sentence must have at least one token.
"""

from __future__ import annotations

import torch
from torch import nn


def lengths_to_mask(lengths: torch.Tensor, time: int, device: torch.device | None = None) -> torch.Tensor:
    """(batch,) lengths -> (batch, time) bool mask, True at the real (non-padded) steps."""
    return (torch.arange(time)[None, :] < lengths.cpu()[:, None]).to(device or lengths.device)


class CRF(nn.Module):
    """Linear-chain CRF with `num_tags` tags.

    Parameters: transitions (num_tags, num_tags), [i, j] = score of tag j right after tag i;
    start (num_tags,) and end (num_tags,): scores of the first and last tag of a sentence.
    """

    def __init__(self, num_tags: int):
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        nn.init.uniform_(self.transitions, -0.1, 0.1)

    def path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Score of the given tag paths.

        emissions (batch, time, tags); tags (batch, time) long (padded steps may hold anything,
        e.g. -100); mask (batch, time) bool. Returns (batch,).
        """
        tags = tags.masked_fill(~mask, 0)
        maskf = mask.to(emissions.dtype)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (batch, time)
        score = self.start[tags[:, 0]] + (emit * maskf).sum(1)
        if tags.shape[1] > 1:
            trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (batch, time-1)
            score = score + (trans * maskf[:, 1:]).sum(1)
        last = tags.gather(1, (mask.long().sum(1) - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        return score + self.end[last]

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z of each sentence by the forward algorithm: (batch, time, tags), (batch, time) -> (batch,)."""
        alpha = self.start + emissions[:, 0]  # (batch, tags): log-sum of all paths ending in each tag
        for t in range(1, emissions.shape[1]):
            # (batch, from, 1) + (from, to) -> log-sum-exp over `from` -> (batch, to)
            nxt = torch.logsumexp(alpha.unsqueeze(2) + self.transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t : t + 1], nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood -log p(tags | x) of each sentence: (batch,)."""
        return self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Viterbi: the highest-scoring tag path of each sentence.

        emissions (batch, time, tags), mask (batch, time) -> (batch, time) long tag ids, -100 at
        padded steps.
        """
        batch, time, _ = emissions.shape
        score = self.start + emissions[:, 0]  # (batch, tags): best path ending in each tag
        back = []  # back[t-1][b, j]: best previous tag for tag j at step t
        for t in range(1, time):
            cand = score.unsqueeze(2) + self.transitions  # (batch, from, to)
            best, arg = cand.max(dim=1)
            keep = mask[:, t : t + 1]
            score = torch.where(keep, best + emissions[:, t], score)
            # on padded steps point back to the same tag, so backtracking passes through unchanged
            back.append(torch.where(keep, arg, torch.arange(self.num_tags, device=arg.device).expand_as(arg)))
        last = (score + self.end).argmax(1)  # (batch,)
        path = [last]
        for arg in reversed(back):
            last = arg.gather(1, last.unsqueeze(1)).squeeze(1)
            path.append(last)
        out = torch.stack(path[::-1], dim=1)
        return out.masked_fill(~mask, -100)
