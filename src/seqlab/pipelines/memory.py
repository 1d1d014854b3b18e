"""Long-range memory tasks: can a recurrent network carry information across many steps?

The scratch experiment (seqlab.scratch.vanishing) shows the gradient from a loss at step T dying
out geometrically in a plain RNN as it travels back. These tasks show what that costs in training:
the answer depends on inputs far in the past, and nothing nearby gives a hint.

Adding task (Hochreiter & Schmidhuber 1997; the version of Le et al. 2015):

    input   (n, length, 2)   channel 0: random values in [0, 1]
                             channel 1: a marker, exactly two 1s: one in the first half, one in the second
    target  (n,)             the sum of the two marked values

The network reads the whole sequence and answers at the last step. Without memory the best it can
do is predict the mean, 1.0, whose mean squared error is the variance of a sum of two U(0, 1):
2/12 = 1/6 = 0.167. Solved means test MSE < 0.01 (the classic threshold, 6% of that baseline).

Copy task (Hochreiter & Schmidhuber 1997; the version of Arjovsky et al. 2016), with m = memorize:

    input   m symbols | length - 1 blanks | go | m blanks        (one-hot: blank, 1..symbols, go)
    target  the m symbols, to be produced at the last m steps    (n, m) in [0, symbols)

The gap between seeing a symbol and reproducing it is length + m steps. Accuracy is scored on the m
answer steps only: a model that forgot the symbols can only guess, and every guessing strategy
(always the same symbol, the most frequent one, anything not using the input) scores 1/symbols in
expectation, 12.5% for 8 symbols; that is the baseline. (Scoring every step instead would credit
"always predict blank" with (length + m) / (length + 2m) plus a guess, 92% at length 100: a number
that hides the failure.) Solved means answer accuracy >= 95%.

Both tasks draw fresh random batches every step (no over-fitting) and are tested on held-out data.
The model is seqlab's own `RecurrentEncoder` (one layer) with a linear head, trained by seqlab's one
`Trainer` (AdamW without weight decay, i.e. Adam, and global gradient-norm clipping). The expected
picture: the vanilla RNN's error climbs to the baseline as the length grows, while the LSTM (and GRU)
still solve long lengths, given enough steps.

    rows = run_memory("adding", cells=("rnn", "lstm"), lengths=(10, 50, 100))
    print(format_table(rows))
    plot_memory(rows, "memory.png")

or `seqlab scratch memory --task adding --lengths 10,50,100`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqlab.data.batching import Batch
from seqlab.models.encoder import EncoderConfig, RecurrentEncoder
from seqlab.train.trainer import TrainConfig, Trainer

TASKS = ("adding", "copy")
ADDING_SOLVED_MSE = 0.01
COPY_SOLVED_ACCURACY = 0.95


def adding_task(n: int, length: int, seed: int | np.random.Generator = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` adding-task sequences: x (n, length, 2) float32 and the targets y (n,) float32."""
    if length < 2:
        raise ValueError(f"the adding task needs length >= 2, got {length}")
    rng = np.random.default_rng(seed)
    values = rng.random((n, length))
    half, rows = length // 2, np.arange(n)
    first, second = rng.integers(0, half, n), rng.integers(half, length, n)
    marker = np.zeros((n, length))
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    x = np.stack([values, marker], axis=-1)
    y = values[rows, first] + values[rows, second]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def copy_task(n: int, length: int, seed: int | np.random.Generator = 0, symbols: int = 8,
              memorize: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` copy-task sequences: x (n, memorize + length + memorize, symbols + 2) one-hot float32
    (channel 0 blank, 1..symbols the symbols, symbols + 1 the go marker) and y (n, memorize) int64,
    the symbols to reproduce (as 0..symbols-1) at the last `memorize` steps."""
    if length < 1 or memorize < 1 or symbols < 1:
        raise ValueError(f"copy task needs length, memorize, symbols >= 1, got {length}, {memorize}, {symbols}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, symbols, (n, memorize))
    ids = np.zeros((n, 2 * memorize + length), dtype=np.int64)  # 0 = blank
    ids[:, :memorize] = y + 1
    ids[:, memorize + length - 1] = symbols + 1  # go: reproduce now
    x = np.eye(symbols + 2, dtype=np.float32)[ids]
    return torch.from_numpy(x), torch.from_numpy(y)


def make_data(task: str, n: int, length: int, seed) -> tuple[torch.Tensor, torch.Tensor]:
    if task == "adding":
        return adding_task(n, length, seed)
    if task == "copy":
        return copy_task(n, length, seed)
    raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


class MemoryNet(nn.Module):
    """RecurrentEncoder (one layer) + a linear head reading the last step (adding, output (n,)) or
    the last `answer_steps` steps (copy, logits (n, answer_steps, symbols))."""

    def __init__(self, task: str, cell: str, hidden: int, input_dim: int, symbols: int = 8, memorize: int = 10):
        super().__init__()
        self.task, self.answer_steps = task, memorize
        self.encoder = RecurrentEncoder(EncoderConfig(input_dim=input_dim, hidden=hidden, cell=cell))
        self.head = nn.Linear(hidden, 1 if task == "adding" else symbols)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, time, input_dim) -> predictions (batch,) or logits (batch, memorize, symbols)."""
        outputs = self.encoder(x).outputs  # (batch, time, hidden)
        if self.task == "adding":
            return self.head(outputs[:, -1]).squeeze(-1)
        return self.head(outputs[:, -self.answer_steps:])


def _loss(task: str, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "adding":
        return nn.functional.mse_loss(pred, y)
    return nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1))


@torch.no_grad()
def evaluate(model: MemoryNet, x: torch.Tensor, y: torch.Tensor, chunk: int = 500) -> float:
    """Test MSE (adding) or accuracy on the answer steps (copy)."""
    model.eval()
    total = 0.0
    for i in range(0, len(x), chunk):
        pred = model(x[i:i + chunk])
        if model.task == "adding":
            total += float(((pred - y[i:i + chunk]) ** 2).sum())
        else:
            total += float((pred.argmax(-1) == y[i:i + chunk]).float().mean(-1).sum())
    model.train()
    return total / len(x)


def baseline(task: str, y: torch.Tensor, symbols: int = 8) -> float:
    """The memoryless baseline: MSE of always predicting 1.0 on these targets (adding, ~1/6), or
    1/symbols, the expected answer accuracy of any guess that ignores the input (copy)."""
    if task == "adding":
        return float(((y - 1.0) ** 2).mean())
    return 1.0 / symbols


def is_solved(task: str, value: float, margin: float = 1.0) -> bool:
    """MSE < 0.01 (adding) or accuracy >= 0.95 (copy); margin 0.5 asks for half the error allowed."""
    if task == "adding":
        return value < margin * ADDING_SOLVED_MSE
    return 1 - value <= margin * (1 - COPY_SOLVED_ACCURACY)


class FreshBatches:
    """`per_epoch` fresh random batches of a task per epoch, the same for the same (seed, epoch), in
    the Batch form the shared Trainer takes: ids = inputs (batch, time, input_dim), targets = y."""

    def __init__(self, task: str, batch: int, length: int, seed: int, per_epoch: int):
        self.task, self.batch, self.length, self.seed, self.per_epoch = task, batch, length, seed, per_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.length, 1, self.epoch])
        for _ in range(self.per_epoch):
            x, y = make_data(self.task, self.batch, self.length, rng)
            yield Batch(x, None, y, torch.arange(len(x)))


def train_one(task: str, cell: str, length: int, hidden: int = 64, steps: int = 5000, batch: int = 64,
              lr: float = 2e-3, seed: int = 0, time_budget: float = 60.0, clip: float = 1.0,
              test_size: int = 2000, eval_every: int = 200, out: str | Path | None = None,
              log: Callable[[str], None] | None = print) -> dict:
    """Train one model with the shared Trainer on fresh random batches until `steps`, `time_budget`
    seconds, or the task is solved with half the allowed error on a validation set (checked every
    `eval_every` steps); then score it on a test set. The run (checkpoints, log, loss curve) goes to
    `out` (default: a temporary directory)."""
    import tempfile

    torch.manual_seed(seed)
    x_val, y_val = make_data(task, 500, length, [seed, length, 2])
    x_test, y_test = make_data(task, test_size, length, [seed, length, 3])
    model = MemoryNet(task, cell, hidden, input_dim=x_test.shape[-1])
    mode = "min" if task == "adding" else "max"
    target = 0.5 * ADDING_SOLVED_MSE if task == "adding" else 1 - 0.5 * (1 - COPY_SOLVED_ACCURACY)
    cfg = TrainConfig(epochs=-(-steps // eval_every), batch_size=batch, lr=lr, weight_decay=0.0, clip=clip,
                      seed=seed, device="cpu", save_every=0, time_budget=time_budget, log_every=eval_every,
                      target=target)
    prefix = f"  {task} {cell} length {length}: "
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, cfg, out or tmp, lambda m, b: _loss(task, m(b.ids), b.targets),
                          lambda m: {"val": evaluate(m, x_val, y_val)}, metric="val", mode=mode,
                          meta={"config.json": {"task": "memory", "memory_task": task, "cell": cell,
                                                "length": length, "hidden": hidden}},
                          log=(lambda line: log(prefix + line)) if log else (lambda _: None))
        state = trainer.fit(FreshBatches(task, batch, length, seed, eval_every))
    step, seconds = state["step"], state["elapsed"]
    value = evaluate(model, x_test, y_test)
    row = {"task": task, "cell": cell, "length": length, "hidden": hidden,
           "metric": "mse" if task == "adding" else "accuracy", "value": value,
           "baseline": baseline(task, y_test), "solved": is_solved(task, value),
           "threshold": f"< {ADDING_SOLVED_MSE}" if task == "adding" else f">= {COPY_SOLVED_ACCURACY}",
           "steps": step, "seconds": round(seconds, 1)}
    if log:
        log(f"{task} {cell} length {length}: test {row['metric']} {value:.4f} (baseline {row['baseline']:.4f}) "
            f"{'solved' if row['solved'] else 'not solved'} after {step} steps, {seconds:.0f}s")
    return row


def run_memory(task: str = "adding", cells: Sequence[str] = ("rnn", "lstm"), lengths: Sequence[int] = (10, 50, 100),
               hidden: int = 64, steps: int = 5000, batch: int = 64, lr: float = 2e-3, seed: int = 0,
               time_budget_per_run: float = 60.0, clip: float = 1.0, test_size: int = 2000,
               out: str | Path | None = None, log: Callable[[str], None] | None = print) -> list[dict]:
    """Train every (cell, length) pair on `task` and return one row (a dict) per run: task, cell,
    length, metric ('mse' or 'accuracy'), value (on the test set), baseline, solved, threshold,
    steps, seconds. Each run stops after `steps` steps or `time_budget_per_run` seconds; with `out`,
    each run's directory (checkpoints, metrics.jsonl, loss.png) is out/<task>-<cell>-<length>."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return [train_one(task, cell, length, hidden, steps, batch, lr, seed, time_budget_per_run, clip, test_size,
                      out=Path(out) / f"{task}-{cell}-{length}" if out else None, log=log)
            for cell in cells for length in lengths]


def format_table(rows: Sequence[dict]) -> str:
    """A markdown table of run_memory's rows."""
    lines = ["| task | cell | length | test metric | baseline | solved | steps | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['cell']} | {r['length']} | {r['metric']} {r['value']:.4f} | "
                     f"{r['baseline']:.4f} | {'yes' if r['solved'] else 'no'} ({r['threshold']}) | "
                     f"{r['steps']} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def plot_memory(rows: Sequence[dict], path: str | Path) -> Path:
    """Write a PNG: the test metric against sequence length, a line per cell, the baseline dashed;
    one panel per task (MSE on a log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        mine = [r for r in rows if r["task"] == task]
        for cell in dict.fromkeys(r["cell"] for r in mine):
            pts = sorted((r["length"], r["value"]) for r in mine if r["cell"] == cell)
            ax.plot(*zip(*pts), marker="o", label=cell)
        lengths = sorted({r["length"] for r in mine})
        ax.plot(lengths, [np.mean([r["baseline"] for r in mine if r["length"] == n]) for n in lengths],
                "k--", lw=1, label="memoryless baseline")
        if task == "adding":
            ax.axhline(ADDING_SOLVED_MSE, color="g", ls=":", lw=1, label=f"solved (MSE < {ADDING_SOLVED_MSE})")
            ax.set_yscale("log")
            ax.set_ylabel("test MSE")
        else:
            ax.axhline(COPY_SOLVED_ACCURACY, color="g", ls=":", lw=1, label=f"solved (>= {COPY_SOLVED_ACCURACY})")
            ax.set_ylabel("test accuracy on the answer steps")
        ax.set(title=f"{task} task", xlabel="sequence length (gap to remember)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
