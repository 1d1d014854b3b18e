"""Tiny training jobs for the data-parallel tests: called in-process (1 process, the reference) or run by
torchrun as a script, one process per rank:

    python -m torch.distributed.run --nnodes 2 --node-rank R --nproc-per-node 1 --rdzv-backend c10d \\
        --rdzv-endpoint 127.0.0.1:PORT tests/_ddp_jobs.py JOB OUT [--resume] [--slow S]

JOB "equal" trains the classifier (with and without a parameter its step never uses) and the LM with
per-rank batch B / world and writes each rank's final weights to OUT/<name><rank>.st plus what the Trainer
wrapped its step in (OUT/<name><rank>.json); JOB "lm" trains the LM alone into OUT/killed (the kill test:
`--slow` sleeps that long in every step so that a kill finds it running; `--resume` continues last/).
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from seqlab.data.batching import BucketBatcher
from seqlab.data.streams import StreamBatcher
from seqlab.models.classifier import ClassifierConfig, TextClassifier
from seqlab.models.encoder import EncoderConfig
from seqlab.models.language_model import LanguageModel, LMConfig
from seqlab.pipelines.lm import CarriedStateStep
from seqlab.train import TrainConfig, Trainer

B = 8  # the global batch
LM_STEPS = 18  # 2 epochs of 9 chunks


def classify_data():
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(4, 30, (int(n),), generator=g) for n in torch.randint(2, 12, (48,), generator=g)]
    targets = torch.tensor([int(s.sum()) % 2 for s in seqs])
    return seqs, targets


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_classifier(out, batch: int, epochs: int = 2, unused: bool = False):
    """(final weights, trainer); `unused` adds a layer the step never touches (DDP must find it)."""
    seqs, targets = classify_data()
    torch.manual_seed(0)
    model = TextClassifier(ClassifierConfig(EncoderConfig(vocab_size=30, embed_dim=8, hidden=8), 2))
    if unused:
        model.spare = torch.nn.Linear(3, 3)
    batches = BucketBatcher(seqs, targets, batch, shuffle=True, seed=3)
    cfg = TrainConfig(epochs=epochs, batch_size=batch, lr=1e-2, device="cpu", log_every=2, save_every=0)

    def eval_fn(m):
        return {"accuracy": float((m(seqs[0][None]).argmax(-1) == targets[0]).float())}

    trainer = Trainer(model, cfg, out, lambda m, b: F.cross_entropy(m(b.ids, b.lengths), b.targets), eval_fn,
                      metric="accuracy", mode="max", log=lambda s: None)
    trainer.fit(batches)
    return _weights(model), trainer


def train_lm(out, batch: int, kill_at: int = 0, resume: bool = False, slow: float = 0.0):
    """(final weights, trainer) of a GRU LM on 700 random tokens, streams carrying their state;
    `kill_at` ends the process (os._exit) inside step `kill_at` + 1, `slow` sleeps in every step."""
    ids = torch.randint(4, 20, (700,), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(EncoderConfig(vocab_size=20, embed_dim=8, hidden=8, cell="gru")))
    batches = StreamBatcher(ids, batch, 10)
    cfg = TrainConfig(epochs=2, batch_size=batch, lr=1e-2, device="cpu", save_every=3, log_every=5)
    carried = CarriedStateStep(batches)
    trainer = None

    def step_fn(m, b):
        if kill_at and trainer.state["step"] == kill_at:
            os._exit(3)  # a kill in the middle of an epoch, after the checkpoint of step 6
        if slow:
            time.sleep(slow)
        return carried(m, b)

    step_fn.state_tensors, step_fn.load_state_tensors = carried.state_tensors, carried.load_state_tensors
    trainer = Trainer(model, cfg, out, step_fn, None, log=lambda s: None)
    trainer.fit(batches, resume=resume)
    return _weights(model), trainer


def _record(out: str, name: str, weights: dict, trainer) -> None:
    rank = trainer.dist.rank
    step = trainer._step
    ddp = getattr(step, "ddp", None)
    info = {"rank": rank, "world": trainer.dist.world, "wrapper": type(step).__name__,
            "ddp": type(ddp).__name__ if ddp is not None else None,
            "find_unused": getattr(ddp, "find_unused_parameters", None)}
    save_file(weights, os.path.join(out, f"{name}{rank}.st"))
    with open(os.path.join(out, f"{name}{rank}.json"), "w") as f:
        json.dump(info, f)


def main(argv: list[str]) -> None:
    job, out = argv[0], argv[1]
    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    with open(os.path.join(out, f"pid{os.environ.get('RANK', '0')}"), "w") as f:  # torchrun's workers have their
        f.write(str(os.getpid()))  # own session: a test that kills a node kills its worker by this pid
    if job == "equal":
        _record(out, "cls", *train_classifier(os.path.join(out, "cls"), B // world))
        _record(out, "spare", *train_classifier(None, B // world, unused=True))
        _record(out, "lm", *train_lm(os.path.join(out, "lm"), B // world))
    elif job == "lm":
        slow = float(argv[argv.index("--slow") + 1]) if "--slow" in argv else 0.0
        _record(out, "resumed" if "--resume" in argv else "killed",
                *train_lm(os.path.join(out, "killed"), B // world, resume="--resume" in argv, slow=slow))
    else:
        raise SystemExit(f"unknown job {job!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
