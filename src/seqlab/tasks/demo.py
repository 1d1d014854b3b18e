"""`seqlab demo`: the default job, on data seqlab writes itself (no downloads, no ../shared).

It shows why order matters: sentences like "the plot was dull but the acting was brilliant"
are classified by a BiLSTM and by a bag-of-embeddings baseline that sees the same words in
no order. Both go through the real `seqlab classify` commands.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from seqlab.data.synthetic import contrast_sentiment, write_csv

EXAMPLES = [
    "the plot was dull but the acting was brilliant",
    "the plot was brilliant but the acting was dull",
    "the ending was not bad",
    "although the cast was charming , the script was not clever",
]


def cmd_demo(a: argparse.Namespace) -> int:
    from seqlab.cli import main
    from seqlab.tasks.classify import ClassifyPipeline, _evaluate
    from seqlab.viz.curves import plot_curves

    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    data = out / "data"
    data.mkdir(parents=True)
    files = {}
    for name, n, seed, only in [("train", 4000, 1, False), ("dev", 500, 2, False), ("test", 1000, 3, False),
                                ("test_contrast", 1000, 4, True)]:
        files[name] = data / f"{name}.csv"
        write_csv(contrast_sentiment(n, seed, contrast_only=only), files[name])
    print(f"== wrote a generated sentiment task to {data}: train 4000, dev 500, test 1000 sentences\n")

    common = ["--train", str(files["train"]), "--dev", str(files["dev"]), "--embed", "32", "--hidden", "64",
              "--epochs", str(a.epochs), "--batch", "32", "--lr", "3e-3", "--patience", "0", "--seed", "1"]
    runs = {"BiLSTM": out / "bilstm", "bag of embeddings": out / "bow"}
    print("== training a BiLSTM classifier (reads the words in order)")
    main(["classify", "train", *common, "--cell", "lstm", "--bidirectional", "--out", str(runs["BiLSTM"])])
    print("\n== training the bag-of-embeddings baseline (the same words, no order)")
    main(["classify", "train", *common, "--cell", "none", "--pooling", "mean", "--out",
          str(runs["bag of embeddings"])])

    print("\n== test accuracy            all sentences   contrast sentences (order decides)")
    for name, run in runs.items():
        pipe = ClassifyPipeline.load(run)
        accs = []
        for split in ("test", "test_contrast"):
            rows = contrast_sentiment(1000, 3 if split == "test" else 4, contrast_only=split != "test")
            accs.append(_evaluate(pipe, [r[0] for r in rows], [r[1] for r in rows])["accuracy"])
        print(f"   {name:<22} {accs[0]:>13.1%}   {accs[1]:>13.1%}")

    print("\n== the BiLSTM on new sentences")
    main(["classify", "predict", "--model", str(runs["BiLSTM"]), *EXAMPLES])
    curves = plot_curves(list(runs.values()), out / "curves.png")
    print(f"\ntraining curves: {curves}")
    print(f"try: seqlab classify predict --model {runs['BiLSTM']} \"the music was not good but the cast was great\"")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train and compare two classifiers on generated data (about a minute)",
                       description=__doc__)
    p.add_argument("--out", default="runs/demo", help="where to write data and runs (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=8, help="training epochs (default: %(default)s)")
    p.set_defaults(func=cmd_demo)
