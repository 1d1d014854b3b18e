"""Speech recognition metrics: whole-utterance accuracy, word and character error rate (jiwer).

WER and CER are corpus figures, (substitutions + deletions + insertions) / reference words (characters)
summed over all utterances, as `jiwer.wer(refs, hyps)` computes them; they can pass 1 when a recogniser
inserts words. Accuracy is the share of utterances whose transcript is exactly the reference.
"""

from __future__ import annotations

from seqlab.errors import UserError
from seqlab.extras import require


def speech_metrics(refs: list[str], hyps: list[str]) -> dict:
    """{"accuracy", "wer", "cer", "n"} of hypotheses against references (normalised transcripts)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise UserError("no utterances to score")
    if any(not r.strip() for r in refs):
        raise UserError("a reference transcript is empty; every scored utterance needs one")
    jiwer = require("jiwer", "word and character error rates")
    out = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    acc = sum(r == h for r, h in zip(refs, hyps)) / len(refs)
    return {"accuracy": acc, "wer": float(out.wer), "cer": float(chars.cer), "n": len(refs),
            "substitutions": out.substitutions, "deletions": out.deletions, "insertions": out.insertions}
