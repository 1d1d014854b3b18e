"""`seqlab translate`: train -> eval -> predict round trip, parallel files, and bad input."""

import gzip
import json
import random
import re

import pytest
import torch

from seqlab.cli import main
from seqlab.data.pairs import (
    TUTORIAL_PREFIXES,
    filter_pairs,
    normalize,
    read_pairs_table,
    read_parallel,
    split_pairs,
)
from seqlab.errors import UserError
from seqlab.metrics.seq2seq import bleu, chrf, exact_match, token_f1
from seqlab.pipelines.seq2seq import Seq2SeqPipeline

WORDS = "red blue green big small cat dog bird sees eats likes the a".split()
FR = dict(zip(WORDS, "rouge bleu vert grand petit chat chien oiseau voit mange aime le un".split()))
TINY = ["--embed", "16", "--hidden", "16", "--batch", "16", "--save-every", "0", "--patience", "0", "--dropout", "0"]


def toy(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
        out.append((" ".join(s).capitalize() + ".", " ".join(FR[w] for w in reversed(s)) + " ."))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("pairs")
    rows = toy(240, 1)
    (d / "train.tsv").write_text("english\tfrench\n" + "".join(f"{s}\t{t}\n" for s, t in rows))
    with gzip.open(d / "train.en.gz", "wt") as f:
        f.write("".join(s + "\n" for s, _ in rows))
    with gzip.open(d / "train.fr.gz", "wt") as f:
        f.write("".join(t + "\n" for _, t in rows))
    return d


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tr"
    assert main(["translate", "train", "--data", str(data / "train.tsv"), "--src-col", "english", "--tgt-col",
                 "french", "--lowercase", "--split-punct", "--epochs", "12", "--lr", "0.01", "--beam", "3", *TINY,
                 "--hidden", "32", "--out", str(out)]) == 0
    return out


def test_train_eval_predict_round_trip(run, capsys, tmp_path):
    for name in ("best/config.json", "best/model.safetensors", "last/trainer.json", "results.json",
                 "data/valid.tsv", "data/test.tsv", "loss.png"):
        assert (run / name).is_file(), name
    res = json.loads((run / "results.json").read_text())
    assert res["valid_greedy_bleu"] > 30 and "test_beam3_bleu" in res, res
    capsys.readouterr()
    assert main(["translate", "eval", "--model", str(run), "--data", str(run / "data" / "test.tsv"), "--src-col", "0",
                 "--tgt-col", "1", "--header", "no", "--beam", "3", "--json", "--output", str(tmp_path / "o.tsv")]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 12 and m["bleu"] == pytest.approx(res["test_beam3_bleu"], abs=0.01)
    assert len((tmp_path / "o.tsv").read_text().splitlines()) == 13
    png = tmp_path / "att.png"
    assert main(["translate", "predict", "--model", str(run), "--beam", "3", "--json", "--show-attention", str(png),
                 "The red cat sees a dog.", "Big bird."]) == 0
    outs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["source"] for o in outs] == ["The red cat sees a dog.", "Big bird."]
    assert all(o["mean_logprob"] <= 0 for o in outs)
    assert (tmp_path / "att-1.png").stat().st_size > 1000 and (tmp_path / "att-2.png").is_file()
    pipe = Seq2SeqPipeline.load(run)
    direct = pipe.generate(["The red cat sees a dog.", "Big bird."], beam=3)
    assert [o.text for o in direct] == [o["output"] for o in outs]


def test_parallel_gzip_files_train(data, tmp_path):
    out = tmp_path / "par"
    assert main(["translate", "train", "--src", str(data / "train.en.gz"), "--tgt", str(data / "train.fr.gz"),
                 "--epochs", "1", "--attention", "dot", "--cell", "lstm", "--input-feed", "--teacher-forcing", "1",
                 "--tf-decay", "linear", "--label-smoothing", "0.1", *TINY, "--out", str(out)]) == 0
    cfg = json.loads((out / "best" / "config.json").read_text())
    assert cfg["model"]["attention"] == "dot" and cfg["model"]["input_feed"] is True
    assert cfg["data"]["max_src_len"] >= 20


def test_too_long_source_is_truncated_with_a_warning(run, capsys):
    pipe = Seq2SeqPipeline.load(run)
    limit = pipe.data["max_src_len"]
    capsys.readouterr()
    assert main(["translate", "predict", "--model", str(run), "cat dog", " ".join(["cat"] * (limit + 5))]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 source text(s) longer than the model's maximum" in err and "input 2" in err


def _bad(tmp_path, data, run):
    (tmp_path / "empty_side.tsv").write_text("english\tfrench\nthe cat .\tle chat .\nthe dog .\t\n")
    (tmp_path / "cols.csv").write_text("en,fr\ncat,chat\n")
    (tmp_path / "a.txt").write_text("one\n\nthree\n")
    (tmp_path / "b.txt").write_text("un\ndeux\ntrois\n")
    (tmp_path / "c.txt").write_text("un\ndeux\n")
    other = tmp_path / "qa_ckpt"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "qa"}))
    (other / "model.safetensors").write_bytes(b"")
    train = ["translate", "train", *TINY, "--epochs", "1", "--out", str(tmp_path / "out")]
    return [
        (train + ["--data", str(tmp_path / "empty_side.tsv"), "--src-col", "english", "--tgt-col", "french"],
         r"empty_side.tsv: line 3 has an empty target \(column 'french'\)"),
        (train + ["--data", str(tmp_path / "cols.csv"), "--src-col", "english", "--tgt-col", "french"],
         r"cols.csv: no column named 'english'; the columns are 'en', 'fr'"),
        (train + ["--src", str(tmp_path / "a.txt"), "--tgt", str(tmp_path / "b.txt")], r"a.txt: line 2 is empty"),
        (train + ["--src", str(tmp_path / "b.txt"), "--tgt", str(tmp_path / "c.txt")],
         r"b.txt has 3 lines but .*c.txt has 2; parallel files must be line-aligned"),
        (train + ["--src", str(tmp_path / "b.txt")], "give both --src and --tgt"),
        (train + ["--data", str(data / "train.tsv"), "--src-col", "english", "--tgt-col", "french", "--attention",
                  "dot", "--dec-hidden", "7"], "dot attention needs"),
        (["translate", "predict", "--model", str(other), "hi"], r"is a 'qa' checkpoint, not 'translate'"),
        (["translate", "eval", "--model", str(run), "--data", str(tmp_path / "cols.csv")],
         "no column named 'english'"),
        (["translate", "predict", "--model", str(run)], "nothing to translate"),
    ]


def test_bad_input_is_one_clear_line(tmp_path, data, run, capsys):
    for argv, msg in _bad(tmp_path, data, run):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("seqlab: error: ") and len(err.strip().splitlines()) == 1, err
        assert re.search(msg, err), (msg, err)
        assert not (tmp_path / "out").exists(), "a failed run left output behind"


def test_model_without_attention_has_no_heatmap(data, tmp_path, capsys):
    out = tmp_path / "noatt"
    assert main(["translate", "train", "--data", str(data / "train.tsv"), "--src-col", "english", "--tgt-col",
                 "french", "--attention", "none", "--epochs", "1", *TINY, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["translate", "predict", "--model", str(out), "--show-attention", str(tmp_path / "a.png"), "x"]) == 2
    assert "has no attention" in capsys.readouterr().err


def test_pair_readers_normalisation_filters_and_split(tmp_path):
    (tmp_path / "p.txt").write_text("I'm cold.\tJ'ai froid.\r\nHe isn't here.\tIl n'est pas ici.\r\n"
                                    "Hello there.\tSalut.\r\nYou're very very very very very very very tall.\tx\r\n")
    p = read_pairs_table(tmp_path / "p.txt", "0", "1")  # indices: no header row
    assert len(p) == 4 and p.lines == [1, 2, 3, 4] and p.tgt[0] == "J'ai froid."
    kept = filter_pairs(p, 10, TUTORIAL_PREFIXES, count=lambda s: len(normalize(s, split_punct=True).split()))
    assert kept.src == ["I'm cold.", "He isn't here."]
    assert normalize("ＡＢＣ  I'm COLD.", lowercase=True, nfkc=True, split_punct=True) == "abc i'm cold ."
    with gzip.open(tmp_path / "s.gz", "wt") as f:
        f.write("a\nb\n")
    with gzip.open(tmp_path / "t.gz", "wt") as f:
        f.write("x\ny\n")
    assert read_parallel(tmp_path / "s.gz", tmp_path / "t.gz").tgt == ["x", "y"]
    with pytest.raises(UserError, match="line 3 has an empty source"):
        (tmp_path / "e.csv").write_text("q,a\nfine,ok\n,missing\n")
        read_pairs_table(tmp_path / "e.csv", "q", "a")


def test_split_is_seeded_and_keeps_a_source_in_one_split():
    from seqlab.data.pairs import Pairs

    src = [f"s{i % 40}" for i in range(100)]  # each source has 2-3 translations
    p = Pairs(src, [f"t{i}" for i in range(100)], list(range(1, 101)), "x")
    a = split_pairs(p, 0.1, 0.1, seed=3)
    assert a == split_pairs(p, 0.1, 0.1, seed=3) and a != split_pairs(p, 0.1, 0.1, seed=4)
    tr, va, te = a
    assert sorted(tr + va + te) == list(range(100)) and 10 <= len(va) <= 13 and 10 <= len(te) <= 13
    srcs = [{src[i] for i in part} for part in a]
    assert not (srcs[0] & srcs[1]) and not (srcs[0] & srcs[2]) and not (srcs[1] & srcs[2])


def test_generation_metrics():
    assert bleu(["the cat sat on the mat ."], ["the cat sat on the mat ."]) == pytest.approx(100.0)
    assert chrf(["abc"], ["abc"]) == pytest.approx(100.0)
    assert bleu(["a b c d"], ["w x y z"]) == 0.0
    assert exact_match(["harper - lee", "The Nile"], ["Harper-Lee", "nile"]) == 1.0
    assert exact_match(["paris"], ["berlin"]) == 0.0
    assert token_f1(["new york city"], ["New-York"]) == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    torch.manual_seed(0)
