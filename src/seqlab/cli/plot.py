"""`seqlab plot ...`: the web app's views as PNG files.

    seqlab plot hidden --model runs/sst2 "not good at all" --out hidden.png     # or --model toy:lstm
    seqlab plot attention --model runs/en-fr "i am cold ." --out att.png
    seqlab plot curves runs/sst2 runs/sst2-gru --out curves.png              # + per-layer gradient norms
    seqlab plot backward --model runs/sst2 "not good at all" --target negative --out backward.png
    seqlab plot saliency --model runs/sst2 "not good at all" --target negative --out saliency.png
    seqlab plot speech --model runs/speech/fsdd-ctc --wav 7_jackson_0.wav --out seven.png
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from seqlab.errors import UserError

MAX_STEPS, MAX_STEPS_LIMIT = 400, 1000  # steps `plot hidden` draws by default, and at most


def first_steps(text: str, count: Callable[[str], int], n: int) -> tuple[str, int]:
    """(the longest prefix of `text` that unrolls into at most `n` steps, the steps of the whole text).

    `count(text)` is the number of steps (a pipeline's `count_steps`, from its tokenizer); the prefix
    ends at a word end, or inside the first word when that alone is longer than `n` steps."""
    total = count(text)
    if total <= n:
        return text, total
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    if count(text[: ends[0]]) > n:  # one long word (a character-level model): cut inside it
        ends = list(range(1, ends[0] + 1))
    lo, hi = 0, len(ends) - 1  # the largest k with count(text[:ends[k]]) <= n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[: ends[mid]]) <= n:
            lo = mid
        else:
            hi = mid - 1
    return text[: ends[lo]], total


def _shorten(text: str, chars: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[: chars - 1] + "…"


def cmd_hidden(a: argparse.Namespace) -> int:
    from seqlab.viz.hidden import plot_hidden
    from seqlab.viz.model_trace import TOY_CELLS, load_model, toy_trace, trace

    if not a.text.strip():
        raise UserError("give a non-empty text to unroll")
    if not 1 <= a.max_steps <= MAX_STEPS_LIMIT:
        raise UserError(f"--max-steps must be between 1 and {MAX_STEPS_LIMIT}, got {a.max_steps}")
    if a.model.startswith("toy:"):
        if a.model[4:] not in TOY_CELLS:
            raise UserError(f"unknown toy cell {a.model!r}; choose toy:{', toy:'.join(TOY_CELLS)}")
        text, total = first_steps(a.text, lambda t: len(t.split()), a.max_steps)
        tr = toy_trace(a.model[4:], text, a.hidden, a.seed)
    else:
        task, pipe = load_model(a.model)
        text, total = first_steps(a.text, pipe.count_steps, a.max_steps)
        tr = trace(pipe, text, top_k=5)
    title = f"{a.model}: {_shorten(text)!r}"
    if len(text) < len(a.text):
        cut = f"the first {len(tr.tokens):,} of {total:,} steps"
        title += f"  ({cut}; --max-steps {a.max_steps})"
        print(f"seqlab: warning: the text unrolls into {total:,} steps; drawing {cut} (--max-steps, at most "
              f"{MAX_STEPS_LIMIT})", file=sys.stderr)
    plot_hidden(tr, a.out, title, gates=a.gates)
    print(f"wrote {a.out} ({len(tr.tokens)} steps, {len(tr.unrolled.layers)} layer(s) of {tr.unrolled.cell} "
          f"{tr.unrolled.hidden})")
    return 0


def cmd_attention(a: argparse.Namespace) -> int:
    from seqlab.viz.attention import plot_attention
    from seqlab.viz.model_trace import load_model

    task, pipe = load_model(a.model)
    if task not in ("translate", "qa"):
        raise UserError(f"{a.model} is a '{task}' model; attention belongs to translate and qa (seq2seq) models")
    inner = pipe.generator
    if inner is None or inner.model.attention is None:
        raise UserError(f"{a.model} has no attention (trained with --attention none or as a classifier)")
    o = inner.generate([a.text], a.beam, attention=True)[0]
    rows = o.tokens + ["<eos>"] * (len(o.attention) - len(o.tokens))
    plot_attention(o.src_tokens, rows, o.attention, a.out, f"{' '.join(o.src_tokens)} -> {o.text}")
    print(f"{o.text}\nwrote {a.out}")
    return 0


def cmd_curves(a: argparse.Namespace) -> int:
    from seqlab.viz.curves import plot_curves

    missing = [r for r in a.runs if not (Path(r) / "metrics.jsonl").is_file()]
    if missing:
        raise UserError(f"{missing[0]} has no metrics.jsonl; give the --out directory of a training run")
    try:
        plot_curves(a.runs, a.out, grad_norms=not a.no_grad_norms)
    except ValueError as e:
        raise UserError(f"{', '.join(a.runs)}: {e}") from None
    print(f"wrote {a.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from seqlab.cli import plot_grads

    p = sub.add_parser("plot", help="PNG pictures: hidden states, attention, gradients, saliency, training curves",
                       description="The web app's views (`seqlab serve`) as PNG files.")
    s = p.add_subparsers(dest="action", required=True, metavar="{hidden,backward,saliency,attention,speech,curves}")

    h = s.add_parser("hidden", help="a text's hidden states h_t per layer (heatmaps) and the per-step output")
    h.add_argument("text", help="the text to unroll (a tagger reads whitespace-separated words)")
    h.add_argument("--model", required=True,
                   help="run directory of a classify, lm, translate, qa or tag model, or toy:rnn, toy:lstm, toy:gru "
                        "for a small untrained NumPy cell")
    h.add_argument("--out", required=True, help="PNG file to write")
    h.add_argument("--gates", action="store_true", help="also draw the top layer's gates (and LSTM cell state)")
    h.add_argument("--hidden", type=int, default=4, help="toy cells: hidden size (default: %(default)s)")
    h.add_argument("--seed", type=int, default=0, help="toy cells: seed of the weights (default: %(default)s)")
    h.add_argument("--max-steps", type=int, default=MAX_STEPS,
                   help=f"draw at most this many steps (tokens) from the start of a long text, at most "
                        f"{MAX_STEPS_LIMIT} (default: %(default)s)")
    h.set_defaults(func=cmd_hidden)
    plot_grads.register(s)

    t = s.add_parser("attention", help="the attention heatmap of one translation or answer")
    t.add_argument("text", help="the source sentence (or question)")
    t.add_argument("--model", required=True, help="run directory of a translate or qa (seq2seq) model")
    t.add_argument("--out", required=True, help="PNG file to write")
    t.add_argument("--beam", type=int, default=1, help="beam size (default: %(default)s, greedy)")
    t.set_defaults(func=cmd_attention)

    from seqlab.cli import common
    from seqlab.cli.speech import cmd_plot as speech_plot

    f = s.add_parser("speech", help="one recording through a CTC recogniser: spectrogram, posteriors, alignment, "
                                    "hidden states")
    f.add_argument("--model", required=True, help="run directory of a `seqlab speech train` CTC recogniser")
    f.add_argument("--wav", dest="input", required=True, help="the WAV file to show")
    f.add_argument("--out", required=True, help="PNG file to write")
    common.add_runtime_args(f)
    f.set_defaults(func=speech_plot)

    c = s.add_parser("curves", help="training loss and dev metrics of one or more runs")
    c.add_argument("runs", nargs="+", help="run directories (each with a metrics.jsonl)")
    c.add_argument("--out", required=True, help="PNG file to write")
    c.add_argument("--no-grad-norms", action="store_true",
                   help="leave out the panel of per-layer gradient norms (from a run's grad_norms.jsonl)")
    c.set_defaults(func=cmd_curves)
