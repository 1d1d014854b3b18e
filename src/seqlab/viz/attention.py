"""Attention heatmaps: which source words each output word read (matplotlib PNG)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import torch


def plot_attention(src_tokens: Sequence[str], out_tokens: Sequence[str], weights: torch.Tensor,
                   path: str | Path, title: str | None = None) -> Path:
    """Write a heatmap of `weights` (len(out_tokens), len(src_tokens)): output tokens down the
    rows, source tokens along the columns, darker = more attention; each row sums to 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = weights.detach().float().cpu().numpy()
    if w.shape != (len(out_tokens), len(src_tokens)):
        raise ValueError(f"weights of shape {w.shape} do not fit {len(out_tokens)} output and "
                         f"{len(src_tokens)} source tokens")
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * max(4, len(src_tokens)), 1.0 + 0.4 * max(3, len(out_tokens))))
    im = ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src_tokens)), labels=list(src_tokens), rotation=60, ha="right")
    ax.set_yticks(range(len(out_tokens)), labels=list(out_tokens))
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(textwrap.fill(title, max(30, int(8 * fig.get_figwidth()))), fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
