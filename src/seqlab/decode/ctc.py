"""CTC decoding: per-frame label posteriors -> label sequences, their alignment and confidences.

    log_probs (time, labels)   log-softmax of an acoustic model; label 0 is the CTC blank

greedy        the best label of each frame, repeats merged, blanks dropped ("--7--77-" -> "77" -> "7")
beam_search   CTC prefix beam search (Hannun et al. 2014): the most probable label sequence summed over
              all of its alignments, keeping `beam` prefixes per frame; a `Lexicon` restricts character
              sequences to words of a list (each word, and each prefix of one, must be in it)
align         the most probable alignment (Viterbi) of a given label sequence: the frames of each label,
              from which `confidences` takes each label's mean posterior
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NEG = -math.inf


def greedy(log_probs: np.ndarray, blank: int = 0) -> list[int]:
    """Best path: argmax per frame, repeats merged, blanks removed."""
    best = np.asarray(log_probs).argmax(-1)
    keep = np.ones(len(best), bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(c) for c in best[keep] if c != blank]


def _lse(a: float, b: float) -> float:
    if a == NEG:
        return b
    if b == NEG:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


class Lexicon:
    """Allowed words for character CTC: `ok(ids)` says whether a prefix can still become words of `words`
    (spelled with `units`, words split by the unit `space`), `complete(ids)` whether it ends on a whole word."""

    def __init__(self, words: Sequence[str], units: Sequence[str], space: str = " "):
        self.units, self.space = list(units), space
        self.words = {w for w in words if w}
        self.prefixes = {w[:i] for w in self.words for i in range(len(w) + 1)}

    def _last(self, ids: Sequence[int]) -> tuple[str, bool]:
        text = "".join(self.units[i] for i in ids)
        *done, last = text.split(self.space)
        return last, all(w in self.words for w in done if w)

    def ok(self, ids: Sequence[int]) -> bool:
        last, done_ok = self._last(ids)
        return done_ok and last in self.prefixes

    def complete(self, ids: Sequence[int]) -> bool:
        last, done_ok = self._last(ids)
        return done_ok and (last == "" or last in self.words)


def beam_search(log_probs: np.ndarray, beam: int = 8, blank: int = 0, lexicon: Lexicon | None = None,
                prune: float = math.log(1e-4)) -> list[tuple[list[int], float]]:
    """Up to `beam` (labels, log probability) pairs, best first, from CTC prefix beam search. Labels whose
    frame posterior is below exp(`prune`) are not tried at that frame (the best one always is)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    beams: dict[tuple, tuple[float, float]] = {(): (0.0, NEG)}  # prefix -> (log p ending in blank, not blank)
    for t in range(lp.shape[0]):
        row = lp[t]
        cand = [int(c) for c in np.flatnonzero(row >= min(prune, row.max())) if c != blank]
        nxt: dict[tuple, list[float]] = {}

        def add(prefix, i, value, nxt=nxt):
            cur = nxt.setdefault(prefix, [NEG, NEG])
            cur[i] = _lse(cur[i], value)

        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            add(prefix, 0, total + row[blank])
            last = prefix[-1] if prefix else None
            for c in cand:
                new = prefix + (c,)
                if c == last:
                    add(prefix, 1, pnb + row[c])  # "77" without a blank between is one 7
                    if lexicon is None or lexicon.ok(new):
                        add(new, 1, pb + row[c])
                elif lexicon is None or lexicon.ok(new):
                    add(new, 1, total + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: _lse(*kv[1]), reverse=True)[:beam]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    out = [(list(k), _lse(*v)) for k, v in beams.items()]
    if lexicon is not None:
        whole = [o for o in out if lexicon.complete(o[0])]
        out = whole or out
    return sorted(out, key=lambda kv: kv[1], reverse=True)


def align(log_probs: np.ndarray, labels: Sequence[int], blank: int = 0) -> list[tuple[int, int]] | None:
    """The Viterbi alignment of `labels` to the frames: (first, last + 1) frame of each label, or None
    when the clip has too few frames for them."""
    lp = np.asarray(log_probs, dtype=np.float64)
    n, T = len(labels), lp.shape[0]
    if n == 0:
        return []
    ext = np.full(2 * n + 1, blank)
    ext[1::2] = labels
    S = len(ext)
    skip = np.zeros(S, bool)  # s may come from s-2: a label after a blank, differing from the label before
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    score = np.full(S, NEG)
    score[0], score[1] = lp[0, ext[0]], lp[0, ext[1]]
    back = np.zeros((T, S), np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, T):
        stay, one = score, np.concatenate([[NEG], score[:-1]])
        two = np.where(skip, np.concatenate([[NEG, NEG], score[:-2]]), NEG)
        choice = np.stack([stay, one, two])
        back[t] = choice.argmax(0)
        score = choice.max(0) + lp[t, ext]
    end = S - 1 if score[S - 1] >= score[S - 2] else S - 2
    if score[end] == NEG:
        return None
    states = np.empty(T, int)
    s = end
    for t in range(T - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    spans = []
    for k in range(n):
        frames = np.flatnonzero(states == 2 * k + 1)
        spans.append((int(frames[0]), int(frames[-1]) + 1))
    return spans


def confidences(log_probs: np.ndarray, labels: Sequence[int], blank: int = 0):
    """(per-label confidence, spans): each label's mean posterior over its aligned frames."""
    spans = align(log_probs, labels, blank)
    if spans is None:
        return [0.0] * len(labels), [(0, 0)] * len(labels)
    p = np.exp(np.asarray(log_probs, dtype=np.float64))
    return [float(p[a:b, c].mean()) for c, (a, b) in zip(labels, spans)], spans


def words(log_probs: np.ndarray, labels: Sequence[int], units: Sequence[str], frame_s: float,
          space: str | None = " ") -> dict:
    """{"text", "words": [{"word", "confidence", "start", "end"}]} of decoded `labels`: characters grouped into
    words at `space` (None: each label is a word); a word's confidence is its least confident label's, its
    times (seconds, `frame_s` per frame) those of its aligned frames."""
    conf, spans = confidences(log_probs, labels)
    groups, cur = [], []
    for i, c, s in zip(labels, conf, spans):
        if space is not None and units[i] == space:
            groups, cur = groups + [cur] if cur else groups, []
            continue
        cur.append((units[i], c, s))
        if space is None:
            groups, cur = groups + [cur], []
    groups += [cur] if cur else []
    out = [{"word": "".join(u for u, _, _ in g), "confidence": min(c for _, c, _ in g),
            "start": round(g[0][2][0] * frame_s, 3), "end": round(g[-1][2][1] * frame_s, 3)} for g in groups]
    return {"text": " ".join(w["word"] for w in out), "words": out}
