"""Seq2seq speed: seqlab's batched training and beam search versus the seeds' one-pair-at-a-time style.

    .venv/bin/python benchmarks/bench_seq2seq.py [--pairs 2000] [--ref-pairs 300] [--threads 1]

Data: English-French pairs filtered as in the PyTorch tutorial (both sides under 10 words, English
starting with "i am", "he is", ...), from ../shared/data (generated word pairs if it is absent).
Same sizes on both sides: embedding 256, GRU 256, additive (Bahdanau) attention, AdamW, teacher forcing.

Training, one epoch over the same pairs:
  seeds' style  one pair per optimizer step; the encoder reads one token per call and the decoder
                writes one token per call (a Python loop over steps, as in the tutorial's train())
  seqlab        batches of 64 pairs of similar length, packed encoder, all target steps in one call
The seeds' style is timed on the first --ref-pairs pairs (it is slow) and reported per pair;
the ratio is pairs per second, seqlab / seeds' style.

Decoding with beam 5: `beam_search` over batches of 128 sentences versus one sentence per call.
Writes benchmarks/results/bench_seq2seq.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.data import Vocab
from seqlab.data.pairs import TUTORIAL_PREFIXES, PairBatcher, filter_pairs, normalize, read_pairs_table
from seqlab.decode.seq2seq_search import beam_search, decode
from seqlab.models.encoder import EncoderConfig
from seqlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, decoder_inputs, seq2seq_loss

ROOT = Path(__file__).resolve().parents[1]
FRA = ROOT.parent / "shared" / "data" / "translation" / "eng_fra" / "fra.txt"


def load_pairs(n: int, seed: int = 0) -> tuple[list[list[str]], list[list[str]], str]:
    if FRA.exists():
        p = read_pairs_table(FRA, 0, 1)
        p = filter_pairs(p, 10, TUTORIAL_PREFIXES, count=lambda s: len(normalize(s, True, True, True).split()))
        src = [normalize(s, True, True, True).split() for s in p.src]
        tgt = [normalize(t, True, True, True).split() for t in p.tgt]
        what = f"eng-fra, tutorial filter ({len(src):,} pairs)"
    else:
        rng = random.Random(seed)
        words = [f"w{i}" for i in range(300)]
        src = [[rng.choice(words) for _ in range(rng.randint(3, 9))] for _ in range(n)]
        tgt = [[w.upper() for w in reversed(s)] for s in src]
        what = "generated pairs (../shared/data not found)"
    idx = random.Random(seed).sample(range(len(src)), min(n, len(src)))
    return [src[i] for i in idx], [tgt[i] for i in idx], what


class RefSeq2Seq(nn.Module):
    """The seeds' model: GRU encoder and a GRU decoder with Bahdanau attention, one token per call."""

    def __init__(self, src_vocab: int, tgt_vocab: int, embed: int, hidden: int):
        super().__init__()
        self.src_emb, self.tgt_emb = nn.Embedding(src_vocab, embed), nn.Embedding(tgt_vocab, embed)
        self.enc = nn.GRU(embed, hidden)
        self.dec = nn.GRU(embed + hidden, hidden)
        self.w_k, self.w_q = nn.Linear(hidden, hidden, bias=False), nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, 1)
        self.out = nn.Linear(hidden, tgt_vocab)

    def pair_loss(self, src: list[int], tgt: list[int], bos: int) -> torch.Tensor:
        h = torch.zeros(1, 1, self.enc.hidden_size)
        keys = []
        for tok in src:  # one encoder call per source token
            o, h = self.enc(self.src_emb(torch.tensor([[tok]])), h)
            keys.append(o[0, 0])
        keys = torch.stack(keys)  # (src, hidden)
        y, loss = bos, 0.0
        for tok in tgt:  # one decoder call per target token, gold token fed back
            a = torch.softmax(self.v(torch.tanh(self.w_k(keys) + self.w_q(h[0, 0]))).squeeze(-1), 0)
            ctx = a @ keys
            x = torch.cat([self.tgt_emb(torch.tensor([y]))[0], ctx])[None, None]
            o, h = self.dec(x, h)
            loss = loss + F.cross_entropy(self.out(o[0]), torch.tensor([tok]))
            y = tok
        return loss / len(tgt)


def ref_epoch(src_ids, tgt_ids, sv, tv, args) -> tuple[float, int]:
    torch.manual_seed(0)
    model = RefSeq2Seq(len(sv), len(tv), args.embed, args.hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for s, t in zip(src_ids, tgt_ids):
        loss = model.pair_loss(s, t, tv.bos_id)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return len(src_ids) / (time.perf_counter() - start), sum(p.numel() for p in model.parameters())


def seqlab_epoch(src_ids, tgt_ids, sv, tv, args) -> tuple[float, Seq2Seq]:
    torch.manual_seed(0)
    enc = EncoderConfig(vocab_size=len(sv), embed_dim=args.embed, hidden=args.hidden, cell="gru")
    model = Seq2Seq(Seq2SeqConfig(enc, len(tv), args.embed, args.hidden, 1, "gru", "additive"))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    batches = PairBatcher([torch.tensor(s) for s in src_ids], [torch.tensor(t) for t in tgt_ids], 64,
                          sv.pad_id, shuffle=True, seed=0)
    model.train()
    start = time.perf_counter()
    for epoch in range(args.epochs):
        batches.set_epoch(epoch)
        for b in batches:
            logits, _ = model(b.ids, b.lengths, decoder_inputs(b.targets, tv.bos_id, tv.pad_id))
            loss = seq2seq_loss(logits, b.targets)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    return args.epochs * len(src_ids) / (time.perf_counter() - start), model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=2000, help="training pairs for the seqlab epoch")
    ap.add_argument("--ref-pairs", type=int, default=300, help="of those, pairs timed in the seeds' style")
    ap.add_argument("--epochs", type=int, default=1, help="seqlab epochs (more make its beam outputs sensible)")
    ap.add_argument("--decode", type=int, default=300, help="sentences decoded batched (a third of them alone)")
    ap.add_argument("--embed", type=int, default=256, help="embedding size")
    ap.add_argument("--hidden", type=int, default=256, help="GRU size")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    src, tgt, what = load_pairs(a.pairs)
    sv, tv = Vocab.build(src), Vocab.build(tgt)
    src_ids = [sv.encode(s) for s in src]
    tgt_ids = [tv.encode(t) + [tv.eos_id] for t in tgt]
    print(f"data: {what}; {len(src):,} pairs used, vocab {len(sv):,} / {len(tv):,}; embed {a.embed}, GRU {a.hidden}, "
          f"additive attention; {torch.get_num_threads()} thread(s)")
    ref_ps, ref_params = ref_epoch(src_ids[: a.ref_pairs], tgt_ids[: a.ref_pairs], sv, tv, a)
    ours_ps, model = seqlab_epoch(src_ids, tgt_ids, sv, tv, a)
    n_params = sum(p.numel() for p in model.parameters())
    ratio = ours_ps / ref_ps
    print(f"{'training':<44}{'pairs/s':>10}{'epoch of ' + format(len(src), ','):>18}{'parameters':>13}")
    print(f"{'seeds style: 1 pair/step, 1 token/call':<44}{ref_ps:>10.1f}{len(src) / ref_ps:>17.1f}s{ref_params:>13,}")
    print(f"{'seqlab: batch 64, packed, steps in one call':<44}{ours_ps:>10.1f}{len(src) / ours_ps:>17.1f}s"
          f"{n_params:>13,}")
    print(f"training ratio (seqlab / seeds style): {ratio:.1f}x")
    model.eval()
    seqs = [torch.tensor(s) for s in src_ids[: a.decode]]
    start = time.perf_counter()
    decode(model, seqs, beam=5, max_len=20, batch_size=128)
    batched = len(seqs) / (time.perf_counter() - start)
    alone_n = max(1, len(seqs) // 3)
    start = time.perf_counter()
    with torch.no_grad():
        for s in seqs[:alone_n]:
            beam_search(model, s[None], torch.tensor([len(s)]), 5, 20)
    alone = alone_n / (time.perf_counter() - start)
    print(f"beam 5 decoding: batched {batched:.1f} sentences/s, one at a time {alone:.1f} sentences/s "
          f"({batched / alone:.1f}x)")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_seq2seq.json").write_text(json.dumps(
        {"benchmark": "seq2seq_training", "compared": "batched seq2seq epoch vs one pair at a time",
         "reference": "seeds' per-pair, per-token loop, same run", "ratio": ratio,
         "seqlab_pairs_per_s": ours_ps, "reference_pairs_per_s": ref_ps, "pairs": len(src),
         "reference_pairs": min(a.ref_pairs, len(src)), "parameters_seqlab": n_params,
         "parameters_reference": ref_params, "beam5_batched_sentences_per_s": batched,
         "beam5_alone_sentences_per_s": alone, "beam5_ratio": batched / alone, "threads": torch.get_num_threads()},
        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
