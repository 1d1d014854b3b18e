"""The classifier's bag-of-embeddings member (models/classifier.py `bag=True`, models/bag.py): when a run
gets one, its size, and the learning rate it trains at.

On a few thousand short texts a word's polarity carries most of the signal: a bag of embeddings learns it
directly, a recurrent model learns it noisily and overfits sooner. rt-polarity (8,529 training snippets),
over three seeds: an LSTM alone 75.7% test, a bag of embeddings 76.9%. So below BAG_BELOW training texts a
recurrent text classifier trained from scratch is averaged with a bag by default, and the bag reads hashed
bigrams too (fastText's design, BAG_BUCKETS rows), which a bag of single tokens cannot: "not good".

A bag at the LSTM's learning rate is still improving when the LSTM has begun to overfit (rt-polarity at
2e-3: best epoch 10 of 10 against the LSTM's 4-5), and both members share one early stop and one best
checkpoint; at BAG_LR_SCALE times the rate a bag's dev accuracy peaks at epoch 5, with the LSTM's.
"""

from __future__ import annotations

import torch

from seqlab.errors import UserError
from seqlab.models.bag import BIGRAM_PRIME

BAG_BELOW = 20_000  # bag="auto": below this many training texts the prediction averages in a bag of embeddings
BAG_BUCKETS = 65_536  # at most this many hashed bigram rows in the bag member (models/bag.py) by default
BAG_LR_SCALE = 4.0  # the bag member trains at lr * this (see the module docstring)


def bag_default(m, n_train: int, text: bool, classes: bool) -> tuple[bool, str]:
    """Whether the classifier gets a bag-of-embeddings member, and why (printed at the start of training).
    "auto": on for a recurrent text classifier trained from scratch on fewer than BAG_BELOW texts."""
    if m.bag != "auto":
        if m.bag == "on" and not (text and classes):
            raise UserError("--bag on averages class probabilities over token embeddings; it needs a text "
                            "classifier (not --features or --regression); drop --bag")
        return m.bag == "on", f"--bag {m.bag}"
    if not (text and classes) or m.cell == "none":
        return False, ""
    if m.init_from:
        return False, "no bag member: the encoder starts from a pretrained LM (--bag on to add one)"
    if n_train >= BAG_BELOW:
        return False, f"no bag member: {n_train:,} training texts (from {BAG_BELOW:,} the recurrent model alone)"
    return True, (f"{n_train:,} training texts (< {BAG_BELOW:,}): the prediction averages the {m.cell} with a bag "
                  f"of embeddings and bigrams, each trained on its own loss, the bag at {BAG_LR_SCALE:g}x the "
                  f"learning rate (--bag off for the {m.cell} alone)")


def bigram_buckets(seqs) -> int:
    """The default number of bigram rows for the encoded training texts `seqs` (1-d id tensors, or a
    RowStore): the power of two at or above twice their distinct bigrams (few collisions), at least 64,
    at most BAG_BUCKETS."""
    codes = [s[:-1] * BIGRAM_PRIME + s[1:] for s in (seqs[i] for i in range(len(seqs))) if len(s) > 1]
    distinct = len(torch.cat(codes).unique()) if codes else 0
    return min(BAG_BUCKETS, max(64, 1 << (2 * distinct - 1).bit_length()))


def bag_groups(model, tune: dict) -> dict:
    """run_training's keywords `tune` (param_groups, callbacks) with the bag member's parameters in a group
    of their own at lr * BAG_LR_SCALE; unchanged for a model without a bag."""
    if model.bag is None:
        return tune
    bag = {id(p) for p in model.bag.parameters()}
    groups = tune.get("param_groups") or [{"params": list(model.parameters()), "lr_scale": 1.0}]
    rest = [{**g, "params": [p for p in g["params"] if id(p) not in bag]} for g in groups]
    rest = [g for g in rest if g["params"]]
    return {**tune, "param_groups": [*rest, {"params": list(model.bag.parameters()), "lr_scale": BAG_LR_SCALE}]}
