"""Training throughput of the NumPy character LM: batched streams versus one sequence at a time.

    .venv/bin/python benchmarks/bench_scratch.py [--seconds 6] [--rounds 2]

Both train a vanilla tanh RNN (hidden 100) on next-character prediction with truncated BPTT over 25
characters, in NumPy, on the same text in the same process:
  min-char-rnn   a reference written below in the style of karpathy's min-char-rnn.py: batch 1,
                 float64, one-hot column vectors, one np.dot per weight per character, Adagrad
                 (lr 0.1), elementwise clipping to [-5, 5];
  seqlab         seqlab.scratch.charlm.train_char_lm: 32 contiguous streams at once, the input
                 projection and weight gradients computed for all steps in one call, Adagrad
                 (lr 0.03; 0.1 stalls at the unigram level with the batched mean loss), global-norm
                 clipping at 5; in the trainer's default float32, and again in float64.
The reference is bound by Python and NumPy call overhead (about 40 small calls per character); the
batched trainer makes the same calls once per 32 characters and is bound by arithmetic instead,
which is why float32 (half the bytes, twice the SIMD width) matters to it and not to the reference.
It prints characters per second (training only: forward, backward, update), the ratio to the
reference, and the training loss after a round (equal time, so a rough check that both learn).
The methods run in alternating rounds of `--seconds` each so a change in machine load hits all of
them, and everything runs on one BLAS thread. Text: ../shared/data/char_lm/tinyshakespeare.txt if present,
else the standard library's pydoc_data/topics.py. Writes benchmarks/results/bench_scratch.json.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads BLAS
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from seqlab.scratch.charlm import train_char_lm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "char_lm" / "tinyshakespeare.txt"
HIDDEN, SEQ_LEN, LR, LR_BATCHED = 100, 25, 0.1, 0.03


def load_text() -> tuple[str, str]:
    """(text, where it came from)."""
    if SHAKESPEARE.exists():
        return SHAKESPEARE.read_text(encoding="utf-8"), str(SHAKESPEARE)
    import pydoc_data.topics

    path = Path(pydoc_data.topics.__file__)
    return path.read_text(encoding="utf-8"), f"stdlib {path.parent.name}/{path.name}"


def min_char_rnn(text: str, seconds: float, seed: int = 0) -> tuple[int, float, float]:
    """Train karpathy-style for `seconds`. Returns (characters trained, seconds, mean loss in
    nats/char over the last 100 updates)."""
    chars = sorted(set(text))
    vocab = len(chars)
    index = {c: i for i, c in enumerate(chars)}
    data = [index[c] for c in text]
    rng = np.random.default_rng(seed)
    Wxh = rng.standard_normal((HIDDEN, vocab)) * 0.01  # input to hidden
    Whh = rng.standard_normal((HIDDEN, HIDDEN)) * 0.01  # hidden to hidden
    Why = rng.standard_normal((vocab, HIDDEN)) * 0.01  # hidden to output
    bh, by = np.zeros((HIDDEN, 1)), np.zeros((vocab, 1))
    params = [Wxh, Whh, Why, bh, by]
    mems = [np.zeros_like(p) for p in params]

    def loss_fun(inputs, targets, hprev):
        xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
        loss = 0.0
        for t in range(len(inputs)):  # forward, one character at a time
            xs[t] = np.zeros((vocab, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
            ys = np.dot(Why, hs[t]) + by
            ps[t] = np.exp(ys - ys.max()) / np.sum(np.exp(ys - ys.max()))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):  # backward through time
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(Why.T, dy) + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += np.dot(dhraw, xs[t].T)
            dWhh += np.dot(dhraw, hs[t - 1].T)
            dhnext = np.dot(Whh.T, dhraw)
        grads = [dWxh, dWhh, dWhy, dbh, dby]
        for g in grads:
            np.clip(g, -5, 5, out=g)
        return loss, grads, hs[len(inputs) - 1]

    hprev, p, done, losses = np.zeros((HIDDEN, 1)), 0, 0, []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if p + SEQ_LEN + 1 >= len(data):
            hprev, p = np.zeros((HIDDEN, 1)), 0
        loss, grads, hprev = loss_fun(data[p:p + SEQ_LEN], data[p + 1:p + SEQ_LEN + 1], hprev)
        for param, g, mem in zip(params, grads, mems):  # Adagrad
            mem += g * g
            param += -LR * g / np.sqrt(mem + 1e-8)
        p, done = p + SEQ_LEN, done + SEQ_LEN
        losses.append(loss / SEQ_LEN)
    return done, time.perf_counter() - t0, float(np.mean(losses[-100:]))


def batched(text: str, seconds: float, batch: int, dtype) -> tuple[int, float, float]:
    """seqlab's trainer for `seconds`: (characters trained, seconds, mean loss of the last 100 steps)."""
    r = train_char_lm(text, cell="rnn", hidden=HIDDEN, seq_len=SEQ_LEN, batch=batch, steps=10**9, lr=LR_BATCHED,
                      optimizer="adagrad", clip=5.0, valid_fraction=0, sample_every=0, time_budget=seconds,
                      log=None, dtype=dtype)
    chars = round(r["chars_per_s"] * r["train_seconds"])
    return chars, r["train_seconds"], float(np.mean([h[1] for h in r["history"][-100:]]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="training seconds per method per round")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (results are summed)")
    ap.add_argument("--batch", type=int, default=32, help="streams of the batched trainer")
    a = ap.parse_args()
    text, source = load_text()
    methods = {  # key -> (label, run for a.seconds)
        "min_char_rnn": ("min-char-rnn style: batch 1, float64", lambda: min_char_rnn(text, a.seconds)),
        "seqlab_float32": (f"seqlab: {a.batch} streams, float32", lambda: batched(text, a.seconds, a.batch, "f4")),
        "seqlab_float64": (f"seqlab: {a.batch} streams, float64", lambda: batched(text, a.seconds, a.batch, "f8")),
    }
    totals = {k: [0, 0.0, 0.0] for k in methods}  # chars, seconds, last round's loss
    for _ in range(a.rounds):
        for key, (_, run) in methods.items():
            chars, secs, loss = run()
            totals[key] = [totals[key][0] + chars, totals[key][1] + secs, loss]
    speed = {k: v[0] / v[1] for k, v in totals.items()}
    ratio = {k: s / speed["min_char_rnn"] for k, s in speed.items()}
    print(f"char-level RNN training, hidden {HIDDEN}, seq_len {SEQ_LEN}, Adagrad, 1 thread; text: {source} "
          f"({len(text):,} chars, {len(set(text))} distinct); {a.rounds} rounds x {a.seconds:g} s per method")
    print(f"{'method':<40}{'chars/s':>10}{'ratio':>8}{'loss after a round':>20}")
    for key, (label, _) in methods.items():
        print(f"{label:<40}{speed[key]:>10,.0f}{ratio[key]:>7.1f}x{totals[key][2] / math.log(2):>14.3f} bits/char")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_scratch.json").write_text(json.dumps(
        {"benchmark": "scratch_charlm_throughput", "compared": f"batched NumPy trainer (batch {a.batch}) vs "
         "batch-1 min-char-rnn-style NumPy loop", "reference": "min-char-rnn style, same run, same text",
         "text": source, "hidden": HIDDEN, "seq_len": SEQ_LEN, "seconds_per_round": a.seconds,
         "rounds": a.rounds, "chars_per_s": speed, "ratio": ratio["seqlab_float32"],
         "ratio_float64": ratio["seqlab_float64"],
         "loss_bits_after_round": {k: v[2] / math.log(2) for k, v in totals.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
