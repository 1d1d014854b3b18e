"""Language-model speed: seqlab's training loop against a raw PyTorch loop, and generation.

    .venv/bin/python benchmarks/bench_lm.py [--steps 60] [--hidden 512] [--threads 2]

1. Training throughput (characters/s) on Tiny Shakespeare (or, without ../shared, Python's own
   `pydoc_data/topics.py`): the same char LSTM (1 layer, tied embedding), the same batch of
   contiguous streams, truncated BPTT with the state carried and detached, AdamW and clipping,
     raw      a hand-written loop: nn.Embedding + nn.LSTM + nn.Linear, nothing else;
     seqlab   what `seqlab lm train` runs: StreamBatcher + LanguageModel + the shared Trainer
              (schedule, logging, NaN guard, progress bar; no evaluation).
   The ratio seqlab / raw says what the toolkit's conveniences cost (goal: >= 0.9). Where the CPU
   runs bfloat16 natively, seqlab with `--amp bf16` is timed too.
2. Generation (tokens/s), 400 new tokens for each of 32 samples:
     batched      `generate(..., num=32)`: the 32 samples advance together, one cell step each;
     one by one   32 calls of `generate(..., num=1)`;
     re-run       one sample that re-reads its whole prefix at every step (what incremental
                  decoding avoids), timed on 200 tokens and reported per token.
Writes benchmarks/results/bench_lm.json (ratio = training seqlab / raw).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from seqlab.data import Vocab, build_tokenizer
from seqlab.data.streams import StreamBatcher
from seqlab.decode.sampling import generate
from seqlab.models import EncoderConfig
from seqlab.models.language_model import LanguageModel, LMConfig
from seqlab.pipelines.lm import CarriedStateStep
from seqlab.train import TrainConfig, Trainer
from seqlab.train.trainer import bf16_native

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "char_lm" / "tinyshakespeare.txt"


def corpus() -> tuple[str, str]:
    if SHAKESPEARE.exists():
        return SHAKESPEARE.read_text(), "Tiny Shakespeare"
    import pydoc_data.topics as topics

    return "".join(topics.topics.values()), "pydoc_data/topics.py"


def raw_loop(ids, vocab_size, hidden, batch, seq_len, steps) -> float:
    """chars/s of a plain PyTorch truncated-BPTT loop."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(vocab_size, hidden)
    lstm = torch.nn.LSTM(hidden, hidden, batch_first=True)
    head = torch.nn.Linear(hidden, vocab_size)
    head.weight = emb.weight
    params = list(emb.parameters()) + list(lstm.parameters()) + [head.bias]
    opt = torch.optim.AdamW(params, lr=2e-3)
    n = (len(ids) - 1) // batch
    x_all, y_all = ids[: n * batch].view(batch, n), ids[1 : n * batch + 1].view(batch, n)
    state = None
    t0 = None
    for s in range(steps + 2):
        if s == 2:  # two warm-up steps
            t0 = time.perf_counter()
        x, y = x_all[:, s * seq_len : (s + 1) * seq_len], y_all[:, s * seq_len : (s + 1) * seq_len]
        out, state = lstm(emb(x), state)
        state = tuple(h.detach() for h in state)
        loss = F.cross_entropy(head(out).reshape(-1, vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return steps * batch * seq_len / (time.perf_counter() - t0)


def seqlab_loop(ids, vocab_size, hidden, batch, seq_len, steps, amp="none") -> float:
    """chars/s of the shared Trainer on the LM's StreamBatcher and step function."""
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(EncoderConfig(vocab_size=vocab_size, embed_dim=hidden, hidden=hidden)))
    used = ids[: batch * seq_len * (steps + 2) + 1]
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=2e-3, save_every=0, schedule="cosine", device="cpu",
                      log_every=20, amp=amp)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(model, cfg, tmp, CarriedStateStep(), None, log=lambda s: None)
        st = tr.fit(StreamBatcher(used, batch, seq_len))
    return st["step"] * batch * seq_len / st["elapsed"]


def generation(model, vocab_size, num=32, length=400) -> dict:
    model.eval()
    g = torch.Generator().manual_seed(0)
    prime = [5, 6, 7]
    t = time.perf_counter()
    generate(model, prime, length, num=num, generator=g)
    batched = num * length / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(num):
        generate(model, prime, length, num=1, generator=g)
    single = num * length / (time.perf_counter() - t)
    n_rerun = 200
    with torch.no_grad():
        seq = list(prime)
        t = time.perf_counter()
        for _ in range(n_rerun):
            logits, _ = model(torch.tensor([seq]))
            seq.append(int(torch.multinomial(logits[0, -1].softmax(-1), 1, generator=g)))
        rerun = n_rerun / (time.perf_counter() - t)
    return {"batched_tokens_per_s": batched, "one_by_one_tokens_per_s": single, "rerun_prefix_tokens_per_s": rerun}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=60, help="timed training steps per loop (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=512, help="LSTM hidden size (default: %(default)s)")
    p.add_argument("--batch", type=int, default=64, help="streams per batch (default: %(default)s)")
    p.add_argument("--seq-len", type=int, default=128, help="BPTT length (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    text, name = corpus()
    tok = build_tokenizer("char", [text])
    vocab = Vocab.build([tok.tokenize(text)])
    ids = torch.tensor(vocab.encode(tok.tokenize(text)))
    need = a.batch * a.seq_len * (a.steps + 3)
    if len(ids) < need:
        ids = ids.repeat(need // len(ids) + 1)
    args = (ids, len(vocab), a.hidden, a.batch, a.seq_len, a.steps)
    raw = raw_loop(*args)
    ours = seqlab_loop(*args)
    raw2 = raw_loop(*args)  # measured twice, around seqlab, to even out drift on a shared machine
    raw = (raw + raw2) / 2
    bf16 = seqlab_loop(*args, amp="bf16") if bf16_native(torch.device("cpu")) else None
    print(f"{name}, char LSTM 1x{a.hidden}, batch {a.batch} x seq-len {a.seq_len}, {a.steps} steps, "
          f"{a.threads} threads")
    print(f"  training   raw PyTorch loop {raw:9,.0f} chars/s   seqlab Trainer {ours:9,.0f} chars/s   "
          f"ratio {ours / raw:.2f}")
    if bf16:
        print(f"  training   seqlab --amp bf16 {bf16:9,.0f} chars/s   (x{bf16 / ours:.2f} of fp32)")
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(EncoderConfig(vocab_size=len(vocab), embed_dim=a.hidden, hidden=a.hidden)))
    gen = generation(model, len(vocab))
    print(f"  generation batched (32 samples) {gen['batched_tokens_per_s']:9,.0f} tokens/s   one by one "
          f"{gen['one_by_one_tokens_per_s']:7,.0f} tokens/s   ratio "
          f"{gen['batched_tokens_per_s'] / gen['one_by_one_tokens_per_s']:.1f}")
    print(f"  generation incremental (1 sample) {gen['one_by_one_tokens_per_s']:7,.0f} tokens/s   re-running the "
          f"prefix {gen['rerun_prefix_tokens_per_s']:7,.0f} tokens/s (200 tokens)")
    res = {"compared": f"LM training chars/s, seqlab Trainer vs raw PyTorch loop (1x{a.hidden} LSTM)",
           "reference": f"raw loop {raw:,.0f} chars/s; generation batched/one-by-one "
                        f"{gen['batched_tokens_per_s'] / gen['one_by_one_tokens_per_s']:.1f}x",
           "ratio": ours / raw, "raw_chars_per_s": raw, "seqlab_chars_per_s": ours, "corpus": name,
           "threads": a.threads, "seqlab_bf16_chars_per_s": bf16, **gen}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_lm.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
