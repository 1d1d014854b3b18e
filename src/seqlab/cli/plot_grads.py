"""`seqlab plot backward` and `seqlab plot saliency`: the gradient views of the web app as PNG files.

    seqlab plot backward --model runs/sst2 "not good at all" --target negative --out backward.png
    seqlab plot saliency --model runs/sst2 "not good at all" --target negative --out saliency.png
    seqlab plot backward --model toy:lstm "not good at all" --out toy.png
"""

from __future__ import annotations

import argparse

from seqlab.errors import UserError


def _position(text: str):
    if text == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'all', got {text!r}") from None


def _compute(a: argparse.Namespace, what: str):
    """(result, title) of `backward` or `saliency` for a toy cell or a checkpoint."""
    from seqlab.viz import backward, saliency
    from seqlab.viz.model_trace import TOY_CELLS, load_model

    if not a.text.strip():
        raise UserError("give a non-empty text")
    pick = dict(position=a.position, target=a.target, measure=a.measure)
    if what == "saliency":
        pick["steps"] = a.steps
    if a.model.startswith("toy:"):
        if a.model[4:] not in TOY_CELLS:
            raise UserError(f"unknown toy cell {a.model!r}; choose toy:{', toy:'.join(TOY_CELLS)}")
        fn = backward.toy_backward if what == "backward" else saliency.toy_saliency
        return fn(a.model[4:], a.text, a.hidden, a.seed, **pick), f"{a.model}: {a.text!r}"
    _, pipe = load_model(a.model)
    fn = backward.backward if what == "backward" else saliency.saliency
    return fn(pipe, a.text, **pick), f"{a.model}: {a.text!r}"


def cmd_backward(a: argparse.Namespace) -> int:
    from seqlab.viz.backward_plot import plot_backward

    b, title = _compute(a, "backward")
    if a.layer is not None and not 0 <= a.layer < len(b.layers):
        raise UserError(f"--layer must be between 0 and {len(b.layers) - 1} for this model, got {a.layer}")
    plot_backward(b, a.out, title, a.layer)
    print(f"L = {b.what} = {b.value:.6g}")
    for k, dirs in enumerate(b.layers):
        for d in dirs:
            n = d.norms()["dh"]
            name = f"layer {k}" + (" backward" if d.reverse else "")
            print(f"  {name}: ||dL/dh_t|| from {n[0]:.3g} (t = 0) to {n[-1]:.3g} (t = {len(n) - 1})")
    print(f"wrote {a.out}")
    return 0


def cmd_saliency(a: argparse.Namespace) -> int:
    from seqlab.viz.backward_plot import plot_saliency

    s, title = _compute(a, "saliency")
    plot_saliency(s, a.out, title)
    print(f"L = {s.what} = {s.value:.6g}; with every input zeroed {s.baseline_value:.6g}")
    width = max(len(t) for t in s.tokens)
    print(f"  {'token':<{width}}  integrated gradients  gradient x input")
    for tok, ig, gx in zip(s.tokens, s.ig, s.gxi):
        print(f"  {tok:<{width}}  {ig:+20.4g}  {gx:+16.4g}")
    print(f"  sum of integrated gradients {s.ig.sum():+.4g} = L - L(baseline) (gap {s.gap:.1e})\nwrote {a.out}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="the input text (a tagger reads whitespace-separated words)")
    p.add_argument("--model", required=True, help="run directory of a classify, lm, translate, qa or tag model, "
                                                  "or toy:rnn, toy:lstm, toy:gru")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--position", type=_position, default=None,
                   help="which output: its position (0-based, negative from the end; classify has one, 0; lm: "
                        "the next token after step t; tag: token t; translate: output token t), or 'all' for the "
                        "loss summed over the sequence (default: the last; translate: the first)")
    p.add_argument("--target", default=None,
                   help="the class, tag or token scored at that position (default: the text's next token for "
                        "lm, what the model wrote for translate, else the most likely)")
    p.add_argument("--measure", choices=("prob", "loss", "logit"), default=None,
                   help="L = p(target), -log p(target), or the target's score before the softmax "
                        "(default: prob; logit for a regression model)")
    p.add_argument("--hidden", type=int, default=4, help="toy cells: hidden size (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="toy cells: seed of the weights (default: %(default)s)")


def register(s: argparse._SubParsersAction) -> None:
    b = s.add_parser("backward", help="how the gradient of one output flows back through the unrolled steps")
    _common(b)
    b.add_argument("--layer", type=int, default=None, help="the layer whose per-gate paths are drawn (default: top)")
    b.set_defaults(func=cmd_backward)
    sal = s.add_parser("saliency", help="which input tokens one output depends on (integrated gradients, "
                                        "gradient x input)")
    _common(sal)
    sal.add_argument("--steps", type=int, default=64,
                     help="integrated gradients: quadrature points along the path (default: %(default)s)")
    sal.set_defaults(func=cmd_saliency)
