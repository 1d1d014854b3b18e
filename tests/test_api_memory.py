"""The memory tasks through the public API: fit, predict, evaluate, save, seqlab.load (6 lines)."""

import torch

import seqlab
from seqlab.pipelines import MemoryTask


def test_memory_task_in_six_lines(tmp_path):
    net = MemoryTask.fit(task="adding", cell="lstm", length=10, hidden=16, steps=600, eval_every=100, time="1m")
    r = net.evaluate()
    net.save(tmp_path / "adding")
    again = seqlab.load(tmp_path / "adding")
    x, y = again.test_set()
    assert r["mse"] < r["baseline"] / 2  # it remembered something: well under the memoryless 1/6
    assert torch.equal(again.predict(x), net.predict(x)) and again.predict(x).shape == y.shape
    assert again.evaluate()["mse"] == r["mse"]


def test_copy_task_predicts_symbols_and_names_bad_settings():
    import pytest

    from seqlab.pipelines import ConfigError

    net = MemoryTask.fit(task="copy", length=5, hidden=8, steps=20, eval_every=10, memorize=3, symbols=4)
    x, y = net.test_set()
    pred = net.predict(x[:7])
    assert pred.shape == (7, 3) and pred.dtype == torch.long and int(pred.max()) < 4
    assert net.evaluate()["baseline"] == 0.25
    with pytest.raises(ConfigError, match="data.length"):
        MemoryTask.fit(task="adding", length=1)
    with pytest.raises(ConfigError, match="train.time"):
        MemoryTask.fit(time="soon")


def test_memory_plot_draws_each_cell_the_baseline_and_the_threshold(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from seqlab.viz.memory_plot import plot_memory

    rows = [{"task": "copy", "cell": c, "length": n, "value": v, "baseline": 0.125, "solved_at": 0.95,
             "threshold": ">= 0.95"} for c, pts in (("rnn", ((10, 0.3), (50, 0.13))), ("lstm", ((10, 1.0), (50, 0.97))))
            for n, v in pts]
    figs = []
    monkeypatch.setattr(plt, "close", figs.append)  # keep the figure to read what was drawn
    plot_memory(rows, tmp_path / "m.png")
    (ax,) = figs[0].axes
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(lines["lstm"].get_ydata()) == [1.0, 0.97] and list(lines["rnn"].get_xdata()) == [10, 50]
    assert list(lines["memoryless baseline"].get_ydata()) == [0.125, 0.125]
    assert list(lines["solved (>= 0.95)"].get_ydata()) == [0.95, 0.95]
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
