"""PNG pictures of the backward view and of input saliency (`seqlab plot backward`, `seqlab plot saliency`).

    plot_backward(b, "backward.png", title)    # ||dL/dh_t||, ||dL/dc_t|| per step and layer; the paths
    plot_saliency(s, "saliency.png", title)    # the tokens as a heat strip: integrated gradients, grad x input
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pos(v: np.ndarray) -> np.ndarray:
    """v with its zeros (a step the output does not depend on) as gaps: a log axis cannot show 0."""
    return np.where(v > 0, v, np.nan)


def _axes(n_rows: int, width: float, heights: list[float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n_rows, 1, figsize=(width, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    return plt, fig, [a[0] for a in axes]


def _ticks(ax, tokens: list[str]) -> None:
    ax.set_xticks(range(len(tokens)))
    ax.set_xticklabels(tokens, rotation=55 if len(tokens) > 12 else 0, fontsize=8)


def _dirname(layer: int, d, n_dirs: int) -> str:
    return f"layer {layer}" + ((" bwd" if d.reverse else " fwd") if n_dirs == 2 else "")


def backward_figure(b, title: str = "", layer: int | None = None):
    """The Figure of `plot_backward`: (top) ||dL/dh_t|| of every layer and direction (||dL/dc_t||
    dashed) against the step; (bottom) for `layer` (default the top one), forward direction, the
    norm of the gradient the step hands back along each path (`DirGrads.via`)."""
    T = len(b.tokens)
    plt, fig, (a1, a2) = _axes(2, max(7.0, 0.55 * T + 3), [3.2, 2.8])
    xs = np.arange(T)
    for k, dirs in enumerate(b.layers):
        for d in dirs:
            n = d.norms()
            line = a1.semilogy(xs, _pos(n["dh"]), marker="o", ms=3, lw=1.3,
                               label=f"||dL/dh_t|| {_dirname(k, d, len(dirs))}")[0]
            if n["dc"] is not None:
                a1.semilogy(xs, _pos(n["dc"]), ls="--", lw=1.1, color=line.get_color(),
                            label=f"||dL/dc_t|| {_dirname(k, d, len(dirs))}")
    if b.position is not None and b.position < T and len(b.positions) == T:
        a1.axvline(b.position, color="#d62728", ls=":", lw=1)
    a1.set(ylabel="gradient norm", title=(title + "\n" if title else "") + f"L = {b.what} = {b.value:.4g}")
    _ticks(a1, b.tokens)
    a1.legend(fontsize=7, ncol=2)
    k = len(b.layers) - 1 if layer is None else layer
    d = b.layers[k][0]
    into = {"cell": "cell: f*dL/dc_t, into c", "skip": "skip: z*dL/dh_t", "W_hh": "W_hh"}
    for name, v in d.norms()["via"].items():
        a2.semilogy(xs[1:], _pos(v[1:]), marker=".", lw=1, label=into.get(name, f"gate {name}"))
    a2.set(ylabel="gradient norm", xlabel="step t (token)", xlim=a1.get_xlim(),
           title=f"{_dirname(k, d, 1)} ({b.cell.upper()}): what step t hands back to step t-1, by path")
    _ticks(a2, b.tokens)
    a2.legend(fontsize=7, ncol=3)
    for a in (a1, a2):
        a.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def _strip(ax, tokens: list[str], values: np.ndarray, label: str) -> None:
    """One row of boxes, one per token, coloured by value (red positive, blue negative)."""
    import matplotlib
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    m = float(np.max(np.abs(values))) or 1.0
    cmap, norm = matplotlib.colormaps["RdBu_r"], TwoSlopeNorm(0.0, -m, m)
    for t, (tok, v) in enumerate(zip(tokens, values)):
        ax.add_patch(Rectangle((t, 0), 0.96, 1, color=cmap(norm(v))))
        ax.text(t + 0.48, 0.62, tok, ha="center", va="center", fontsize=9, fontweight="bold")
        ax.text(t + 0.48, 0.25, f"{v:+.3g}", ha="center", va="center", fontsize=7)
    ax.set_xlim(0, len(tokens))
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xticks([])
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)


def saliency_figure(s, title: str = ""):
    """The Figure of `plot_saliency`: integrated gradients and gradient x input per token (heat strips)."""
    T = len(s.tokens)
    plt, fig, (a1, a2) = _axes(2, max(6.0, 0.9 * T + 2.5), [1.0, 1.0])
    _strip(a1, s.tokens, s.ig, "integrated\ngradients")
    _strip(a2, s.tokens, s.gxi, "gradient\nx input")
    head = (title + "\n" if title else "") + f"L = {s.what} = {s.value:.4g}; "
    head += f"baseline (zero vectors) {s.baseline_value:.4g}"
    a1.set_title(head + f"\nsum of attributions {s.ig.sum():.4g} = L - L(baseline) "
                 f"(gap {s.gap:.1e}, {s.steps} steps)", fontsize=9)
    fig.tight_layout()
    return fig


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def plot_backward(b, path, title: str = "", layer: int | None = None) -> Path:
    return _save(backward_figure(b, title, layer), path)


def plot_saliency(s, path, title: str = "") -> Path:
    return _save(saliency_figure(s, title), path)
