"""The readers on the real datasets in ../shared/data (skipped where it is absent)."""

import subprocess
import sys

import pytest

from seqlab.data import read_lines, read_table
from seqlab.errors import UserError


def test_sst2_reads_with_trailing_spaces_stripped(shared_data):
    t = read_table(shared_data / "sentiment/sst2/train.tsv", ["sentence", "label"])
    assert len(t.rows) == 67_349
    assert sum(r[1] == "1" for r in t.rows) == 37_569
    assert all(not r[0].endswith(" ") for r in t.rows)
    assert len(read_table(shared_data / "sentiment/sst2/dev.tsv", ["sentence", "label"]).rows) == 872


def test_uci_files_have_1000_rows_despite_nel_characters(shared_data):
    for name in ("amazon_cells", "imdb", "yelp"):
        t = read_table(shared_data / f"sentiment/uci_sentiment_labelled_sentences/{name}_labelled.txt",
                       [0, 1], header=False)
        assert len(t.rows) == 1000 and {r[1] for r in t.rows} == {"0", "1"}


def test_rt_polarity_needs_latin1_and_says_so(shared_data):
    pos = shared_data / "sentiment/rt-polarity/rt-polarity.pos"
    with pytest.raises(UserError, match="not valid utf-8.*--encoding"):
        read_lines(pos)
    assert len(read_lines(pos, encoding="latin-1")) == 5331


@pytest.mark.slow
def test_sst2_bilstm_reaches_84_percent(shared_data, tmp_path):
    """The README's SST-2 BiLSTM figure (about 13 minutes on 2 cores): run with `pytest -m slow`."""
    sst = shared_data / "sentiment/sst2"
    r = subprocess.run(
        [sys.executable, "-m", "seqlab", "classify", "train", "--train", str(sst / "train.tsv"),
         "--dev", str(sst / "dev.tsv"), "--text-col", "sentence", "--cell", "lstm", "--bidirectional",
         "--layers", "2", "--hidden", "256", "--embed", "300", "--dropout", "0.5", "--embed-dropout", "0.3",
         "--pooling", "max", "--epochs", "4", "--schedule", "linear", "--patience", "0", "--time", "15",
         "--eval-every", "300",
         "--out", str(tmp_path / "sst2")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import json

    res = json.loads((tmp_path / "sst2" / "results.json").read_text())
    assert res["dev_accuracy"] >= 0.84
