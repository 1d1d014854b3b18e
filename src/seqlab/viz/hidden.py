"""Hidden states over time as heatmaps (matplotlib PNG): the picture `seqlab plot hidden` writes.

One panel per layer and direction: h_t (hidden units down, steps across, one column per token);
with `gates`, the gates and cell state of the top layer's first direction too; last, what the
model outputs at each step (class probabilities, tag marginals, or the top next token).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from seqlab.viz.model_trace import Trace


def _panels(tr: Trace, gates: bool) -> list[tuple[str, np.ndarray, str]]:
    """(title, values (rows, time), colormap kind) for each heatmap panel."""
    u = tr.unrolled
    out = []
    for k, layer in enumerate(u.layers):
        for d in layer:
            name = f"layer {k}" + (f" {'backward' if d.reverse else 'forward'}" if u.directions == 2 else "")
            out.append((f"h_t, {name}: (time={d.h.shape[0]}, hidden={d.h.shape[1]})", d.h.T, "div"))
    if gates:
        top = u.layers[-1][0]
        for g, v in top.gates.items():
            out.append((f"gate {g} (top layer)", v.T, "seq" if g not in ("g", "n") else "div"))
        if top.c is not None:
            out.append(("c_t (top layer)", top.c.T, "div"))
    return out


def fit_texts(fig, texts, min_size: float = 6.0) -> bool:
    """Re-wrap (and, for text that cannot wrap, shrink) each Text artist in `texts` until it lies inside
    the figure, measured with the renderer; True if any changed (lay the figure out again then)."""
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else None
    renderer = canvas.get_renderer() if canvas is not None else fig._get_renderer()
    width = fig.bbox.width
    changed = False
    for t in texts:
        flat = " ".join(t.get_text().split())
        if not flat:
            continue
        for _ in range(20):
            bb = t.get_window_extent(renderer)
            if bb.x0 >= -0.5 and bb.x1 <= width + 0.5:
                break
            left = t.get_horizontalalignment() == "left"
            room = (width - max(bb.x0, 0.0) if left else width) * 0.96
            longest = max(len(line) for line in t.get_text().split("\n"))
            chars = max(8, int(room / (bb.width / max(longest, 1))))
            wrapped = textwrap.fill(flat, chars)
            if wrapped != t.get_text() and chars < longest:
                t.set_text(wrapped)
            elif t.get_fontsize() > min_size:
                t.set_fontsize(max(min_size, t.get_fontsize() * 0.9))
            else:
                break
            changed = True
    return changed


def _layout(fig, texts) -> None:
    """tight_layout, then fit the titles into the figure, and again while fitting changed them."""
    for _ in range(4):
        fig.tight_layout()
        if not fit_texts(fig, texts):
            break


def plot_hidden(tr: Trace, out: str | Path, title: str = "", gates: bool = False) -> Path:
    """Write the hidden-state picture of a `Trace` (see the module docstring) to `out` (PNG)."""
    import matplotlib.pyplot as plt

    fig = hidden_figure(tr, title, gates)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out


def hidden_figure(tr: Trace, title: str = "", gates: bool = False):
    """The matplotlib Figure of `plot_hidden` (not saved): one axes per heatmap panel (and colorbars),
    then the output panel; every title wrapped to fit inside the figure. Close it with plt.close(fig)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(tr, gates)
    T = len(tr.tokens)
    has_out = tr.kind in ("classes", "tags", "next_token")
    heights = [max(1.2, min(4.0, p[1].shape[0] / 40)) for p in panels] + ([2.2] if has_out else [])
    width = min(22.0, 3.0 + 0.42 * max(T, 8))
    fig, axes = plt.subplots(len(heights), 1, figsize=(width, 0.9 + sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    axes = axes[:, 0]
    labels = [t if len(t) <= 12 else t[:11] + "…" for t in tr.tokens]
    ticks = range(T) if T <= 80 else range(0, T, max(1, T // 40))
    for ax, (name, v, kind) in zip(axes, panels):
        if kind == "seq":
            im = ax.imshow(v, aspect="auto", cmap="Purples", vmin=0, vmax=1, interpolation="nearest")
        else:
            m = float(np.abs(v).max()) or 1.0
            im = ax.imshow(v, aspect="auto", cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel("unit", fontsize=8)
        ax.set_xticks(list(ticks), [labels[i] for i in ticks], rotation=60, ha="right", fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    if has_out:
        ax = axes[-1]
        if tr.kind == "classes":
            for k, name in enumerate(tr.labels):
                ax.plot(range(T), tr.probs[:, k], marker="o", ms=3, label=name)
            ax.set_ylim(0, 1)
            ax.set_xlim(-0.5, T - 0.5)
            ax.legend(fontsize=7, loc="upper left", ncol=min(6, len(tr.labels)))
            ax.set_ylabel("p(class)", fontsize=8)
        elif tr.kind == "tags":
            keep = [k for k in range(len(tr.labels)) if tr.probs[:, k].max() > 0.01]
            ax.imshow(tr.probs[:, keep].T, aspect="auto", cmap="Purples", vmin=0, vmax=1, interpolation="nearest")
            ax.set_yticks(range(len(keep)), [tr.labels[k] for k in keep], fontsize=6)
        else:
            ax.bar(range(T), tr.probs[:, 0], color="tab:purple")
            for t in range(T):
                ax.text(t, tr.probs[t, 0] + 0.02, repr(tr.top_tokens[t][0])[1:-1], ha="center", fontsize=7)
            ax.set_ylim(0, 1.15)
            ax.set_xlim(-0.5, T - 0.5)
            ax.set_ylabel("p(top next)", fontsize=8)
        ax.set_title(tr.note, fontsize=9, loc="left")
        ax.set_xticks(list(ticks), [labels[i] for i in ticks], rotation=60, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
    u = tr.unrolled
    head = title or f"{u.cell.upper()} unrolled over {T} steps"
    head += (f"   outputs (1, {T}, {u.outputs.shape[1]}),  h_n ({u.h_n.shape[0]}, 1, {u.hidden})"
             + (f",  c_n ({u.c_n.shape[0]}, 1, {u.hidden})" if u.c_n is not None else ""))
    sup = fig.suptitle(textwrap.fill(head, int(12 * width)), fontsize=10)
    titles = [sup, *(t for ax in axes for t in (ax.title, ax._left_title, ax._right_title))]
    _layout(fig, titles)
    return fig
