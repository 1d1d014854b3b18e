"""The README's Tiny Shakespeare table and loss-versus-time plot for `seqlab lm train`.

    .venv/bin/python benchmarks/lm_table.py --run      # train the runs (about 55 min in a row), then report
    .venv/bin/python benchmarks/lm_table.py            # report on runs already in runs/shakespeare/

Each budget is its own run of the default command, nothing tuned but --time (the cosine schedule
ends with the budget, so a 5-minute run is not the first 5 minutes of a 30-minute one):

    seqlab lm train --data ../shared/data/char_lm/tinyshakespeare.txt --time MIN --out runs/shakespeare/NAME

plus the documented recipe (runs/shakespeare/recipe, see RECIPE below). Split: nanoGPT's, the first
90% of the file for training and the last 10% for validation (the default --valid-fraction 0.1).
The loss is in nats per character over the whole validation text, read as one sequence with the
state carried. The references were measured on the same 2-core machine by the project (raw PyTorch
1x512 LSTM with cosine LR; nanoGPT's CPU configurations) and are drawn as points.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqlab.pipelines import LM

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "char_lm" / "tinyshakespeare.txt"
RUNS = ROOT / "runs" / "shakespeare"
BUDGETS = {"t75s": 1.25, "t5m": 5, "t15m": 15, "t30m": 30}
RECIPE = dict(layers=2, hidden=512, dropout=0.4, seq_len=128, batch=64)
# the AWD-LSTM regularisers on top of each budget's default model (runs awd-t75s, awd-t5m, ...): DropConnect
# on the hidden-to-hidden weights, variational dropout, AR/TAR at the paper's values
AWD = dict(weight_drop=0.2, locked_dropout=True, ar=2.0, tar=1.0)
REFERENCES = {  # (seconds, nats/char) measured on this machine, from the issue
    "raw PyTorch LSTM 1x512, cosine": [(76, 1.714), (300, 1.520), (900, 1.442)],
    "nanoGPT 4x128 (CPU config)": [(76, 1.886)],
    "nanoGPT 6x192": [(960, 1.780)],
}


def train(name: str, minutes: float, extra: dict, threads: int) -> None:
    """`LM.fit` with the defaults (what `seqlab lm train --data DATA --time MIN` runs) plus `extra`."""
    settings = {"time": minutes, "threads": threads, **extra}
    print(f"$ LM.fit({DATA.name}, out=runs/shakespeare/{name}, " + ", ".join(f"{k}={v!r}" for k, v in settings.items())
          + ")", flush=True)
    LM.fit(DATA, out=RUNS / name, overwrite=True, **settings)


def curve(run: Path) -> list[tuple[float, float]]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [(r["time"], r["dev_loss"]) for r in rows if "dev_loss" in r]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="store_true", help="train the runs first (else report existing ones)")
    p.add_argument("--only", default="", help="comma-separated budgets to train with --run, e.g. t5m")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the default runs (default: 1)")
    p.add_argument("--recipe-threads", type=int, default=2, help="torch threads for the recipe (default: 2)")
    p.add_argument("--awd", action="store_true", help="with --run: also train awd-NAME, the budget's defaults "
                   "plus the AWD-LSTM regularisers (AWD)")
    p.add_argument("--plot", default=str(ROOT / "docs" / "img" / "lm_loss_vs_time.png"), help="PNG to write")
    a = p.parse_args(argv)
    if a.run:
        only = [x for x in a.only.split(",") if x]
        for name, minutes in BUDGETS.items():
            if not only or name in only:
                train(name, minutes, {}, a.threads)
                if a.awd:
                    train(f"awd-{name}", minutes, AWD, a.threads)
        if not only or "recipe" in only:
            train("recipe", 30, RECIPE, a.recipe_threads)
    rows = []
    for name in [*BUDGETS, "recipe", *(f"awd-{b}" for b in BUDGETS)]:
        res = RUNS / name / "results.json"
        if not res.exists():
            continue
        r = json.loads(res.read_text())
        cfg = json.loads((RUNS / name / "best" / "config.json").read_text())
        enc = cfg["model"]["encoder"]
        rows.append((name, r, f"{enc['layers']}x{enc['hidden']} {enc['cell']}", cfg["train"]["amp"]))
    print("| run | model | amp | training time | valid loss (nats/char) | bits/char |\n|---|---|---|---|---|---|")
    for name, r, model, amp in rows:
        print(f"| {name} | {model} | {amp} | {r['train_seconds'] / 60:.2f} min | {r['valid_loss']:.3f} | "
              f"{r['valid_bits_per_char']:.3f} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, *_ in rows:
        pts = curve(RUNS / name)
        ax.plot([t / 60 for t, _ in pts], [v for _, v in pts], marker=".", label=f"seqlab {name}")
    for label, pts in REFERENCES.items():
        ax.plot([t / 60 for t, _ in pts], [v for _, v in pts], "x--" if len(pts) > 1 else "x", ms=9, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training time (minutes, log scale)")
    ax.set_ylabel("validation loss (nats/char)")
    ax.set_ylim(1.3, 2.2)
    ax.set_title("Tiny Shakespeare, char level, this 2-core CPU")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.plot, dpi=110)
    print(f"plot: {a.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
