"""`seqlab demo`: the default job, on data that ships with every Python (no downloads, no ../shared).

    seqlab demo                  # a character-level LSTM language model, about two minutes
    seqlab demo --task order     # why word order matters: a BiLSTM vs a bag of embeddings (a minute)

The language-model demo trains a char LSTM with `seqlab.pipelines.LM.fit` (the recipe of
`seqlab lm train`) on the Python documentation that the standard library ships
(`pydoc_data/topics.py`, about 465,000 characters of English prose and code), then prints
samples at three temperatures and writes the loss curve. The order demo generates a sentiment
task where word order decides the label ("the plot was dull but the acting was brilliant") and
trains both classifiers with `seqlab classify train`.
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


def python_docs_text() -> str:
    """The standard library's pydoc topics (Python's language reference prose), as one text."""
    import pydoc_data.topics as topics

    return "\n".join(v.strip("\n") + "\n" for _, v in sorted(topics.topics.items()))


def demo_lm(a: argparse.Namespace, out: Path) -> int:
    from seqlab.pipelines import LM
    from seqlab.pipelines.lm import unigram_bits

    text = python_docs_text()
    data = out / "python_docs.txt"
    data.write_text(text)
    print(f"== wrote the standard library's pydoc topics to {data}: {len(text):,} characters of Python docs")
    run = out / "charlm"
    print(f"== training a character-level LSTM for {a.minutes:g} minutes with `LM.fit`'s defaults "
          "(those of `seqlab lm train`); the last 10% of the text is held out\n")
    pipe = LM.fit(data, time=a.minutes, seed=1, out=run)
    r = pipe.results
    print(f"best valid loss {r['valid_loss']:.4f} nats/token, perplexity {r['valid_perplexity']:.2f}, "
          f"{r['valid_bits_per_char']:.3f} bits/char (epoch {r['best_epoch']}), trained {r['train_seconds']:.0f}s; "
          f"model in {run / 'best'}")
    held_out = text[int(len(text) * 0.9):]
    m = pipe.evaluate(held_out, "the held-out text")
    base = unigram_bits(pipe.encode(held_out))
    print(f"\n== held-out text: {m['bits_per_char']:.3f} bits/char; a model that ignores context (unigram "
          f"frequencies) needs {base:.3f}")
    for temp in (0.5, 0.8, 1.0):
        print(f"\n== sample at temperature {temp} (prime: {a.prime!r})")
        print(pipe.generate(a.prime, length=a.length, temperature=temp, seed=1))
    print(f"\nloss curve: {run / 'loss.png'}")
    print(f"try: seqlab lm generate --model {run} --prime \"The \" --temperature 0.7 --top-p 0.9 --num 3")
    return 0


def demo_order(a: argparse.Namespace, out: Path) -> int:
    from seqlab.pipelines import Classifier
    from seqlab.viz.curves import plot_curves

    data = out / "data"
    data.mkdir(parents=True)
    files = {}
    for name, n, seed, only in [("train", 4000, 1, False), ("dev", 500, 2, False), ("test", 1000, 3, False),
                                ("test_contrast", 1000, 4, True)]:
        files[name] = data / f"{name}.csv"
        write_csv(contrast_sentiment(n, seed, contrast_only=only), files[name])
    print(f"== wrote a generated sentiment task to {data}: train 4000, dev 500, test 1000 sentences\n")

    common = dict(embed=32, hidden=64, epochs=a.epochs, batch=32, lr=3e-3, patience=0, seed=1)
    runs = {"BiLSTM": out / "bilstm", "bag of embeddings": out / "bow"}
    print("== training a BiLSTM classifier (reads the words in order)")
    pipes = {"BiLSTM": Classifier.fit(files["train"], files["dev"], out=runs["BiLSTM"], cell="lstm",
                                      bidirectional=True, bag="off", **common)}  # the recurrent model alone
    print("\n== training the bag-of-embeddings baseline (the same words, no order)")
    pipes["bag of embeddings"] = Classifier.fit(files["train"], files["dev"], out=runs["bag of embeddings"],
                                                cell="none", pooling="mean", **common)

    print("\n== test accuracy            all sentences   contrast sentences (order decides)")
    for name, pipe in pipes.items():
        accs = [pipe.evaluate(files[split])["accuracy"] for split in ("test", "test_contrast")]
        print(f"   {name:<22} {accs[0]:>13.1%}   {accs[1]:>13.1%}")

    print("\n== the BiLSTM on new sentences")
    probs = pipes["BiLSTM"].predict_proba(EXAMPLES)
    names = pipes["BiLSTM"].labels.itos
    for text, p in zip(EXAMPLES, probs):
        shown = "  ".join(f"{n} {x:.3f}" for n, x in zip(names, p))
        print(f"{names[int(p.argmax())]}\t({shown})\t{text}")
    curves = plot_curves(list(runs.values()), out / "curves.png")
    print(f"\ntraining curves: {curves}")
    print(f"try: seqlab classify predict --model {runs['BiLSTM']} \"the music was not good but the cast was great\"")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return demo_lm(a, out) if a.task == "lm" else demo_order(a, out)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the default job: a char LSTM on Python's own docs (about two minutes)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["lm", "order"], default="lm",
                   help="lm: character language model; order: BiLSTM vs bag of embeddings on generated "
                        "sentiment (default: %(default)s)")
    p.add_argument("--out", default="runs/demo", help="where to write data and runs (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=2.0, help="lm: training time in minutes (default: %(default)s)")
    p.add_argument("--prime", default="The ", help="lm: text the samples start from (default: %(default)r)")
    p.add_argument("--length", type=int, default=300, help="lm: characters per sample (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=8, help="order: training epochs (default: %(default)s)")
    p.set_defaults(func=cmd_demo)
