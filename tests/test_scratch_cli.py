"""`seqlab scratch ...` end to end, on small settings."""

from seqlab.cli import main


def test_gradcheck_passes_for_every_cell(capsys):
    for cell in ("rnn", "rnn_relu", "lstm", "gru"):
        assert main(["scratch", "gradcheck", "--cell", cell, "--seeds", "1"]) == 0
        assert "PASS" in capsys.readouterr().out


def test_forward_explain_prints_shapes(capsys):
    assert main(["scratch", "forward", "--cell", "gru", "--explain", "I love NLP"]) == 0
    out = capsys.readouterr().out
    assert "(batch, time, hidden) = (1, 3, 3)" in out and "outputs[:, -1] == h_n[-1]: True" in out


def test_train_beats_unigram_entropy_on_a_tiny_text(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("hello world, hello seqlab. " * 200)
    assert main(["scratch", "train", "--data", str(tmp_path / "t.txt"), "--cell", "lstm", "--hidden", "32",
                 "--steps", "150", "--batch", "8", "--seq-len", "20", "--lr", "1e-2", "--sample-every", "0"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    bits, unigram = float(last.split()[1]), float(last.split("entropy ")[1].split()[0])
    assert bits < 0.5 * unigram


def test_vanishing_and_memory_write_tables_and_plots(tmp_path, capsys):
    assert main(["scratch", "vanishing", "--cells", "rnn,lstm", "--length", "30", "--radii", "0.5,1.5",
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "vanishing.png").stat().st_size > 1000
    assert main(["scratch", "memory", "--cells", "lstm", "--lengths", "5", "--steps", "20", "--hidden", "8",
                 "--out", str(tmp_path)]) == 0
    assert "| adding | lstm | 5 |" in capsys.readouterr().out
    assert (tmp_path / "memory_adding.png").exists()


def test_scratch_bad_input(tmp_path, capsys):
    assert main(["scratch", "memory", "--lengths", "10,abc"]) == 2
    assert main(["scratch", "vanishing", "--cells", "rnn,transformer"]) == 2
    (tmp_path / "short.txt").write_text("abc")
    assert main(["scratch", "train", "--data", str(tmp_path / "short.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("seqlab: error: ") for line in err)
