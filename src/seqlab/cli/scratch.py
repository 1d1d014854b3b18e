"""`seqlab scratch ...`: the from-scratch NumPy networks and the gradient experiments.

    seqlab scratch forward --cell rnn --explain "I love NLP"
    seqlab scratch gradcheck --cell lstm
    seqlab scratch train --cell gru --data input.txt --hidden 128 --seq-len 50 --batch 32
    seqlab scratch vanishing --cells rnn,lstm,gru --length 100
    seqlab scratch memory --task adding --cells rnn,lstm --lengths 10,20,50,100
"""

from __future__ import annotations

import argparse

import numpy as np

from seqlab.cli.common import num_arg, out_dir_arg
from seqlab.errors import UserError
from seqlab.scratch import CELL_NAMES, make_cell


def _cells(text: str) -> list[str]:
    cells = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELL_NAMES]
    if bad or not cells:
        raise UserError(f"unknown cell {bad[0] if bad else text!r}; choose from {', '.join(CELL_NAMES)}")
    return cells


def _ints(text: str, flag: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{flag} takes comma-separated whole numbers, e.g. 10,20,50") from None
    if not out or min(out) < 1:
        raise UserError(f"{flag} takes comma-separated positive numbers, e.g. 10,20,50")
    return out


def cmd_gradcheck(a: argparse.Namespace) -> int:
    from seqlab.scratch import gradcheck

    print(f"gradient check of a {a.layers}-layer {a.cell} (input {a.input}, hidden {a.hidden}), "
          f"batch {a.batch}, time {a.time}, float64 analytic vs central differences")
    worst = 0.0
    for seed in range(a.seeds):
        layer = make_cell(a.cell, a.input, a.hidden, a.layers, seed)
        errs = gradcheck(layer, a.batch, a.time, seed)
        if seed == 0:
            print(f"{'parameter':<16}{'shape':<14}{'max rel. error':>16}")
        for name, err in errs.items():
            worst = max(worst, err)
            if seed == 0:
                shape = layer.params[name].shape if name in layer.params else "input/state"
                print(f"{name:<16}{str(shape):<14}{err:>16.2e}")
    ok = worst < 1e-6
    print(f"worst over {a.seeds} seed(s): {worst:.2e}  ->  {'PASS' if ok else 'FAIL'} (threshold 1e-6)")
    return 0 if ok else 1


def cmd_forward(a: argparse.Namespace) -> int:
    from seqlab.scratch.explain import explain_forward

    if a.cell == "rnn_relu":
        raise UserError("--explain shows rnn, lstm or gru")
    if not a.explain.split():
        raise UserError("--explain needs a sentence with at least one word")
    print(explain_forward(a.cell, a.explain, a.hidden, a.seed))
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from seqlab.data.readers import read_text
    from seqlab.scratch.charlm import sample, train_char_lm

    text = read_text(a.data, a.encoding)
    if len(text) < 2 * a.seq_len * a.batch:
        raise UserError(f"{a.data} has {len(text):,} characters, too few for --batch {a.batch} streams of "
                        f"--seq-len {a.seq_len}; give a longer text or lower those")
    if a.cell == "rnn_relu":
        raise UserError("the scratch trainer takes --cell rnn, lstm or gru")
    res = train_char_lm(text, cell=a.cell, hidden=a.hidden, layers=a.layers, seq_len=a.seq_len, batch=a.batch,
                        steps=a.steps, lr=a.lr, optimizer=a.optimizer, clip=a.clip or None, seed=a.seed,
                        sample_every=a.sample_every, sample_len=a.sample_len, temperature=a.temperature,
                        time_budget=a.time * 60 or None, prime=a.prime)
    rng = np.random.default_rng(a.seed)
    prime = a.prime or text[0]
    print(f"\nfinal sample (prime {prime!r}, temperature {a.temperature}):")
    print(prime + sample(res["model"], prime, a.sample_len, a.temperature, rng))
    print(f"\nvalidation {res['valid_bits']:.3f} bits/char vs unigram entropy {res['unigram_bits']:.3f} "
          f"bits/char; {res['steps']} steps in {res['train_seconds']:.0f}s ({res['chars_per_s']:,.0f} chars/s)")
    return 0


def cmd_vanishing(a: argparse.Namespace) -> int:
    from pathlib import Path

    from seqlab.scratch.vanishing import format_table, gradient_vs_distance, plot_gradient_vs_distance

    cells = _cells(a.cells)
    try:
        radii = tuple(float(r) for r in a.radii.split(","))
    except ValueError:
        raise UserError("--radii takes comma-separated numbers, e.g. 0.5,1.0,1.5") from None
    if not all(0 < r < float("inf") for r in radii):
        raise UserError(f"--radii takes positive finite numbers, e.g. 0.5,1.0,1.5, not {a.radii}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"||dL/dh_t|| for a loss at the last step, against distance T - t (length {a.length}, hidden {a.hidden});")
    print("rho = spectral radius of W_hh (each gate block for LSTM/GRU)\n")
    res = gradient_vs_distance(cells, a.length, a.hidden, radii, seed=a.seed)
    print(format_table(res))
    clipped = gradient_vs_distance(cells, a.length, a.hidden, radii, seed=a.seed, clip=a.clip)
    print(f"\nwith per-step gradient clipping at norm {a.clip} (caps explosion, cannot undo vanishing):\n")
    print(format_table(clipped))
    p1 = plot_gradient_vs_distance(res, out / "vanishing.png")
    p2 = plot_gradient_vs_distance(clipped, out / "vanishing_clipped.png")
    print(f"\nwrote {p1} and {p2}")
    return 0


def cmd_memory(a: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from seqlab.pipelines.memory import format_table, run_memory
    from seqlab.viz.memory_plot import plot_memory

    cells = _cells(a.cells)
    lengths = _ints(a.lengths, "--lengths")
    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_memory(a.task, cells, lengths, a.hidden, a.steps, a.batch, a.lr, a.seed, a.time * 60,
                      out=out / "memory")
    print(format_table(rows))
    print(f"wrote {plot_memory(rows, out / f'memory_{a.task}.png')}")
    return 0


# numeric flag types with their range, checked while parsing: a bad value is a one-line error naming the flag
COUNT = num_arg(int, 1)  # sizes, lengths, steps
NATURAL = num_arg(int, 0)  # seeds; 0 = never
NONNEGATIVE = num_arg(float, 0.0)  # 0 = no limit / no clipping
POSITIVE = num_arg(float, 0.0, lo_open=True)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scratch", help="RNN, LSTM and GRU from scratch in NumPy, and the gradient experiments",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_subparsers(dest="action", required=True, metavar="{forward,gradcheck,train,vanishing,memory}")

    g = s.add_parser("gradcheck", help="hand-written backward vs finite differences, per parameter")
    g.add_argument("--cell", choices=CELL_NAMES, default="lstm", help="cell to check (default: %(default)s)")
    g.add_argument("--layers", type=COUNT, default=2, help="stacked layers (default: %(default)s)")
    g.add_argument("--input", type=COUNT, default=3, help="input size (default: %(default)s)")
    g.add_argument("--hidden", type=COUNT, default=4, help="hidden size (default: %(default)s)")
    g.add_argument("--batch", type=COUNT, default=2, help="batch size (default: %(default)s)")
    g.add_argument("--time", type=COUNT, default=5, help="sequence length (default: %(default)s)")
    g.add_argument("--seeds", type=COUNT, default=3, help="random layers checked (default: %(default)s)")
    g.set_defaults(func=cmd_gradcheck)

    f = s.add_parser("forward", help="one forward pass, printed step by step with shapes")
    f.add_argument("--cell", choices=CELL_NAMES, default="rnn", help="cell (default: %(default)s)")
    f.add_argument("--explain", default="I love NLP", metavar="SENTENCE",
                   help="the sentence to unroll, one 2-d word vector per word (default: %(default)r)")
    f.add_argument("--hidden", type=COUNT, default=3, help="hidden size (default: %(default)s)")
    f.add_argument("--seed", type=NATURAL, default=0, help="seed of the random weights (default: %(default)s)")
    f.set_defaults(func=cmd_forward)

    t = s.add_parser("train", help="a character language model trained from scratch (NumPy BPTT)")
    t.add_argument("--data", required=True, help="a plain-text file to learn from")
    t.add_argument("--encoding", default="utf-8", help="text encoding of --data (default: %(default)s)")
    t.add_argument("--cell", choices=CELL_NAMES, default="lstm", help="cell (default: %(default)s)")
    t.add_argument("--hidden", type=COUNT, default=128, help="hidden size (default: %(default)s)")
    t.add_argument("--layers", type=COUNT, default=1, help="stacked layers (default: %(default)s)")
    t.add_argument("--seq-len", type=COUNT, default=50,
                   help="truncated-BPTT window in characters (default: %(default)s)")
    t.add_argument("--batch", type=COUNT, default=32, help="parallel streams of the text (default: %(default)s)")
    t.add_argument("--steps", type=COUNT, default=2000, help="optimizer steps (default: %(default)s)")
    t.add_argument("--time", type=NONNEGATIVE, default=0.0, help="stop after this many minutes; 0 = no limit")
    t.add_argument("--lr", type=POSITIVE, default=2e-3, help="learning rate (default: %(default)s)")
    t.add_argument("--optimizer", choices=["adam", "adagrad"], default="adam", help="optimizer (default: %(default)s)")
    t.add_argument("--clip", type=NONNEGATIVE, default=5.0,
                   help="global gradient-norm clip; 0 = none (default: %(default)s)")
    t.add_argument("--sample-every", type=NATURAL, default=500,
                   help="print a sample every N steps; 0 = never (default: %(default)s)")
    t.add_argument("--sample-len", type=COUNT, default=200, help="characters per sample (default: %(default)s)")
    t.add_argument("--temperature", type=POSITIVE, default=0.8, help="sampling temperature (default: %(default)s)")
    t.add_argument("--prime", default=None, help="text that starts every sample (default: the text's first char)")
    t.add_argument("--seed", type=NATURAL, default=0, help="random seed (default: %(default)s)")
    t.set_defaults(func=cmd_train)

    v = s.add_parser("vanishing", help="gradient norm against distance, for several spectral radii (table + PNG)")
    v.add_argument("--cells", default="rnn,rnn_relu,lstm,gru", help="comma-separated cells (default: %(default)s)")
    v.add_argument("--length", type=num_arg(int, 2), default=100, help="sequence length (default: %(default)s)")
    v.add_argument("--hidden", type=COUNT, default=32, help="hidden size (default: %(default)s)")
    v.add_argument("--radii", default="0.5,0.9,1.0,1.1,1.5", help="spectral radii of W_hh (default: %(default)s)")
    v.add_argument("--clip", type=POSITIVE, default=1.0, help="per-step clipping norm for the second table "
                   "(default: %(default)s)")
    v.add_argument("--seed", type=NATURAL, default=0, help="random seed (default: %(default)s)")
    v.add_argument("--out", default="runs/scratch", type=out_dir_arg, help="folder for the PNGs (default: %(default)s)")
    v.set_defaults(func=cmd_vanishing)

    m = s.add_parser("memory", help="adding / copy task at several lengths: who remembers long enough")
    m.add_argument("--task", choices=["adding", "copy"], default="adding", help="task (default: %(default)s)")
    m.add_argument("--cells", default="rnn,lstm", help="comma-separated cells (default: %(default)s)")
    m.add_argument("--lengths", default="10,20,50,100", help="sequence lengths (default: %(default)s)")
    m.add_argument("--hidden", type=int, default=64, help="hidden size (default: %(default)s)")
    m.add_argument("--steps", type=int, default=5000, help="max training steps per run (default: %(default)s)")
    m.add_argument("--batch", type=int, default=64, help="batch size (default: %(default)s)")
    m.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default: %(default)s)")
    m.add_argument("--time", type=float, default=1.5, help="max minutes per (cell, length) run (default: %(default)s)")
    m.add_argument("--threads", type=int, default=1, help="torch CPU threads; 0 = default (default: %(default)s)")
    m.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    m.add_argument("--out", default="runs/scratch", help="folder for the PNG (default: %(default)s)")
    m.set_defaults(func=cmd_memory)



