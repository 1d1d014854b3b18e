"""Data-parallel training over several processes, as started by `torchrun`.

    torchrun --nproc-per-node 2 -m seqlab classify train --batch 32 ...     # 2 ranks x 32 = 64 per step

Every process (rank) runs the same command. `setup` reads the environment torchrun sets (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and joins the process group: gloo on CPU, nccl on
CUDA (rank r uses GPU LOCAL_RANK). Without WORLD_SIZE > 1 everything here is a no-op (`Dist()`).

What each rank does (see `Trainer`):
  * reads its own share of every batch: the batchers' `shard(rank, world)` cut each global batch of
    `--batch x world` examples (or LM streams) into `world` equal parts, the same count on every rank;
  * runs the task's step through `torch.nn.parallel.DistributedDataParallel`: the step is a module
    (`StepModule`, forward(batch) -> loss) around the model, so every task's step (a classifier's, an
    LM's with its carried state, a CRF tagger's, a seq2seq decoder's, ...) is DDP's forward. DDP gives
    every rank rank 0's weights and buffers when it is built and averages the gradients over the ranks
    in buckets, overlapped with backward; each rank's loss is the mean over its share, and the mean of
    the ranks' means is the mean over the global batch (equal shares), so the step equals one process's
    step on the global batch;
  * `find_unused_parameters` only where a step needs it: the first step runs with it and reports which
    parameters got no gradient on any rank; when none, DDP is rebuilt without it (no graph walk per step);
  * rank 0 alone evaluates (on the plain model, outside DDP), logs and writes checkpoints (the model's
    own state_dict, no `module.` names); the other ranks' stdout is silenced. Its decisions (early
    stopping, the time budget) are broadcast, so every rank stops at the same step;
  * `last/` holds every rank's RNG state and carried step state (e.g. an LM's hidden state of its
    streams) stacked (world, ...), so `--resume` with the same number of processes is exact.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable

import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel

from seqlab.errors import UserError


class Dist:
    """This process's place in the group: rank, world size, device; world 1 = a single process."""

    def __init__(self, device: torch.device, rank: int = 0, world: int = 1):
        self.device, self.rank, self.world = device, rank, world

    @property
    def main(self) -> bool:
        """True on the rank that logs, evaluates and writes files (rank 0)."""
        return self.rank == 0

    def _comm(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor on the device the backend communicates on (nccl: the GPU; gloo: the CPU)."""
        return t.to(self.device if self.device.type == "cuda" else "cpu")

    def mean(self, value: float) -> float:
        """The mean of a number over the ranks (e.g. the logged training loss)."""
        if self.world == 1:
            return value
        t = self._comm(torch.tensor([float(value)], dtype=torch.float64))
        tdist.all_reduce(t)
        return float(t[0]) / self.world

    def flag(self, value: bool) -> bool:
        """Rank 0's value of a flag, on every rank (so all ranks take the same decision)."""
        if self.world == 1:
            return value
        t = self._comm(torch.tensor([int(value)]))
        tdist.broadcast(t, 0)
        return bool(t[0])

    def wrap(self, model: torch.nn.Module, step_fn) -> Callable:
        """`batch -> loss`: `step_fn(model, batch)` itself in a single process (nothing changes), else the
        step as DDP's forward (`DDPStep`). Build it after the weights are final (after a resume): DDP
        copies rank 0's weights and buffers to every rank."""
        if self.world == 1:
            return lambda batch: step_fn(model, batch)
        return DDPStep(StepModule(model, step_fn), self)

    def stack(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each rank's tensors gathered into (world, ...) tensors (the same names and shapes on every
        rank, e.g. RNG states); unchanged in a single process."""
        if self.world == 1:
            return tensors
        out = {}
        for k, v in sorted(tensors.items()):
            c = self._comm(v.contiguous())
            parts = [torch.empty_like(c) for _ in range(self.world)]
            tdist.all_gather(parts, c)
            out[k] = torch.stack(parts).cpu()
        return out

    def pick(self, tensors: dict[str, torch.Tensor], saved_world: int) -> dict[str, torch.Tensor]:
        """This rank's row of tensors written by `stack` in a run of `saved_world` processes."""
        if saved_world != self.world:
            raise UserError(f"this run was saved by {saved_world} process(es) but resumes with {self.world}; "
                            f"resume with the same number (torchrun --nproc-per-node {saved_world})")
        # a copy, not a view: torch.set_rng_state misreads a view that starts inside its storage
        return tensors if self.world == 1 else {k: v[self.rank].clone() for k, v in tensors.items()}

    def barrier(self) -> None:
        if self.world > 1:
            tdist.barrier()


class StepModule(torch.nn.Module):
    """A task's training step as a module: forward(batch) = step_fn(model, batch), a scalar loss.
    `model` is its one submodule, so its parameters are the model's (DDP hooks them; checkpoints save
    `model` itself). `step_fn` may keep state between batches (an LM's carried, detached hidden state)."""

    def __init__(self, model: torch.nn.Module, step_fn: Callable):
        super().__init__()
        self.model, self.step_fn = model, step_fn

    def forward(self, batch) -> torch.Tensor:
        return self.step_fn(self.model, batch)


class DDPStep:
    """`StepModule` under DistributedDataParallel (gloo on CPU, nccl on CUDA); call it with a batch.

    The first call runs with find_unused_parameters=True; before the second, the ranks agree (one
    all-reduce) whether any parameter got no gradient. If none did, DDP is rebuilt without it; else it
    stays (a step that leaves parameters unused every time). `step_fn.find_unused_parameters = True`
    keeps it from the start (a step whose set of used parameters changes from batch to batch)."""

    def __init__(self, module: StepModule, dist: Dist):
        self.module, self.dist = module, dist
        self.settled = bool(getattr(module.step_fn, "find_unused_parameters", False))
        self.calls = 0
        self.ddp = self._build(find_unused=True)

    def _build(self, find_unused: bool) -> DistributedDataParallel:
        dev = self.dist.device
        return DistributedDataParallel(self.module, device_ids=[dev.index] if dev.type == "cuda" else None,
                                       find_unused_parameters=find_unused)

    def __call__(self, batch) -> torch.Tensor:
        self.calls += 1
        if not self.settled and self.calls == 2:  # the gradients of step 1 are still there (zero_grad comes later)
            self.settled = True
            params = [p for p in self.module.parameters() if p.requires_grad]
            unused = self.dist._comm(torch.tensor([sum(p.grad is None for p in params)]))
            tdist.all_reduce(unused, op=tdist.ReduceOp.MAX)
            if int(unused[0]) == 0:
                self.ddp = None  # the old reducer (and its gradient hooks) goes first
                self.ddp = self._build(find_unused=False)
        return self.ddp(batch)


def _destroy() -> None:
    if tdist.is_initialized():
        tdist.destroy_process_group()


def setup(device: torch.device) -> Dist:
    """Join the process group torchrun describes in the environment; a single process without it.
    `device` is the device asked for: on CUDA each rank takes GPU LOCAL_RANK (and nccl), else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device)
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise UserError(f"WORLD_SIZE is {world} but {', '.join(missing)} is not set; start the processes with "
                        "torchrun (e.g. torchrun --nproc-per-node 2 -m seqlab ...)")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise UserError(f"local rank {local} has no GPU ({torch.cuda.device_count()} visible); start at most "
                            "one process per GPU")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
        atexit.register(_destroy)
    if rank != 0 and os.environ.get("SEQLAB_ALL_RANKS_PRINT") != "1":
        sys.stdout = open(os.devnull, "w")  # rank 0 speaks for the group
    return Dist(device, rank, world)

