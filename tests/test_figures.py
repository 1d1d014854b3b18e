"""What the figures draw, read from the matplotlib objects: loss.png's panels, plot hidden's titles and size."""

import json
import math

import matplotlib
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

import seqlab.viz.hidden as hidden
from seqlab.cli import main
from seqlab.cli.plot import first_steps
from seqlab.data.synthetic import contrast_sentiment, write_csv
from seqlab.viz.curves import curves_figure, metric_groups

matplotlib.use("Agg")


def _write_log(run, dev_records, steps=6):
    run.mkdir(parents=True, exist_ok=True)
    recs = [{"step": s, "epoch": s / 2, "loss": 3.0 / s, "lr": 1e-3, "grad_norm": 1.0, "time": s} for s in
            range(1, steps + 1)]
    recs += [{"step": 2 * (i + 1), "epoch": i + 1, "time": 1.0, **r} for i, r in enumerate(dev_records)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return run


def _lines(ax) -> dict[str, list[float]]:
    return {ln.get_label(): list(ln.get_ydata()) for ln in ax.lines}


def test_metrics_of_different_scales_get_their_own_axes(tmp_path):
    dev = [{"dev_bleu": 5.0 + 10 * i, "dev_chrf": 20.0 + 10 * i, "dev_exact_match": 0.1 * i, "dev_loss": 2.0 - i / 2}
           for i in range(3)]
    fig = curves_figure([_write_log(tmp_path / "tr", dev)])
    axes = fig.axes
    assert len(axes) == 3  # training loss, BLEU + chrF (0-100), exact match (0-1)
    assert set(_lines(axes[0])) == {"train loss"}
    assert set(_lines(axes[1])) == {"dev_bleu", "dev_chrf"}
    assert _lines(axes[2]) == {"dev_exact_match": [0.0, 0.1, 0.2]}
    lo, hi = axes[2].get_ylim()
    assert hi < 1.0 and hi - lo < 0.5  # its own scale: the exact-match line is not squashed flat
    assert axes[1].get_ylim()[1] > 30


def test_groups_by_name_and_by_size():
    groups = metric_groups({"dev_bleu": [30.0], "dev_accuracy": [0.8], "dev_macro_f1": [0.7], "dev_perplexity": [300.0],
                            "dev_bits_per_char": [2.0], "dev_mae": [1.5]})
    assert groups == [["dev_bleu"], ["dev_accuracy", "dev_macro_f1"], ["dev_perplexity"],
                      ["dev_bits_per_char", "dev_mae"]]


def test_forecast_without_dev_data_draws_no_empty_panel(tmp_path, capsys):
    ys = "".join(f"{10 + math.sin(i / 3):.4f}\n" for i in range(90))
    (tmp_path / "s.csv").write_text("y\n" + ys)
    run = tmp_path / "fc"
    assert main(["forecast", "train", "--data", str(tmp_path / "s.csv"), "--no-time", "--target", "y", "--test", "12",
                 "--horizon", "3", "--lookback", "12", "--hidden", "8", "--epochs", "2", "--save-every", "0",
                 "--threads", "1", "--dev", "0", "--out", str(run)]) == 0
    assert (run / "loss.png").is_file()  # what LossPlot wrote, from this very figure
    fig = curves_figure([run])
    assert len(fig.axes) == 1 and fig.axes[0].lines and len(fig.axes[0].lines[0].get_xdata()) >= 2


def test_translate_loss_png_puts_exact_match_apart(tmp_path, capsys):
    pairs = [("i am cold .", "j'ai froid ."), ("you are tall .", "tu es grand ."), ("he is cold .", "il a froid .")]
    (tmp_path / "p.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs * 10))
    run = tmp_path / "tr"
    assert main(["translate", "train", "--data", str(tmp_path / "p.tsv"), "--embed", "8", "--hidden", "8",
                 "--epochs", "2", "--batch", "16", "--save-every", "0", "--threads", "1", "--out", str(run)]) == 0
    fig = curves_figure([run])
    where = {label: i for i, ax in enumerate(fig.axes) for label in _lines(ax)}
    assert where["dev_bleu"] == where["dev_chrf"] != where["dev_exact_match"]


def _inside(fig) -> list[str]:
    """The visible texts of `fig` that stick out of the figure (renderer extents, in pixels)."""
    renderer = FigureCanvasAgg(fig).get_renderer()  # the pyplot canvas is gone once the PNG is written
    box, out = fig.bbox, []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        bb = t.get_window_extent(renderer)
        if bb.x0 < box.x0 - 1 or bb.x1 > box.x1 + 1 or bb.y0 < box.y0 - 1 or bb.y1 > box.y1 + 1:
            out.append(t.get_text())
    return out


@pytest.fixture
def figures(monkeypatch):
    """The Figures `seqlab plot hidden` draws (captured as they are made)."""
    made = []
    real = hidden.hidden_figure

    def capture(*args, **kw):
        made.append(real(*args, **kw))
        return made[-1]

    monkeypatch.setattr(hidden, "hidden_figure", capture)
    return made


@pytest.mark.parametrize("text", ["ab", "the movie was not good at all but the acting was fine",
                                  "supercalifragilisticexpialidocious " * 3])
def test_plot_hidden_titles_fit_inside_the_figure(text, tmp_path, figures, capsys):
    assert main(["plot", "hidden", "--model", "toy:lstm", text, "--out", str(tmp_path / "h.png"), "--gates"]) == 0
    fig = figures[-1]
    assert fig.get_suptitle().startswith("toy:lstm: ")
    notes = [ax.get_title(loc="left") for ax in fig.axes]
    assert any("untrained random readout" in n for n in notes)
    assert _inside(fig) == []


def test_plot_hidden_caps_a_long_text(tmp_path, figures, capsys):
    words = " ".join(["good", "bad", "not", "the", "movie", "was"][i % 6] for i in range(20_000))
    assert main(["plot", "hidden", "--model", "toy:gru", words, "--out", str(tmp_path / "h.png")]) == 0
    cap = capsys.readouterr()
    assert "20,000 steps; drawing the first 400 of 20,000 steps" in cap.err and "(400 steps" in cap.out
    fig = figures[-1]
    heat = fig.axes[0].images[0].get_array()
    assert heat.shape == (4, 400)  # (hidden, time): only the first 400 tokens were unrolled
    assert "the first 400 of 20,000 steps" in " ".join(fig.get_suptitle().split())
    assert _inside(fig) == []
    assert main(["plot", "hidden", "--model", "toy:gru", words, "--out", str(tmp_path / "h.png"),
                 "--max-steps", "5000"]) == 2
    assert "--max-steps must be between 1 and 1000" in capsys.readouterr().err


def test_plot_hidden_of_a_long_text_with_a_classifier_stays_small(tmp_path, figures, capsys):
    # the classifier unrolls every prefix as one batch: 20,000 tokens would need (20,000 x 20,000) ids
    write_csv(contrast_sentiment(64, seed=1), tmp_path / "train.csv")
    assert main(["classify", "train", "--train", str(tmp_path / "train.csv"), "--embed", "8", "--hidden", "6",
                 "--epochs", "1", "--batch", "8", "--save-every", "0", "--threads", "1",
                 "--out", str(tmp_path / "clf")]) == 0
    words = " ".join(["the", "plot", "was", "dull", "but", "acting", "brilliant"][i % 7] for i in range(20_000))
    assert main(["plot", "hidden", "--model", str(tmp_path / "clf"), words, "--out", str(tmp_path / "h.png"),
                 "--max-steps", "300"]) == 0
    out_panel = next(ax for ax in figures[-1].axes if ax.lines)  # p(class) per step
    assert out_panel.lines[0].get_xdata().shape == (300,)


def test_first_steps_cuts_at_word_ends_or_inside_one_long_word():
    assert first_steps("abc def gh", len, 100) == ("abc def gh", 10)
    assert first_steps("abc def gh", len, 8) == ("abc def", 10)
    assert first_steps("x" * 50 + " y", len, 10) == ("x" * 10, 52)
    words = lambda t: len(t.split())  # noqa: E731
    assert first_steps("a b c d e", words, 3) == ("a b c", 5)
