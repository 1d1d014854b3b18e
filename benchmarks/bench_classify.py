"""Training throughput: length bucketing + packing versus naive padding, on SST-2.

    .venv/bin/python benchmarks/bench_classify.py [--steps 60] [--batch 64]

Both modes train the same classifier (embedding 128, 1-layer LSTM 256) with forward, backward and
an AdamW step on the same number of SST-2 training examples:
  naive     random batches, every batch padded to the longest sentence in the whole set, and the
            padded batch run through the LSTM as is (padding reaches the cell);
  seqlab    batches of similar lengths (BucketBatcher), each padded only to its own longest,
            then packed so padded steps never reach the cell.
It prints examples per second for both and their ratio (seqlab / naive, higher is better), and
writes benchmarks/results/bench_classify.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from seqlab.data import BucketBatcher, Vocab, build_tokenizer, read_table
from seqlab.models import ClassifierConfig, EncoderConfig, TextClassifier

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sentiment" / "sst2" / "train.tsv"


def throughput(seqs, y, vocab, steps: int, batch: int, naive: bool) -> tuple[float, float]:
    """(examples/s, share of computed steps that are padding) over `steps` training batches."""
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=len(vocab), embed_dim=128, hidden=256, cell="lstm")
    model = TextClassifier(ClassifierConfig(enc, 2, "last"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    longest = max(len(s) for s in seqs)
    batches = BucketBatcher(seqs, y, batch, shuffle=True, seed=0, bucket=not naive,
                            pad_to=longest if naive else None)
    it = iter(batches)
    n = cells = real = 0
    for i in range(steps + 5):
        b = next(it)
        if i == 5:  # warm-up done
            t0 = time.perf_counter()
            n = cells = real = 0
        logits = model(b.ids, None if naive else b.lengths)
        loss = F.cross_entropy(logits, b.targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(b)
        cells += b.ids.numel()
        real += int(b.lengths.sum())
    return n / (time.perf_counter() - t0), 1 - real / cells


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SST2), help="SST-2 train.tsv (default: ../shared/data/...)")
    ap.add_argument("--steps", type=int, default=60, help="timed training steps per mode")
    ap.add_argument("--batch", type=int, default=64, help="examples per batch")
    a = ap.parse_args()
    if not Path(a.data).exists():
        print(f"skipped: {a.data} not found (place ../shared beside the project)")
        return 0
    table = read_table(a.data, ["sentence", "label"])
    tok = build_tokenizer("word")
    toks = [tok.tokenize(t) for t in table.column(0)]
    vocab = Vocab.build(toks)
    seqs = [torch.tensor(vocab.encode(t)) for t in toks]
    y = torch.tensor([int(v) for v in table.column(1)])
    naive, naive_pad = throughput(seqs, y, vocab, a.steps, a.batch, naive=True)
    ours, ours_pad = throughput(seqs, y, vocab, a.steps, a.batch, naive=False)
    ratio = ours / naive
    print(f"SST-2 train ({len(seqs):,} examples), LSTM 256, batch {a.batch}, {a.steps} steps, "
          f"{torch.get_num_threads()} threads")
    print(f"{'mode':<36}{'examples/s':>12}{'padding':>10}")
    print(f"{'naive: pad to longest, no packing':<36}{naive:>12.0f}{naive_pad:>10.0%}")
    print(f"{'seqlab: length buckets + packing':<36}{ours:>12.0f}{ours_pad:>10.0%}")
    print(f"ratio (seqlab / naive): {ratio:.1f}x")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_classify.json").write_text(json.dumps(
        {"benchmark": "classify_throughput", "compared": "bucketing+packing vs naive padding",
         "reference": "naive padding, same run", "naive_examples_per_s": naive,
         "seqlab_examples_per_s": ours, "ratio": ratio, "steps": a.steps, "batch": a.batch}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
