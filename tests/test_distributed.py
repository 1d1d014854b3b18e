"""Data-parallel training with 2 CPU processes (gloo), as torchrun would start them.

The workers are started with torch.multiprocessing on 127.0.0.1 and a free port; each trains a tiny
model with the shared Trainer and writes its final weights, which the tests compare:
  * after training, the weights are identical on both ranks;
  * 2 ranks x batch B/2 give the weights of 1 process x batch B (float tolerance), for bucketed
    classification batches and for an LM's sharded streams with carried state;
  * a 2-process run killed after a checkpoint and resumed ends where an uninterrupted one does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from seqlab.data.batching import BucketBatcher
from seqlab.data.streams import StreamBatcher
from seqlab.models.classifier import ClassifierConfig, TextClassifier
from seqlab.models.encoder import EncoderConfig
from seqlab.models.language_model import LanguageModel, LMConfig
from seqlab.pipelines.lm import CarriedStateStep
from seqlab.train import TrainConfig, Trainer

B = 8  # the global batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _classify_data():
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(4, 30, (int(n),), generator=g) for n in torch.randint(2, 12, (48,), generator=g)]
    targets = torch.tensor([int(s.sum()) % 2 for s in seqs])
    return seqs, targets


def train_classifier(out, batch: int, epochs: int = 2) -> dict[str, torch.Tensor]:
    seqs, targets = _classify_data()
    torch.manual_seed(0)
    model = TextClassifier(ClassifierConfig(EncoderConfig(vocab_size=30, embed_dim=8, hidden=8), 2))
    batches = BucketBatcher(seqs, targets, batch, shuffle=True, seed=3)
    cfg = TrainConfig(epochs=epochs, batch_size=batch, lr=1e-2, device="cpu", log_every=2, save_every=0)

    def eval_fn(m):
        return {"accuracy": float((m(seqs[0][None]).argmax(-1) == targets[0]).float())}

    Trainer(model, cfg, out, lambda m, b: F.cross_entropy(m(b.ids, b.lengths), b.targets), eval_fn,
            metric="accuracy", mode="max", log=lambda s: None).fit(batches)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_lm(out, batch: int, kill_at: int = 0, resume: bool = False) -> dict[str, torch.Tensor]:
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
        return carried(m, b)

    step_fn.state_tensors, step_fn.load_state_tensors = carried.state_tensors, carried.load_state_tensors
    trainer = Trainer(model, cfg, out, step_fn, None, log=lambda s: None)
    trainer.fit(batches, resume=resume)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank: int, world: int, port: int, job: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if job == "equal":
        save_file(train_classifier(os.path.join(out, "cls"), B // world), os.path.join(out, f"cls{rank}.st"))
        save_file(train_lm(os.path.join(out, "lm"), B // world), os.path.join(out, f"lm{rank}.st"))
    else:  # "kill", "resume": the LM run killed at step 7, then resumed
        w = train_lm(os.path.join(out, "killed"), B // world, kill_at=7 if job == "kill" else 0,
                     resume=job == "resume")
        save_file(w, os.path.join(out, f"{job}{rank}.st"))


def _spawn(job: str, out, world: int = 2) -> None:
    mp.spawn(_worker, args=(world, _free_port(), job, str(out)), nprocs=world, join=True)


def _close(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=tol, rtol=tol), (k, (a[k] - b[k]).abs().max())


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """A 2-process run of the classifier and of the LM (uninterrupted), per-rank batch B/2."""
    out = tmp_path_factory.mktemp("ddp")
    _spawn("equal", out)
    return out


def test_two_ranks_match_each_other_and_one_process_with_the_global_batch(two_ranks, tmp_path):
    for name, single in (("cls", train_classifier(tmp_path / "cls1", B)), ("lm", train_lm(tmp_path / "lm1", B))):
        r0, r1 = load_file(str(two_ranks / f"{name}0.st")), load_file(str(two_ranks / f"{name}1.st"))
        for k in r0:
            assert torch.equal(r0[k], r1[k]), f"{name}: {k} differs between the ranks"
        _close(r0, single)
        assert not torch.equal(r0["encoder.rnns.0.weight_hh_l0"], single["encoder.rnns.0.weight_hh_l0"] * 0)
    # rank 0 alone wrote the run: checkpoints and metrics log (with the loss averaged over the ranks)
    assert (two_ranks / "cls" / "best" / "model.safetensors").is_file()
    assert (two_ranks / "cls" / "metrics.jsonl").read_text().count('"dev_accuracy"') == 2


def test_killed_two_process_run_resumes_to_the_same_weights(two_ranks, tmp_path):
    with pytest.raises(mp.ProcessExitedException):
        _spawn("kill", tmp_path)
    saved = load_file(str(tmp_path / "killed" / "last" / "state.safetensors"))
    assert saved["rng.torch"].shape[0] == 2 and saved["step.carried.0"].shape[0] == 2  # one row per rank
    _spawn("resume", tmp_path)
    for r in (0, 1):
        a, b = load_file(str(tmp_path / f"resume{r}.st")), load_file(str(two_ranks / f"lm{r}.st"))
        for k in a:
            assert torch.equal(a[k], b[k]), k


def test_resume_with_another_number_of_processes_is_a_user_error():
    from seqlab.errors import UserError
    from seqlab.train.distributed import Dist

    with pytest.raises(UserError, match="same number"):
        Dist(torch.device("cpu"), 0, 2).pick({}, 1)


def test_shards_cover_each_global_batch_once():
    seqs, targets = _classify_data()
    one = BucketBatcher(seqs, targets, 8, shuffle=True, seed=5)
    parts = []
    for r in range(2):
        b = BucketBatcher(seqs, targets, 4, shuffle=True, seed=5)
        b.shard(r, 2)
        assert len(b) == len(one)
        parts.append(b.batch_indices())
    for whole, p0, p1 in zip(one.batch_indices(), *parts):
        assert torch.equal(whole, torch.cat([p0, p1]))


@pytest.mark.slow
def test_torchrun_cli_trains_a_classifier(tmp_path):
    rows = "".join(f"{'good fine great' if i % 2 else 'bad awful poor'} {i},{'pos' if i % 2 else 'neg'}\n"
                   for i in range(64))
    (tmp_path / "t.csv").write_text("text,label\n" + rows)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
           str(_free_port()), "-m", "seqlab", "classify", "train", "--train", str(tmp_path / "t.csv"), "--out",
           str(tmp_path / "run"), "--epochs", "2", "--batch", "8", "--hidden", "16", "--embed", "8",
           "--threads", "1", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("best dev accuracy") == 1  # rank 0 speaks for the group
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
