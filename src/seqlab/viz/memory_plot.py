"""The memory experiment's figure: test metric against sequence length, a line per cell."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_memory(rows: Sequence[dict], path: str | Path) -> Path:
    """Write a PNG of `seqlab.pipelines.memory.run_memory`'s rows: the test metric against sequence
    length, a line per cell, the baseline dashed, the solved threshold dotted; one panel per task
    (MSE on a log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        mine = [r for r in rows if r["task"] == task]
        for cell in dict.fromkeys(r["cell"] for r in mine):
            pts = sorted((r["length"], r["value"]) for r in mine if r["cell"] == cell)
            ax.plot(*zip(*pts), marker="o", label=cell)
        lengths = sorted({r["length"] for r in mine})
        ax.plot(lengths, [np.mean([r["baseline"] for r in mine if r["length"] == n]) for n in lengths],
                "k--", lw=1, label="memoryless baseline")
        if task == "adding":
            ax.axhline(mine[0]["solved_at"], color="g", ls=":", lw=1, label=f"solved (MSE {mine[0]['threshold']})")
            ax.set_yscale("log")
            ax.set_ylabel("test MSE")
        else:
            ax.axhline(mine[0]["solved_at"], color="g", ls=":", lw=1, label=f"solved ({mine[0]['threshold']})")
            ax.set_ylabel("test accuracy on the answer steps")
        ax.set(title=f"{task} task", xlabel="sequence length (gap to remember)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
