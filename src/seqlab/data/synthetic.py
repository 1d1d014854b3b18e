"""Data seqlab generates itself: a sentiment task where word order decides the label.

Every sentence contrasts two clauses, and the clause after "but" (or the main clause after
"although ...,") decides the sentiment:

    "the plot was dull but the acting was brilliant"      -> positive
    "the plot was brilliant but the acting was dull"      -> negative

Both sentences hold the same words, so a bag-of-words model cannot tell them apart (it sits at
chance on the contrast sentences), while a recurrent model that reads in order can. Negations
("not bad" is positive) add a second order effect. The project ships no data files: the demo
and the tests write these sentences on the fly, from a seed.
"""

from __future__ import annotations

import random

SUBJECTS = ["the movie", "the plot", "the acting", "the music", "the ending", "the cast",
            "the script", "the film", "the story", "the dialogue", "the camera work", "the pacing"]
POSITIVE = ["good", "great", "wonderful", "funny", "moving", "brilliant", "charming", "clever",
            "gripping", "not bad", "not boring", "not dull"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "weak", "clumsy", "predictable",
            "not good", "not funny", "not great", "not clever"]
CONTRAST = ["{s1} was {a} but {s2} was {b}", "{s1} was {a} , yet {s2} was {b}",
            "although {s1} was {a} , {s2} was {b}", "{s1} seemed {a} , but {s2} was {b}"]
AGREE = ["{s1} was {a} and {s2} was {b}", "{s1} was {a} , and {s2} was {b} too"]
SINGLE = ["{s1} was {a}", "honestly , {s1} was {a}"]


def contrast_sentiment(n: int, seed: int = 0, contrast_only: bool = False) -> list[tuple[str, str]]:
    """`n` (sentence, label) pairs, labels 'positive'/'negative', balanced in expectation.

    With `contrast_only`, every sentence joins one positive and one negative clause, so each
    bag of words is as likely to be positive as negative.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s1, s2 = rng.sample(SUBJECTS, 2)
        kind = "contrast" if contrast_only else rng.choices(["contrast", "agree", "single"], [6, 2, 2])[0]
        label = rng.choice(["positive", "negative"])
        same, other = (POSITIVE, NEGATIVE) if label == "positive" else (NEGATIVE, POSITIVE)
        if kind == "contrast":  # the deciding clause comes last
            a, b, tpl = rng.choice(other), rng.choice(same), rng.choice(CONTRAST)
        elif kind == "agree":
            a, b, tpl = rng.choice(same), rng.choice(same), rng.choice(AGREE)
        else:
            a, b, tpl = rng.choice(same), "", rng.choice(SINGLE)
        out.append((tpl.format(s1=s1, s2=s2, a=a, b=b), label))
    return out


def write_csv(rows: list[tuple[str, str]], path) -> None:
    """Write (text, label) rows as a CSV with header text,label (no commas need quoting here)."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
