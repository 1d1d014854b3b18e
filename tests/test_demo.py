"""`seqlab demo`: both demos run end to end on data that ships with Python or that seqlab writes."""

from seqlab.cli import main
from seqlab.cli.demo import python_docs_text


def test_python_docs_text_ships_with_python():
    text = python_docs_text()
    assert len(text) > 300_000 and "for" in text


def test_lm_demo_trains_samples_and_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--minutes", "0.05", "--length", "30"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("== sample at temperature") == 3
    assert "bits/char" in printed and (out / "charlm" / "best" / "model.safetensors").is_file()
    assert (out / "charlm" / "loss.png").is_file()


def test_order_demo_compares_two_classifiers(tmp_path, capsys):
    assert main(["demo", "--task", "order", "--out", str(tmp_path / "d"), "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "BiLSTM" in printed and "bag of embeddings" in printed and (tmp_path / "d" / "curves.png").is_file()
