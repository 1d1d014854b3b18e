"""Inference speed of exported models: onnxruntime and TorchScript versus the eager PyTorch model.

    .venv/bin/python benchmarks/bench_export.py [--seconds 3]

Two workloads, one CPU thread each, the same inputs for every runtime:
  classify  a 1-layer LSTM 256 classifier (embedding 128, vocabulary 10,000) on batches of 64
            sentences with SST-2-like lengths (5..50 tokens, packed): sentences per second;
  lm        a 1-layer LSTM 512 character LM (vocabulary 65) generating one token at a time with the
            state carried (batch 1): steps per second, where per-call overhead dominates.
Weights are random (speed does not depend on them). The ratio is onnxruntime / eager on the
classifier (higher is better); writes benchmarks/results/bench_export.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from seqlab.export.export import export
from seqlab.export.runtime import load
from seqlab.models import ClassifierConfig, EncoderConfig, TextClassifier
from seqlab.models.language_model import LanguageModel, LMConfig
from seqlab.train import TrainConfig, save_checkpoint
from seqlab.train.checkpoint import task_meta

ROOT = Path(__file__).resolve().parents[1]


def rate(fn, items: int, seconds: float) -> float:
    """Items per second of repeated fn() calls over about `seconds` (after 3 warm-up calls)."""
    for _ in range(3):
        fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n * items / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per runtime and workload (default: 3)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="seqlab-bench-export-"))
    cls = TextClassifier(ClassifierConfig(EncoderConfig(vocab_size=10_000, embed_dim=128, hidden=256), 2)).eval()
    lm = LanguageModel(LMConfig(EncoderConfig(vocab_size=65, embed_dim=512, hidden=512))).eval()
    for name, task, model in (("cls", "classify", cls), ("lm", "lm", lm)):
        save_checkpoint(tmp / name, model, task_meta(task, model.cfg.to_json(), {}, TrainConfig(), {}))
        for suffix in (".onnx", ".pt"):
            export(tmp / name, tmp / f"{name}{suffix}")
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(5, 51, (64,), generator=g)
    ids = torch.randint(4, 10_000, (64, int(lengths.max())), generator=g)
    ids = ids.masked_fill(torch.arange(ids.shape[1])[None, :] >= lengths[:, None], 0)
    tok = torch.tensor([[7]])
    results: dict[str, dict[str, float]] = {"classify_sentences_per_s": {}, "lm_steps_per_s": {}}
    runtimes = {"eager": (cls, lm)}
    for suffix, name in ((".onnx", "onnxruntime"), (".pt", "torchscript")):
        runtimes[name] = (load(tmp / f"cls{suffix}", "classify")[2], load(tmp / f"lm{suffix}", "lm")[2])
    with torch.no_grad():
        for name, (c, m) in runtimes.items():
            state = m(tok)[1]
            results["classify_sentences_per_s"][name] = rate(lambda c=c: c(ids, lengths), 64, a.seconds)
            results["lm_steps_per_s"][name] = rate(lambda m=m, st=state: m(tok, st), 1, a.seconds)
            print(f"{name:12s} classify {results['classify_sentences_per_s'][name]:8.0f} sentences/s   "
                  f"LM step {results['lm_steps_per_s'][name]:8.0f} steps/s", flush=True)
    c, s = results["classify_sentences_per_s"], results["lm_steps_per_s"]
    ts, ort_step, ts_step = c["torchscript"] / c["eager"], s["onnxruntime"] / s["eager"], s["torchscript"] / s["eager"]
    out = {"benchmark": "export_inference", "compared": "onnxruntime vs eager PyTorch inference, LSTM classifier "
           "batch 64 (1 thread)", "ratio": c["onnxruntime"] / c["eager"],
           "reference": f"eager, same run; TorchScript {ts:.2f}x; LM one-token step onnxruntime {ort_step:.2f}x, "
                        f"TorchScript {ts_step:.2f}x",
           **results, "threads": 1, "torch": torch.__version__}
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "bench_export.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"onnxruntime / eager: classify {out['ratio']:.2f}x; {out['reference']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
