"""What a recurrent cell computes, printed number by number on a three-word sentence.

    print(explain_forward("lstm", "I love NLP"))

Each word gets a fixed 2-d vector (in a real model, a row of the embedding table). The sentence is
one sequence, x of shape (batch=1, time=3, input=2), run through the scratch cell's own forward; the
printout then walks the steps, showing for each t what went in (x_t, h_{t-1}), what the cell
computed on the way (the pre-activation for the RNN, the gates for the LSTM and GRU) and h_t, with
every shape. All numbers are read from that forward (its outputs, final state and the per-step
cache), so they are the real ones, not a re-implementation.

It ends with the three things people most often get wrong about recurrent layers:
  1. outputs (batch, time, hidden) -- h_t at every step -- versus the final state h_n (layers,
     batch, hidden); for one unidirectional layer, outputs[:, -1] is h_n[-1];
  2. which axis is batch and which is time (batch_first);
  3. why padding exists, and why the state after a padded step is not the sentence's state.
"""

from __future__ import annotations

import numpy as np

from seqlab.scratch.gru import GRU
from seqlab.scratch.lstm import LSTM
from seqlab.scratch.rnn import RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
WORD_DIM = 2


def word_vectors(words: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    """A fixed 2-d vector (WORD_DIM,) for each distinct word, in order of first appearance: uniform in
    [-1, 1], rounded to one decimal so they are easy to read. Same words and seed, same vectors."""
    rng = np.random.default_rng(seed)
    table: dict[str, np.ndarray] = {}
    for w in words:
        if w not in table:
            table[w] = rng.uniform(-1, 1, WORD_DIM).round(1)
    return table


def fmt(a: np.ndarray) -> str:
    """A 1-d array as [+0.1234 -0.5678 ...] (4 decimals, the format the tests look for)."""
    return "[" + " ".join(f"{v:+.4f}" for v in np.ravel(a)) + "]"


def _line(name: str, a: np.ndarray, note: str = "") -> str:
    return f"   {name:<44}{str(a.shape):<9}{fmt(a[0])}" + (f"   {note}" if note else "")


def _step_lines(cell: str, layer, t: int, x_t, h_prev, h_t, step_cache, c_prev=None) -> list[str]:
    """The lines for step t of a 1-layer cell, from the forward's cache (all arrays (1, ·))."""
    w_ih, w_hh = layer.params["weight_ih_l0"], layer.params["weight_hh_l0"]
    b_ih, b_hh = layer.params["bias_ih_l0"], layer.params["bias_hh_l0"]
    lines = [_line("x_t", x_t), _line("h_{t-1}", h_prev, "(zeros: the initial state h0)" if t == 0 else "")]
    if cell == "rnn":
        a = x_t @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
        lines.append(_line("a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh", a))
        lines.append(_line("h_t = tanh(a)", h_t))
    elif cell == "lstm":
        i, f, g, o, _, tanh_c = step_cache
        c_t = f * c_prev + i * g
        lines += [
            "   gates = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, shape (1, 4*hidden), split into i, f, g, o:",
            _line("i = sigmoid(.)", i, "input gate: how much of g to write"),
            _line("f = sigmoid(.)", f, "forget gate: how much of c_{t-1} to keep"),
            _line("g = tanh(.)", g, "candidate values"),
            _line("o = sigmoid(.)", o, "output gate: how much of the memory to show"),
            _line("c_{t-1}", c_prev),
            _line("c_t = f * c_{t-1} + i * g", c_t),
            _line("h_t = o * tanh(c_t)", h_t),
        ]
        assert np.allclose(o * tanh_c, h_t)
    else:  # gru
        r, z, n, _, _ = step_cache
        lines += [
            "   W_ih x_t + b_ih = [x_r x_z x_n] and W_hh h_{t-1} + b_hh = [h_r h_z h_n], each (1, 3*hidden):",
            _line("r = sigmoid(x_r + h_r)", r, "reset: how much of h_{t-1} the candidate sees"),
            _line("z = sigmoid(x_z + h_z)", z, "update: how much of h_{t-1} to keep"),
            _line("n = tanh(x_n + r * h_n)", n, "candidate state"),
            _line("h_t = (1 - z) * n + z * h_{t-1}", h_t),
        ]
    return lines


def _run(layer, x: np.ndarray):
    """The cell's own forward: outputs (batch, time, hidden), final state tuple, cache."""
    outputs, state, cache = layer.forward(x)
    return outputs, (state if isinstance(state, tuple) else (state,)), cache


def explain_forward(cell: str = "rnn", sentence: str = "I love NLP", hidden: int = 3, seed: int = 0) -> str:
    """The forward pass of a 1-layer `cell` ('rnn', 'lstm' or 'gru', input 2, `hidden` units, weights
    drawn with `seed`) over the words of `sentence`, step by step with shapes, then the common
    confusions (outputs vs h_n, batch vs time, padding) shown on the same numbers. Returns the text."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
    words = sentence.split()
    if not words:
        raise ValueError("the sentence has no words")
    vectors = word_vectors(words, seed)
    layer = CELLS[cell](WORD_DIM, hidden, 1, seed=seed)
    x = np.stack([vectors[w] for w in words])[None]  # (batch=1, time, input=2)
    outputs, state, cache = _run(layer, x)
    out = [f'== word vectors: each word of "{sentence}" gets a fixed {WORD_DIM}-d vector (a real model '
           "learns these as rows of an embedding table)"]
    out += [f"   {w!r:<14}{fmt(v)}" for w, v in vectors.items()]
    out.append(f"\n== the {cell.upper()} cell: input {WORD_DIM}, hidden {hidden}, 1 layer, weights drawn with seed "
               f"{seed} (gates stacked in PyTorch's order)")
    gate_names = {"rnn": [""], "lstm": list("ifgo"), "gru": list("rzn")}[cell]
    for name, p in layer.params.items():
        head = f"   {name:<14}{str(p.shape):<10}"
        for gate, block in zip(gate_names, np.split(p, len(gate_names))):
            rows = [fmt(r) for r in np.atleast_2d(block)] if p.ndim == 2 else [fmt(block)]
            for k, r in enumerate(rows):
                out.append(f"{head:<27}{gate if k == 0 else '':<3}{r}")
                head = ""
    out.append(f"\n== step by step: x has shape (batch, time, input) = {x.shape}; one step per word, "
               "every row below is (batch=1, .)")
    _, h_prevs, steps = cache[0]
    c_prev = np.zeros((1, hidden))
    for t, w in enumerate(words):
        out.append(f"t = {t}  {w!r}")
        out += _step_lines(cell, layer, t, x[:, t], h_prevs[:, t], outputs[:, t], steps[t], c_prev)
        if cell == "lstm":
            i, f, g = steps[t][:3]
            c_prev = f * c_prev + i * g
    out += _confusions(cell, layer, words, vectors, x, outputs, state)
    return "\n".join(out) + "\n"


def _confusions(cell, layer, words, vectors, x, outputs, state) -> list[str]:
    h_n = state[0]
    T = len(words)
    out = ["\n== common confusions",
           "1. outputs vs the final hidden state (what forward returns besides the cache)",
           f"   outputs  (batch, time, hidden) = {outputs.shape}: h_t at every step -- what a tagger or "
           "attention reads"]
    out += [f"     t={t} {w!r:<10}{fmt(outputs[0, t])}" for t, w in enumerate(words)]
    out.append(f"   h_n      (layers, batch, hidden) = {h_n.shape}: the last state of every layer -- what a "
               "classifier or decoder starts from")
    out.append(f"     layer 0       {fmt(h_n[0, 0])}")
    if cell == "lstm":
        out.append(f"   c_n      (layers, batch, hidden) = {state[1].shape}: the LSTM's cell state, never in outputs")
        out.append(f"     layer 0       {fmt(state[1][0, 0])}")
    same = bool(np.array_equal(outputs[:, -1], h_n[-1]))
    out += [f"   outputs[:, -1] == h_n[-1]: {same}  (one unidirectional layer: the last output row IS h_n)",
            "   With 2 layers h_n also holds layer 0's last state, which outputs (the top layer) does not;",
            "   bidirectional: the backward direction's last state belongs to t = 0, not t = -1.",
            "",
            "2. batch vs time",
            f"   here batch_first: x is (batch, time, input) = {x.shape}; torch.nn.RNN/LSTM/GRU default to",
            f"   batch_first=False and expect (time, batch, input) = {x.transpose(1, 0, 2).shape}, i.e. "
            "x.transpose(1, 0, 2).",
            "   Both shapes are valid arrays, so the wrong one gives no error: a batch of 32 sentences of 50",
            "   words read the wrong way is 50 'sentences' of 32 steps. The recurrence runs along time only;",
            "   the sentences of a batch never see each other.",
            ""]
    long = words if T >= 2 else words * 2
    short = long[:-1]
    pad = np.zeros(WORD_DIM)
    xb = np.stack([np.stack([vectors[w] for w in long]),
                   np.stack([vectors[w] for w in short] + [pad])])  # (2, time, input)
    ob, sb, _ = _run(layer, xb)
    _, sa, _ = _run(layer, xb[1:, :len(short)])  # the short sentence alone
    n, alone = len(short), sa[0][0, 0]
    out += ["3. padding: why it exists",
            f"   An array is a rectangle, so two sentences of {len(long)} and {n} words only fit one batch if the",
            f"   shorter one is padded: a <pad> vector {fmt(pad)} at t = {n}.",
            f"   x is then (batch, time, input) = {xb.shape}, lengths = [{len(long)}, {n}].",
            f"   sentence 2 {' '.join(short)!r} in the padded batch versus alone:",
            f"     {f'outputs[1, {n - 1}] (its last word)':<32}{fmt(ob[1, n - 1])}",
            f"     {'alone: its h_n':<32}{fmt(alone)}   equal: {bool(np.allclose(ob[1, n - 1], alone))}",
            f"     {'the batch: h_n[0, 1]':<32}{fmt(sb[0][0, 1])}   <- one step further, on the <pad>",
            "   The cell cannot tell padding from a word: it keeps stepping, so the batch's h_n for a short",
            "   sentence is wrong. Take each sentence's state at its own length (outputs[b, length - 1]), or",
            "   pack the batch (torch.nn.utils.rnn.pack_padded_sequence; seqlab's encoder does) so padding never",
            "   reaches the cell, and mask padded positions out of any loss."]
    return out
