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

    from seqlab.pipelines import MemoryTask
    net = MemoryTask.fit(task="copy", cell="lstm", length=50, time="2m")   # one model, the same surface
    net.evaluate()            # {"accuracy": ..., "baseline": 0.125, "solved": ...} on a fresh test set
    net.predict(x)            # x (n, time, input_dim) -> sums (n,) or symbols (n, memorize)

    rows = run_memory("adding", cells=("rnn", "lstm"), lengths=(10, 50, 100))   # the experiment
    print(format_table(rows))
    plot_memory(rows, "memory.png")           # seqlab.viz.memory_plot

or `seqlab scratch memory --task adding --lengths 10,50,100`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqlab.data.batching import Batch
from seqlab.export import runtime
from seqlab.models.encoder import CELLS
from seqlab.models.memory import MemoryNet
from seqlab.pipelines.base import Pipeline, finish, run_training
from seqlab.pipelines.config import Config, ConfigError, choice, duration, num
from seqlab.pipelines.registry import register_task
from seqlab.train.checkpoint import task_meta
from seqlab.train.trainer import TrainConfig

logger = logging.getLogger("seqlab")

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


def make_data(task: str, n: int, length: int, seed, symbols: int = 8, memorize: int = 10):
    """(x, y) of `task` ('adding' or 'copy'); see adding_task and copy_task for the shapes."""
    if task == "adding":
        return adding_task(n, length, seed)
    if task == "copy":
        return copy_task(n, length, seed, symbols, memorize)
    raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def _loss(task: str, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "adding":
        return nn.functional.mse_loss(pred, y)
    return nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1))


@torch.no_grad()
def score(model: MemoryNet, x: torch.Tensor, y: torch.Tensor, chunk: int = 500) -> float:
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

    def __init__(self, task: str, batch: int, length: int, seed: int, per_epoch: int, symbols: int = 8,
                 memorize: int = 10):
        self.task, self.batch, self.length, self.seed, self.per_epoch = task, batch, length, seed, per_epoch
        self.symbols, self.memorize = symbols, memorize
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.length, 1, self.epoch])
        for _ in range(self.per_epoch):
            x, y = make_data(self.task, self.batch, self.length, rng, self.symbols, self.memorize)
            yield Batch(x, None, y, torch.arange(len(x)))


@dataclass
class MemoryModel(Config):
    cell: str = choice("lstm", CELLS)
    hidden: int = num(64, 1, 65536)


@dataclass
class MemoryData(Config):
    """The synthetic task: fresh random batches every step, validation and test sets drawn apart."""

    task: str = choice("adding", TASKS)
    length: int = num(50, 2, 100_000)  # the gap to remember
    symbols: int = num(8, 1, 1000)  # copy task only
    memorize: int = num(10, 1, 10_000)  # copy task only
    test_size: int = num(2000, 1)


@dataclass
class MemoryTrain(Config):
    steps: int = num(5000, 1)
    batch: int = num(64, 1)
    lr: float = num(2e-3, 0.0, lo_open=True)
    clip: float = num(1.0, 0.0)
    time: float | str = 1.5  # minutes (or "90s", "2m"); training also stops once the task is solved
    eval_every: int = num(200, 1)
    seed: int = num(0, 0)
    threads: int = num(0, 0)

    def __post_init__(self):
        if isinstance(self.time, str):
            self.time = duration(self.time)

    def check(self) -> None:
        if not 0 < self.time < float("inf"):
            raise ConfigError("train.time", f"must be a positive duration, not {self.time}")


@dataclass
class MemoryConfig(Config):
    model: MemoryModel = field(default_factory=MemoryModel)
    data: MemoryData = field(default_factory=MemoryData)
    train: MemoryTrain = field(default_factory=MemoryTrain)

    def trainer_config(self) -> TrainConfig:
        """Adam (no weight decay) with clipping, until `steps`, `time`, or solved with half the allowed
        error on the validation set (checked every `eval_every` steps)."""
        t, task = self.train, self.data.task
        target = 0.5 * ADDING_SOLVED_MSE if task == "adding" else 1 - 0.5 * (1 - COPY_SOLVED_ACCURACY)
        every = min(t.eval_every, t.steps)
        return TrainConfig(epochs=-(-t.steps // every), batch_size=t.batch, lr=t.lr, weight_decay=0.0,
                           clip=t.clip, seed=t.seed, device="cpu", save_every=0, time_budget=t.time * 60,
                           log_every=every, target=target, patience=0)


@register_task
class MemoryTask(Pipeline):
    """A recurrent network trained on the adding or copy task (see the module docstring)."""

    task = "memory"
    Config = MemoryConfig

    def __init__(self, model: MemoryNet, data: dict, config: MemoryConfig | None = None):
        self.model, self.data, self.config = model, data, config

    @classmethod
    def fit(cls, config: MemoryConfig | dict | str | None = None, *, out=None, resume: bool = False,
            overwrite: bool = False, log: Callable[[str], None] | None = None, **overrides) -> MemoryTask:
        """Train on fresh random batches; `out` (optional) keeps checkpoints, metrics.jsonl and loss.png."""
        cfg = cls.make_config(config, **overrides)
        d, t = cfg.data, cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        torch.manual_seed(t.seed)
        x_val, y_val = make_data(d.task, 500, d.length, [t.seed, d.length, 2], d.symbols, d.memorize)
        model = MemoryNet(d.task, cfg.model.cell, cfg.model.hidden, x_val.shape[-1], d.symbols, d.memorize)
        pipe = cls(model, d.to_dict() | {"seed": t.seed}, cfg)  # the seed names the test set
        st = run_training(pipe, FreshBatches(d.task, t.batch, d.length, t.seed, min(t.eval_every, t.steps), d.symbols,
                                       d.memorize),
                          lambda m, b: _loss(d.task, m(b.ids), b.targets), lambda m: {"val": score(m, x_val, y_val)},
                          metric="val", mode="min" if d.task == "adding" else "max", out=out, resume=resume,
                          overwrite=overwrite, log=log or logger.info, callbacks=None if out else [],
                          trainer_config=cfg.trainer_config())
        finish(pipe, st, pipe.evaluate(), out, prefix="test")
        return pipe

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out test set of this run's task, length and seed: x (n, time, input_dim), y."""
        d = self.data
        return make_data(d["task"], d["test_size"], d["length"], [d.get("seed", 0), d["length"], 3], d["symbols"],
                         d["memorize"])

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, time, input_dim) -> the sums (n,) (adding) or the reproduced symbols (n, memorize) (copy)."""
        self.model.eval()
        out = self.model(torch.as_tensor(x, dtype=torch.float32).to(self.device)).cpu()
        return out if self.data["task"] == "adding" else out.argmax(-1)

    def evaluate(self, data: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
        """{"mse" or "accuracy", "baseline", "solved"} on (x, y), default this run's test set."""
        x, y = data if data is not None else self.test_set()
        task, value = self.data["task"], score(self.model, x, y)
        return {"mse" if task == "adding" else "accuracy": value, "baseline": baseline(task, y, self.data["symbols"]),
                "solved": is_solved(task, value), "n": len(x)}

    def meta(self, train_cfg=None) -> dict:
        tcfg = train_cfg or (self.config.trainer_config() if self.config else TrainConfig())
        return task_meta(self.task, self.model.cfg, self.data, tcfg, {})

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> MemoryTask:
        cfg, _, model = runtime.load_model(path, cls.task, lambda m: MemoryNet(**m), device)
        return cls(model, cfg["data"])


def train_one(task: str, cell: str, length: int, hidden: int = 64, steps: int = 5000, batch: int = 64,
              lr: float = 2e-3, seed: int = 0, time_budget: float = 60.0, clip: float = 1.0,
              test_size: int = 2000, eval_every: int = 200, out: str | Path | None = None,
              log: Callable[[str], None] | None = print) -> dict:
    """One `MemoryTask.fit` (`time_budget` in seconds) as a row of the experiment's table."""
    prefix = f"  {task} {cell} length {length}: "
    pipe = MemoryTask.fit(task=task, cell=cell, length=length, hidden=hidden, steps=steps, batch=batch, lr=lr,
                          seed=seed, time=time_budget / 60, clip=clip, test_size=test_size, eval_every=eval_every,
                          out=out, overwrite=True, log=(lambda line: log(prefix + line)) if log else (lambda _: None))
    r = pipe.evaluate()
    metric = "mse" if task == "adding" else "accuracy"
    step, seconds = pipe.results["steps"], pipe.results["train_seconds"]
    row = {"task": task, "cell": cell, "length": length, "hidden": hidden, "metric": metric, "value": r[metric],
           "baseline": r["baseline"], "solved": r["solved"],
           "threshold": f"< {ADDING_SOLVED_MSE}" if task == "adding" else f">= {COPY_SOLVED_ACCURACY}",
           "solved_at": ADDING_SOLVED_MSE if task == "adding" else COPY_SOLVED_ACCURACY,
           "steps": step, "seconds": round(seconds, 1)}
    if log:
        log(f"{task} {cell} length {length}: test {metric} {r[metric]:.4f} (baseline {row['baseline']:.4f}) "
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
