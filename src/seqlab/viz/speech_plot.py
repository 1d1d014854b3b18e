"""The speech figure: what a CTC recogniser sees and says on one recording, on one time axis.

    panel 1  the log-mel frames the model reads (normalised), (frames, mels)
    panel 2  the per-frame CTC posteriors: p(blank) and every label that ever passes 10%
    panel 3  the decoded alignment: the frames the Viterbi alignment gives each decoded letter
    panel 4  the recurrent encoder's hidden states over its steps (top layer, both directions)

`view` is `Recognizer.inspect(path)`'s dict; `seqlab plot speech --model RUN --wav FILE --out fig.png` draws it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_speech(view: dict, path: str | Path, title: str | None = None) -> Path:
    """Write the four-panel PNG of `view` (see `speech_figure`) to `path`."""
    import matplotlib.pyplot as plt

    fig = speech_figure(view, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def speech_figure(view: dict, title: str | None = None):
    """The four panels of `view` (frames, log_probs, hidden, labels, spans, units, text, frame_s, step_s) as a
    matplotlib Figure; the alignment panel's texts are the decoded labels in order (a space drawn as ␣)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames, logp, hidden = view["frames"], view["log_probs"], view["hidden"]
    fs, ss, units = view["frame_s"], view["step_s"], view["units"]
    end = max(len(frames) * fs, len(logp) * ss)
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [2, 2, 0.7, 2]})
    a0, a1, a2, a3 = axes
    a0.imshow(frames.T, origin="lower", aspect="auto", extent=[0, len(frames) * fs, 0, frames.shape[1]],
              cmap="magma")
    fig.suptitle(title or f"decoded: {view['text']!r}")
    a0.set(ylabel="mel channel", title="log-mel spectrogram (as the model reads it: normalised)")
    p = np.exp(logp)
    t = (np.arange(len(p)) + 0.5) * ss
    a1.plot(t, p[:, 0], "k--", lw=1, label="blank")
    for k in range(1, p.shape[1]):
        if p[:, k].max() > 0.1:
            a1.plot(t, p[:, k], lw=1.5, label=repr(units[k]) if units[k] == " " else units[k])
    a1.set(ylabel="p(label | step)", ylim=(0, 1.02), title="CTC posteriors per encoder step (blank dashed)")
    a1.legend(fontsize=7, ncol=8, loc="upper right")
    for k, (lab, (s, e)) in enumerate(zip(view["labels"], view["spans"])):
        a2.axvspan(s * ss, e * ss, color=f"C{k % 10}", alpha=0.5)
        a2.text((s + e) / 2 * ss, 0.5, "␣" if units[lab] == " " else units[lab], ha="center", va="center")
    a2.set(yticks=[], ylabel="alignment", title="decoded alignment (the steps Viterbi gives each label)")
    a3.imshow(hidden.T, origin="lower", aspect="auto", extent=[0, len(hidden) * ss, 0, hidden.shape[1]],
              cmap="RdBu_r", vmin=-1, vmax=1)
    both = ", both directions" if view.get("directions", 1) > 1 else ""
    a3.set(ylabel="hidden unit", xlabel="time (s)", xlim=(0, end),
           title=f"encoder hidden states, top layer ({hidden.shape[1]} units{both})")
    fig.tight_layout()
    return fig
