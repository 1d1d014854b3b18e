"""Data-parallel training (DistributedDataParallel, gloo on CPU) with 2 processes.

Two launchers, both on 127.0.0.1 with a free port:
  * torchrun as on two nodes (`--nnodes 2 --node-rank 0/1 --nproc-per-node 1 --rdzv-backend c10d`), two
    agents started as subprocesses, each running `tests/_ddp_jobs.py` (one rank per "node");
  * torch.multiprocessing with torchrun's environment variables set by hand (a kill inside a step).
The tests compare the weights each job writes:
  * after training, the weights are identical on both ranks, and the Trainer ran the step under DDP
    (find_unused_parameters only for the model with a parameter its step never uses);
  * 2 ranks x batch B/2 give the weights of 1 process x batch B (float tolerance), for bucketed
    classification batches and for an LM's sharded streams with carried state;
  * a 2-node run killed with SIGKILL (agents and workers) after a checkpoint and resumed with --resume,
    and a 2-process run that dies inside a step and is resumed, end bit-exactly where an uninterrupted run does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from _ddp_jobs import LM_STEPS, B, classify_data, train_classifier, train_lm
from safetensors.torch import load_file, save_file

from seqlab.data.batching import BucketBatcher

JOBS = Path(__file__).with_name("_ddp_jobs.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(job: str, out, *extra: str) -> list[subprocess.Popen]:
    """Start two torchrun agents, one per "node", each with one process, meeting at a c10d rendezvous."""
    port, env = _free_port(), {**os.environ, "OMP_NUM_THREADS": "1"}
    return [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(r),
                              "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                              f"127.0.0.1:{port}", "--rdzv-id", f"seqlab-test-{port}", "--max-restarts", "0",
                              str(JOBS), job, str(out), *extra],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)  # a session each: kill -9 takes an agent with its worker
            for r in (0, 1)]


def _finish(procs: list[subprocess.Popen], timeout: float = 240) -> list[str]:
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, o in zip(procs, outs):
        assert p.returncode == 0, o[-3000:]
    return outs


def _worker(rank: int, world: int, port: int, job: str, out: str) -> None:
    """A rank started by torch.multiprocessing: the LM killed inside step 7 ("kill"), or resumed ("resume")."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    w, _ = train_lm(os.path.join(out, "killed"), B // world, kill_at=7 if job == "kill" else 0, resume=job == "resume")
    save_file(w, os.path.join(out, f"{job}{rank}.st"))


def _spawn(job: str, out, world: int = 2) -> None:
    mp.spawn(_worker, args=(world, _free_port(), job, str(out)), nprocs=world, join=True)


def _close(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=tol, rtol=tol), (k, (a[k] - b[k]).abs().max())


def _both(out: Path, name: str) -> tuple[dict, dict]:
    """Rank 0's and rank 1's final weights of job `name`, checked equal (DDP keeps the ranks in step)."""
    r0, r1 = load_file(str(out / f"{name}0.st")), load_file(str(out / f"{name}1.st"))
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"{name}: {k} differs between the ranks"
    return r0, r1


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """A run on "two nodes" (torchrun, 1 process each) of the classifier and of the LM, per-rank batch B/2."""
    out = tmp_path_factory.mktemp("ddp")
    _finish(_two_nodes("equal", out))
    return out


def test_two_nodes_match_each_other_and_one_process_with_the_global_batch(two_nodes, tmp_path):
    for name, (single, _) in (("cls", train_classifier(tmp_path / "cls1", B)), ("lm", train_lm(tmp_path / "lm1", B)),
                              ("spare", train_classifier(None, B, unused=True))):
        r0, _ = _both(two_nodes, name)
        _close(r0, single)
        assert not torch.equal(r0["encoder.rnns.0.weight_hh_l0"], single["encoder.rnns.0.weight_hh_l0"] * 0)
        info = [json.loads((two_nodes / f"{name}{r}.json").read_text()) for r in (0, 1)]
        assert sorted(i["rank"] for i in info) == [0, 1] and {i["world"] for i in info} == {2}
        # the step ran as DDP's forward; the graph walk for unused parameters stayed only where one is unused
        assert {(i["wrapper"], i["ddp"], i["find_unused"]) for i in info} == \
            {("DDPStep", "DistributedDataParallel", name == "spare")}
    spare, _ = _both(two_nodes, "spare")
    assert torch.equal(spare["spare.weight"], train_classifier(None, B, unused=True)[0]["spare.weight"])
    # rank 0 alone wrote the run: the model's own names (no DDP "module." prefix), metrics log
    saved = load_file(str(two_nodes / "cls" / "best" / "model.safetensors"))
    assert saved.keys() == load_file(str(two_nodes / "cls0.st")).keys()
    assert (two_nodes / "cls" / "metrics.jsonl").read_text().count('"dev_accuracy"') == 2
    assert (two_nodes / "lm" / "last" / "trainer.json").is_file()


def _step_of(run: Path) -> int:
    try:
        return json.loads((run / "last" / "trainer.json").read_text())["step"]
    except (OSError, ValueError, KeyError):  # not written yet, or being replaced
        return 0


def test_two_nodes_killed_with_sigkill_resume_bit_exactly(two_nodes, tmp_path):
    procs = _two_nodes("lm", tmp_path, "--slow", "0.05")
    deadline = time.time() + 180
    while _step_of(tmp_path / "killed") < 3 and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.02)
    # kill -9 both nodes, workers and agents, wherever they are (a step, a checkpoint write)
    for r in (0, 1):
        os.kill(int((tmp_path / f"pid{r}").read_text()), signal.SIGKILL)
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == -signal.SIGKILL
    assert 3 <= _step_of(tmp_path / "killed") < LM_STEPS  # killed mid-run, after a checkpoint
    saved = load_file(str(tmp_path / "killed" / "last" / "state.safetensors"))
    assert saved["rng.torch"].shape[0] == 2 and saved["step.carried.0"].shape[0] == 2  # one row per rank
    _spawn("resume", tmp_path)  # 2 processes without torchrun's agents (quicker): last/ is not tied to a launcher
    for r in (0, 1):
        a, b = load_file(str(tmp_path / f"resume{r}.st")), load_file(str(two_nodes / f"lm{r}.st"))
        for k in a:
            assert torch.equal(a[k], b[k]), k


@pytest.mark.slow  # ~20 s; the SIGKILL test above covers resuming under DDP in the default run
def test_two_process_run_killed_inside_a_step_resumes_to_the_same_weights(two_nodes, tmp_path):
    with pytest.raises(mp.ProcessExitedException):
        _spawn("kill", tmp_path)
    assert _step_of(tmp_path / "killed") == 6
    _spawn("resume", tmp_path)
    for r in (0, 1):
        a, b = load_file(str(tmp_path / f"resume{r}.st")), load_file(str(two_nodes / f"lm{r}.st"))
        for k in a:
            assert torch.equal(a[k], b[k]), k


def test_resume_with_another_number_of_processes_is_a_user_error():
    from seqlab.errors import UserError
    from seqlab.train.distributed import Dist

    with pytest.raises(UserError, match="same number"):
        Dist(torch.device("cpu"), 0, 2).pick({}, 1)


def test_shards_cover_each_global_batch_once():
    seqs, targets = classify_data()
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


def _task_data(task: str, d: Path) -> list[str]:
    """A tiny data set for `task` in `d` and the `seqlab <task> train` flags that train on it."""
    if task == "tag":  # CRF and a character LSTM: the tagger's loss under DDP
        sents = [("the dog runs".split(), "DET NOUN VERB".split()), ("a cat sleeps".split(), "DET NOUN VERB".split())]
        (d / "t.conll").write_text("".join("".join(f"{w} {t}\n" for w, t in zip(*s)) + "\n" for s in sents * 16))
        return ["--train", str(d / "t.conll"), "--hidden", "8", "--embed", "8", "--epochs", "2", "--batch", "4"]
    if task == "translate":  # encoder-decoder with attention and teacher forcing
        pairs = [("i am cold .", "j'ai froid ."), ("you are tall .", "tu es grand ."), ("he is cold .", "il a froid .")]
        (d / "p.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs * 12))
        return ["--data", str(d / "p.tsv"), "--embed", "8", "--hidden", "8", "--epochs", "2", "--batch", "4"]
    if task == "forecast":  # windows of a series, the forecaster's own loss
        (d / "s.csv").write_text("y\n" + "".join(f"{10 + (i % 12) / 3:.4f}\n" for i in range(120)))
        return ["--data", str(d / "s.csv"), "--no-time", "--target", "y", "--test", "12", "--horizon", "3",
                "--lookback", "12", "--hidden", "8", "--epochs", "2", "--batch", "4"]
    (d / "t.txt").write_text("to be or not to be, that is the question. " * 40)  # lm: carried state
    return ["--data", str(d / "t.txt"), "--hidden", "16", "--layers", "1", "--epochs", "1", "--batch", "4",
            "--seq-len", "20"]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["tag", "translate", "forecast", "lm"])
def test_torchrun_cli_trains_every_kind_of_step_under_ddp(task, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
           "-m", "seqlab", task, "train", *_task_data(task, tmp_path), "--out", str(tmp_path / "run"),
           "--save-every", "0", "--threads", "1", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    trainer = json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())
    assert trainer["world_size"] == 2 and trainer["step"] > 0
    assert not [k for k in load_file(str(tmp_path / "run" / "best" / "model.safetensors")) if k.startswith("module.")]
