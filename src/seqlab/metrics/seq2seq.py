"""Metrics for generated text against references.

  BLEU, chrF   corpus-level, from sacrebleu (its default '13a' tokenisation of both sides), 0-100;
               seqlab's outputs and references are both in the model's tokenized form ("cold ."),
               so sacrebleu's warning about tokenized input is switched off (force=True)
  exact match  share of outputs equal to their reference after answer normalisation, 0-1
  token F1     mean over examples of the F1 between the bags of normalised tokens, 0-1

Answer normalisation (as for SQuAD): Unicode NFKC, lower case, words only (punctuation dropped, so
"Harper-Lee" and "harper - lee" agree), articles a/an/the removed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

_WORD_RE = re.compile(r"\w+")
_ARTICLES = {"a", "an", "the"}


def answer_tokens(text: str) -> list[str]:
    """Normalised tokens of an answer: NFKC, lower case, words only, no articles."""
    words = _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())
    return [w for w in words if w not in _ARTICLES]


def exact_match(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Share of hyps whose normalised tokens equal their reference's."""
    if not hyps:
        return 0.0
    return sum(answer_tokens(h) == answer_tokens(r) for h, r in zip(hyps, refs)) / len(hyps)


def token_f1_one(hyp: str, ref: str) -> float:
    h, r = answer_tokens(hyp), answer_tokens(ref)
    if not h or not r:
        return float(h == r)
    common = sum((Counter(h) & Counter(r)).values())
    if common == 0:
        return 0.0
    p, rc = common / len(h), common / len(r)
    return 2 * p * rc / (p + rc)


def token_f1(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean token-bag F1 of each hyp against its reference."""
    if not hyps:
        return 0.0
    return sum(token_f1_one(h, r) for h, r in zip(hyps, refs)) / len(hyps)


def bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu, 0-100) of hyps against one reference each."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hyps), [list(refs)], force=True).score)


def chrf(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus chrF (sacrebleu, 0-100)."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(list(hyps), [list(refs)]).score)


def generation_metrics(hyps: Sequence[str], refs: Sequence[str]) -> dict:
    """bleu, chrf, exact_match, token_f1 and n for outputs against references."""
    return {"bleu": bleu(hyps, refs), "chrf": chrf(hyps, refs), "exact_match": exact_match(hyps, refs),
            "token_f1": token_f1(hyps, refs), "n": len(hyps)}
