"""A character language model trained from scratch: predict the next character, many streams at once.

The model reads one character per step and outputs a distribution over the next one:

    ids (batch, time) --one-hot--> x (batch, time, vocab) --cell--> h (batch, time, hidden)
        --OutputLayer--> logits (batch, time, vocab),   loss = mean -log p(next char)

Input encoding: one-hot. W_ih x_t then picks column x_t of weight_ih_l0, so the columns of the first
layer's weight_ih *are* a learned embedding of size gates*hidden; a separate embedding matrix would
only add a second linear map in front of it (useful for huge vocabularies, not for ~100 characters).

Batching a single long text: the corpus is cut into `batch` contiguous streams, one row each,

    text   a b c d e f g h i j k l m n o p q r s t u v w x      (batch = 3)
    row 0  a b c d e f g h            each row is read left to right, seq_len characters per step;
    row 1  i j k l m n o p            row b's state after step k is its start state at step k+1
    row 2  q r s t u v w x

so the hidden state carried from one step to the next belongs to the same stream and the model can
remember across chunk boundaries (truncated BPTT: the state is carried forward, but gradients are
cut at the boundary; they flow back at most seq_len steps). All rows advance together, so each step
is one batched forward/backward of shape (batch, seq_len) -- the NumPy calls are the same as for a
single stream, which is where the speed over a one-sequence-at-a-time loop comes from.

Loss is in nats/char (natural log); divide by ln 2 for bits/char. The baseline a model must beat is
the unigram entropy H = -sum_c p(c) log2 p(c): the best one can do knowing only character
frequencies. The last `valid_fraction` of the text is held out and scored in one pass, batch 1,
with the state carried across the whole of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from seqlab.scratch.gru import GRU
from seqlab.scratch.lstm import LSTM
from seqlab.scratch.optim import Adagrad, Adam, OutputLayer, clip_grad_norm, softmax, softmax_cross_entropy
from seqlab.scratch.rnn import RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
LN2 = math.log(2.0)


class CharLM:
    """One-hot characters -> stacked scratch cell (rnn/lstm/gru) -> OutputLayer over the vocabulary.

    vocab: the characters (a str or list of single characters); the id of a character is its index
    in sorted(set(vocab)). params: one dict over all weights ("cell.weight_ih_l0", ..., "out.weight",
    "out.bias") holding the very arrays of the cell and output layer, so an optimizer that updates it
    in place trains the model. A state is a tuple of arrays (layers, batch, hidden): (h,) for rnn
    and gru, (h, c) for lstm.
    """

    def __init__(self, vocab, cell: str = "lstm", hidden: int = 128, layers: int = 1, dtype=np.float64,
                 seed: int = 0):
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.chars = sorted(set(vocab))
        if not self.chars:
            raise ValueError("the vocabulary is empty")
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)  # sorted, for encode
        self.cell_name, self.dtype = cell, np.dtype(dtype)
        self.vocab_size = len(self.chars)
        self.cell = CELLS[cell](self.vocab_size, hidden, layers, dtype=dtype, seed=seed)
        self.out = OutputLayer(hidden, self.vocab_size, dtype=dtype, seed=seed + 1)
        self.params = {f"cell.{k}": v for k, v in self.cell.params.items()}
        self.params.update({f"out.{k}": v for k, v in self.out.params.items()})

    @property
    def hidden(self) -> int:
        return self.cell.hidden_size

    @property
    def layers(self) -> int:
        return self.cell.num_layers

    # ---- characters <-> ids -------------------------------------------------------------------

    def encode(self, text: str) -> np.ndarray:
        """text -> ids (len(text),) int64. Raises ValueError naming characters not in the vocabulary."""
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = np.minimum(np.searchsorted(self._codes, points), self.vocab_size - 1)
        bad = self._codes[ids] != points
        if bad.any():
            unknown = sorted({chr(p) for p in points[bad]})
            raise ValueError(f"characters not in the model's vocabulary: {unknown[:10]!r}")
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """ids (n,) -> the text."""
        return "".join(self.chars[int(i)] for i in ids)

    # ---- forward / backward -------------------------------------------------------------------

    def initial_state(self, batch: int) -> tuple:
        """Zeros: (h,) or (h, c), each (layers, batch, hidden)."""
        shape = (self.layers, batch, self.hidden)
        return tuple(np.zeros(shape, self.dtype) for _ in range(self.cell.states))

    def forward(self, ids, state=None) -> tuple[np.ndarray, tuple, tuple]:
        """ids (batch, time) ints; state as from initial_state (None: zeros).
        Returns logits (batch, time, vocab), the final state (each (layers, batch, hidden)), cache."""
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must be (batch, time), got shape {ids.shape}")
        state = self.initial_state(ids.shape[0]) if state is None else tuple(state)
        x = np.eye(self.vocab_size, dtype=self.dtype)[ids]  # (batch, time, vocab) one-hot
        outputs, final, cell_cache = self.cell.forward(x, *state)
        final = final if isinstance(final, tuple) else (final,)
        logits, out_cache = self.out.forward(outputs)
        return logits, final, (cell_cache, out_cache)

    def backward(self, d_logits: np.ndarray, cache: tuple) -> dict[str, np.ndarray]:
        """d_logits (batch, time, vocab) -> grads keyed like params. No gradient flows into the
        initial state: that is the truncation of truncated BPTT."""
        cell_cache, out_cache = cache
        out_grads, d_outputs = self.out.backward(d_logits, out_cache)
        cell_grads = self.cell.backward(d_outputs, None, cell_cache)[0]
        grads = {f"cell.{k}": g for k, g in cell_grads.items()}
        grads.update({f"out.{k}": g for k, g in out_grads.items()})
        return grads


def unigram_entropy_bits(ids: np.ndarray, vocab_size: int) -> float:
    """-sum_c p(c) log2 p(c) over the character frequencies of ids (n,): the bits/char of the best
    model that ignores context."""
    p = np.bincount(ids, minlength=vocab_size) / max(len(ids), 1)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def evaluate(model: CharLM, ids: np.ndarray, chunk: int = 1000) -> float:
    """Mean nats/char of predicting ids[1:] from ids[:-1] (ids (n,), n >= 2), batch 1, the state
    carried across the whole sequence (processed `chunk` characters at a time to bound memory)."""
    state, total = model.initial_state(1), 0.0
    for start in range(0, len(ids) - 1, chunk):
        x = ids[start:start + chunk][None, :]
        y = ids[start + 1:start + chunk + 1][None, :]
        x = x[:, :y.shape[1]]
        logits, state, _ = model.forward(x, state)
        total += softmax_cross_entropy(logits, y)[0] * y.shape[1]
    return total / (len(ids) - 1)


def sample(model: CharLM, prime: str, length: int, temperature: float = 1.0, rng=None,
           return_probs: bool = False):
    """Generate `length` characters after `prime` (returned without the prime).

    The prime is fed once, as one (1, len(prime)) forward; then every new character costs one cell
    step from the carried state. p = softmax(logits / temperature): below 1 sharper, above 1 more
    random; temperature 0 picks the most likely character. rng: a np.random.Generator (None: seed 0).
    return_probs: also return the distributions sampled from, (length, vocab).
    """
    if not prime:
        raise ValueError("prime must be at least one character")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    rng = np.random.default_rng(0) if rng is None else rng
    logits, state, _ = model.forward(model.encode(prime)[None, :], model.initial_state(1))
    out, probs = [], []
    for k in range(length):
        last = logits[0, -1].astype(np.float64)
        if temperature == 0:
            p = np.zeros(model.vocab_size)
            p[int(np.argmax(last))] = 1.0
        else:
            p = softmax(last / temperature)
        p = p / p.sum()
        nxt = int(rng.choice(model.vocab_size, p=p))
        out.append(nxt)
        probs.append(p)
        if k + 1 < length:
            logits, state, _ = model.forward(np.array([[nxt]]), state)
    text = model.decode(out)
    return (text, np.array(probs).reshape(length, model.vocab_size)) if return_probs else text


def train_char_lm(text: str, cell: str = "lstm", hidden: int = 128, layers: int = 1, seq_len: int = 50,
                  batch: int = 32, steps: int = 1000, lr: float = 2e-3, optimizer: str = "adam",
                  clip: float | None = 5.0, seed: int = 0, valid_fraction: float = 0.1,
                  sample_every: int | None = 200, sample_len: int = 200, temperature: float = 1.0,
                  time_budget: float | None = None, log: Callable[[str], object] | None = print,
                  prime: str | None = None, dtype=np.float32) -> dict:
    """Train a CharLM on `text` with truncated BPTT over `batch` contiguous streams (see the module doc).

    Each step reads (batch, seq_len) characters per stream, predicts the next ones, back-propagates
    through those seq_len steps, clips the global gradient norm to `clip` (None: no clipping) and
    takes one optimizer step ('adam' or 'adagrad' at `lr`; min-char-rnn's Adagrad likes lr 0.1).
    The final state of a step is the start state of the next; at the end of the streams they start
    over from zero state. Stops after `steps` steps or `time_budget` seconds, whichever comes first.
    Every `sample_every` steps (None or 0: never) logs the loss and a sample primed with `prime`
    (default: the text's first character). valid_fraction 0 skips validation. dtype: float32 by
    default, about twice as fast as float64 here and plenty for training (the cells' gradient checks
    use float64; so can you).

    Returns a dict: model, history [(step, train nats/char)], valid_nats, valid_bits (None without
    validation), unigram_bits (of the whole text), samples [(step, text)], steps (taken),
    train_seconds and chars_per_s (the training loop alone), vocab_size, train_chars, valid_chars.
    """
    if optimizer not in ("adam", "adagrad"):
        raise ValueError(f"optimizer must be 'adam' or 'adagrad', got {optimizer!r}")
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    if seq_len < 1 or batch < 1:
        raise ValueError(f"seq_len and batch must be >= 1, got {seq_len} and {batch}")
    log = log or (lambda _msg: None)
    model = CharLM(text, cell, hidden, layers, dtype=dtype, seed=seed)
    ids = model.encode(text)
    n_valid = int(len(ids) * valid_fraction)
    if valid_fraction > 0 and n_valid < 2:
        raise ValueError(f"text of {len(ids)} chars leaves {n_valid} for validation; give more text "
                         "or valid_fraction=0")
    train_ids, valid_ids = ids[:len(ids) - n_valid], ids[len(ids) - n_valid:]
    stream_len = len(train_ids) // batch
    if stream_len < 2:
        raise ValueError(f"{len(train_ids)} training chars cannot fill {batch} streams of >= 2 chars; "
                         "lower batch or give more text")
    streams = train_ids[:batch * stream_len].reshape(batch, stream_len)  # (batch, stream_len)
    unigram = unigram_entropy_bits(ids, model.vocab_size)
    opt = Adam(model.params, lr=lr) if optimizer == "adam" else Adagrad(model.params, lr=lr)
    rng = np.random.default_rng(seed + 1)  # for samples only
    prime = prime or text[0]
    log(f"vocab {model.vocab_size} chars; train {len(train_ids):,} / valid {n_valid:,} chars; "
        f"{batch} streams of {stream_len:,}; {cell} {layers}x{hidden}; unigram entropy {unigram:.3f} bits/char")

    history, samples = [], []
    state, pos, chars, elapsed = model.initial_state(batch), 0, 0, 0.0
    report = sample_every or max(1, steps // 10)
    t0 = time.perf_counter()
    step = 0
    while step < steps and (time_budget is None or elapsed < time_budget):
        step += 1
        n = min(seq_len, stream_len - 1 - pos)  # the last chunk of a stream may be shorter
        x, y = streams[:, pos:pos + n], streams[:, pos + 1:pos + n + 1]
        logits, new_state, cache = model.forward(x, state)
        loss, d_logits = softmax_cross_entropy(logits, y)
        grads = model.backward(d_logits, cache)
        if clip:
            clip_grad_norm(grads, clip)
        opt.step(grads)
        state, pos, chars = new_state, pos + n, chars + x.size  # carried, not back-propagated through
        if pos >= stream_len - 1:  # the streams are used up: start over
            state, pos = model.initial_state(batch), 0
        history.append((step, loss))
        elapsed = time.perf_counter() - t0
        if step % report == 0 or step == steps:
            recent = np.mean([h[1] for h in history[-report:]])
            log(f"step {step:>6}  train {recent:.3f} nats/char ({recent / LN2:.3f} bits)  "
                f"{chars / elapsed:,.0f} chars/s")
            if sample_every and sample_len > 0:
                t_pause = time.perf_counter()
                samples.append((step, sample(model, prime, sample_len, temperature, rng)))
                log(f"  sample: {prime + samples[-1][1]!r}")
                t0 += time.perf_counter() - t_pause  # sampling is not training time

    valid_nats = evaluate(model, valid_ids) if n_valid else None
    valid_bits = valid_nats / LN2 if n_valid else None
    if n_valid:
        log(f"valid {valid_nats:.3f} nats/char = {valid_bits:.3f} bits/char (unigram entropy {unigram:.3f})")
    return {
        "model": model, "history": history, "valid_nats": valid_nats, "valid_bits": valid_bits,
        "unigram_bits": unigram, "samples": samples, "steps": step, "train_seconds": elapsed,
        "chars_per_s": chars / elapsed if elapsed > 0 else 0.0, "vocab_size": model.vocab_size,
        "train_chars": len(train_ids), "valid_chars": n_valid,
    }
