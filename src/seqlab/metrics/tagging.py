"""Tagging metrics: entity-level precision / recall / F1 counted as CoNLL's conlleval does, and
token accuracy.

An entity counts as correct only when the predicted one has the same type and exactly the same
first and last token as a gold one. Precision = correct / predicted entities, recall = correct /
gold entities, F1 their harmonic mean; per type and overall (micro: all entities pooled). The
entities of a sentence are read by `seqlab.data.conll.spans` (conlleval's reading of BIO/IOB1,
extended to BIOES), so gold and predicted tags may even use different schemes.
"""

from __future__ import annotations

from collections import Counter

from seqlab.data.conll import spans


def _prf(correct: int, found: int, gold: int) -> dict:
    p = correct / found if found else 0.0
    r = correct / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "correct": correct, "predicted": found, "gold": gold}


def token_accuracy(gold: list[list[str]], pred: list[list[str]]) -> float:
    """Share of tokens whose predicted tag equals the gold tag."""
    total = sum(len(g) for g in gold)
    right = sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p))
    return right / total if total else 0.0


def entity_metrics(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Entity-level scores of predicted tag sequences against gold ones (same sentences, same lengths).

    Returns {"precision", "recall", "f1", "correct", "predicted", "gold", "accuracy", "tokens",
    "per_type": {type: {"precision", "recall", "f1", "correct", "predicted", "gold"}}}; scores are
    fractions in [0, 1] (conlleval prints them times 100).
    """
    correct: Counter[str] = Counter()
    found: Counter[str] = Counter()
    wanted: Counter[str] = Counter()
    for g, p in zip(gold, pred, strict=True):
        if len(g) != len(p):
            raise ValueError(f"a sentence has {len(g)} gold tags but {len(p)} predicted ones")
        gs, ps = set(spans(g)), set(spans(p))
        wanted.update(t for t, _, _ in gs)
        found.update(t for t, _, _ in ps)
        correct.update(t for t, _, _ in gs & ps)
    m = _prf(sum(correct.values()), sum(found.values()), sum(wanted.values()))
    m["per_type"] = {t: _prf(correct[t], found[t], wanted[t]) for t in sorted(set(found) | set(wanted))}
    m["accuracy"] = token_accuracy(gold, pred)
    m["tokens"] = sum(len(g) for g in gold)
    return m


def format_entity_report(m: dict) -> str:
    """A conlleval-style report: totals, then one line per entity type (scores in percent)."""
    lines = [
        f"processed {m['tokens']} tokens with {m['gold']} phrases; found: {m['predicted']} phrases; "
        f"correct: {m['correct']}.",
        f"accuracy: {100 * m['accuracy']:6.2f}%; precision: {100 * m['precision']:6.2f}%; "
        f"recall: {100 * m['recall']:6.2f}%; FB1: {100 * m['f1']:6.2f}",
    ]
    for t, s in m["per_type"].items():
        lines.append(f"{t:>17}: precision: {100 * s['precision']:6.2f}%; recall: {100 * s['recall']:6.2f}%; "
                     f"FB1: {100 * s['f1']:6.2f}  {s['predicted']}")
    return "\n".join(lines)
