"""Sequence tagging: CoNLL readers, tag schemes, conlleval-style metrics, the tagger, `seqlab tag`."""

import gzip
import json
import random
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.cli import main
from seqlab.data import Vocab
from seqlab.data.conll import check_scheme, detect_scheme, from_spans, read_conll, spans, to_scheme
from seqlab.errors import UserError
from seqlab.metrics.tagging import entity_metrics
from seqlab.models.encoder import EncoderConfig
from seqlab.models.tagger import Tagger, TaggerConfig, case_of
from seqlab.pipelines.tag import Tagger as TagPipeline

# ---- a tiny generated NER corpus: word POS NER, BIO ----------------------------------------------
PER = ["John Smith", "Mary", "Peter Blackburn", "Anna Lee", "Bob"]
LOC = ["Paris", "New York", "Berlin", "Rome", "Los Angeles"]
ORG = ["Reuters", "the EU Commission", "Acme Corp", "Siemens"]
TEMPLATES = ["{PER} lives in {LOC} .", "{PER} works for {ORG} in {LOC} .", "{ORG} hired {PER} .",
             "yesterday {PER} flew to {LOC} .", "the office of {ORG} is in {LOC} ."]


def tagged_sentences(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words, tags = [], []
        for part in rng.choice(TEMPLATES).split():
            if part.startswith("{"):
                typ = part[1:-1]
                name = rng.choice({"PER": PER, "LOC": LOC, "ORG": ORG}[typ]).split()
                words += name
                tags += [f"B-{typ}"] + [f"I-{typ}"] * (len(name) - 1)
            else:
                words.append(part)
                tags.append("O")
        out.append((words, tags))
    return out


def write_conll(sents, path):
    path.write_text("-DOCSTART- -X- -X- O\n\n" + "".join(
        "".join(f"{w} NN {t}\n" for w, t in zip(ws, ts)) + "\n" for ws, ts in sents))
    return path


# ---- readers ----------------------------------------------------------------------------------
def test_conll_reader_columns_docstart_crlf_gzip(tmp_path):
    text = "-DOCSTART- -X- -X- O\r\n\r\nEU NNP B-NP B-ORG\r\nrejects VBZ B-VP O\r\n\r\n\r\nPeter\tNNP\tB-NP\tB-PER\r\n"
    p = tmp_path / "a.txt.gz"
    p.write_bytes(gzip.compress(text.encode()))
    c = read_conll(p)
    assert c.words == [["EU", "rejects"], ["Peter"]] and c.tags == [["B-ORG", "O"], ["B-PER"]]
    assert c.lines == [[3, 4], [7]] and c.docs == 1 and c.tokens == 3
    assert read_conll(p, word_col=0, tag_col=1).tags == [["NNP", "VBZ"], ["NNP"]]
    assert read_conll(p, with_tags=False).tags is None


def test_conllu_reader_skips_multiword_tokens_and_empty_nodes(tmp_path):
    rows = [["1", "I", "I", "PRON", "PRP"], ["2-3", "don't", "_", "_", "_"], ["2", "do", "do", "AUX", "VBP"],
            ["3", "n't", "not", "PART", "RB"], ["3.1", "x", "x", "X", "X"], ["4", "know", "know", "VERB", "VB"]]
    body = "".join("\t".join(r + ["_"] * 5) + "\n" for r in rows)
    p = tmp_path / "x.conllu"
    p.write_text(f"# newdoc id = d1\n# text = I don't know\n{body}\n")
    c = read_conll(p)
    assert c.words == [["I", "do", "n't", "know"]] and c.tags == [["PRON", "AUX", "PART", "VERB"]]
    assert c.lines == [[3, 5, 6, 8]] and c.docs == 1
    assert read_conll(p, tag_col="xpos").tags == [["PRP", "VBP", "RB", "VB"]]


def test_bad_files_name_the_line(tmp_path):
    (tmp_path / "cols.txt").write_text("EU NNP B-ORG\nrejects O\n")
    with pytest.raises(UserError, match=r"cols.txt: line 2 has 2 columns but line 1 has 3"):
        read_conll(tmp_path / "cols.txt")
    (tmp_path / "u.conllu").write_text("# c\n1\tI\tPRON\n")
    with pytest.raises(UserError, match=r"line 2 has 3 tab-separated columns; CoNLL-U needs 10"):
        read_conll(tmp_path / "u.conllu")
    (tmp_path / "docs.txt").write_text("-DOCSTART- -X- -X- O\n\n-DOCSTART- -X- -X- O\n\n")
    with pytest.raises(UserError, match="no sentences found"):
        read_conll(tmp_path / "docs.txt")
    with pytest.raises(UserError, match="tag column 5 is out of range; the file has 3 columns"):
        read_conll(tmp_path / "cols.txt", tag_col=5)


# ---- tag schemes ------------------------------------------------------------------------------
def test_spans_read_tags_as_conlleval_does():
    # I- after O or after another type starts an entity; B- always does
    assert spans(["I-PER", "I-PER", "O", "B-LOC", "I-ORG", "B-ORG", "I-ORG"]) == [
        ("PER", 0, 2), ("LOC", 3, 4), ("ORG", 4, 5), ("ORG", 5, 7)]
    assert spans(["S-PER", "B-LOC", "E-LOC", "I-LOC", "E-LOC", "S-PER", "S-PER"]) == [
        ("PER", 0, 1), ("LOC", 1, 3), ("LOC", 3, 5), ("PER", 5, 6), ("PER", 6, 7)]


def test_bio_bioes_iob1_conversions():
    bio = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    bioes = ["B-PER", "E-PER", "O", "S-LOC", "B-LOC", "E-LOC"]
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC"]
    assert to_scheme(bio, "bioes") == bioes and to_scheme(bioes, "bio") == bio
    assert to_scheme(iob1, "bio") == bio and to_scheme(bio, "iob1") == iob1
    assert to_scheme(["NN", "VB"], "none") == ["NN", "VB"]
    assert detect_scheme([bio]) == "bio" and detect_scheme([bioes]) == "bioes"
    assert detect_scheme([["NOUN", "O"]]) == "none" and detect_scheme([["O"]]) == "none"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["PER", "LOC"]), st.integers(0, 3), st.integers(1, 3)), max_size=5))
def test_every_scheme_keeps_the_entities(parts):
    found, pos = [], 0
    for typ, gap, length in parts:  # adjacent entities (gap 0) of the same type included
        found.append((typ, pos + gap, pos + gap + length))
        pos += gap + length
    for scheme in ("bio", "iob1", "bioes"):
        assert spans(from_spans(found, pos, scheme)) == found


def test_unknown_scheme_and_tags_outside_the_scheme(tmp_path):
    c = read_conll(write_conll([(["John", "ran"], ["B-PER", "O"]), (["Rome"], ["S-LOC"])], tmp_path / "a.txt"))
    with pytest.raises(UserError, match="unknown tag scheme 'bilou'; choose one of auto, bio"):
        check_scheme(c, "bilou")
    with pytest.raises(UserError, match=r"a.txt: line 6: tag 'S-LOC' is not a BIO tag .*--scheme none"):
        check_scheme(c, "bio")
    assert check_scheme(c, "auto") == "bioes" and check_scheme(c, "bioes") == "bioes"


# ---- metrics ----------------------------------------------------------------------------------
def test_entity_f1_equals_conlleval_on_a_hand_written_example():
    gold = [["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"],  # John Smith lives in New York .
            ["B-ORG", "O", "B-MISC", "O"],                        # EU rejects German call
            ["B-PER", "I-PER"],                                   # Peter Blackburn
            ["O", "O"]]
    pred = [["B-PER", "I-PER", "O", "O", "B-LOC", "O", "O"],      # PER right; LOC boundary wrong ("New")
            ["B-LOC", "O", "B-MISC", "O"],                        # type wrong (LOC for ORG); MISC right
            ["I-PER", "I-PER"],                                   # I- after O starts an entity: right
            ["B-ORG", "O"]]                                       # a spurious ORG
    # by hand: gold entities PER 2, LOC 1, ORG 1, MISC 1 = 5; predicted PER 2, LOC 2, MISC 1, ORG 1 = 6;
    # correct PER 2 + MISC 1 = 3. precision 3/6, recall 3/5, F1 = 2 * .5 * .6 / 1.1; tokens 11 of 15 right.
    # `perl conlleval.pl` on the same example prints: found: 6 phrases; correct: 3; accuracy 73.33%;
    # precision 50.00%; recall 60.00%; FB1 54.55; LOC 0.00, MISC 100.00, ORG 0.00, PER 100.00.
    m = entity_metrics(gold, pred)
    assert (m["correct"], m["predicted"], m["gold"]) == (3, 6, 5)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.6)
    assert m["f1"] == pytest.approx(2 * 0.5 * 0.6 / 1.1) and round(100 * m["f1"], 2) == 54.55
    assert m["accuracy"] == pytest.approx(11 / 15) and m["tokens"] == 15
    per = {t: (s["correct"], s["predicted"], s["gold"], s["f1"]) for t, s in m["per_type"].items()}
    assert per == {"LOC": (0, 2, 1, 0.0), "MISC": (1, 1, 1, 1.0), "ORG": (0, 1, 1, 0.0), "PER": (2, 2, 2, 1.0)}
    # the same entities written in BIOES count the same
    m2 = entity_metrics([to_scheme(g, "bioes") for g in gold], [to_scheme(p, "bioes") for p in pred])
    assert (m2["correct"], m2["predicted"], m2["gold"]) == (3, 6, 5)


# ---- the model --------------------------------------------------------------------------------
def _pipeline(sents, char="lstm", crf=True, lowercase=True, hidden=16):
    words = Vocab.build([[w.lower() if lowercase else w for w in s] for s, _ in sents])
    chars = Vocab.build(ch for s, _ in sents for w in s for ch in w) if char != "none" else None
    tags = Vocab.labels(t for _, ts in sents for t in to_scheme(ts, "bioes"))
    case_dim = 4 if lowercase else 0
    in_dim = 16 + (12 if chars else 0) + case_dim
    enc = EncoderConfig(vocab_size=0, input_dim=in_dim, hidden=hidden, bidirectional=True)
    cfg = TaggerConfig(enc, len(words), 16, len(tags), char, len(chars) if chars else 0, 8, 12, case_dim, crf, 0.0)
    data = {"scheme": "bio", "model_scheme": "bioes", "lowercase": lowercase}
    return TagPipeline(words, chars, tags, Tagger(cfg), data)


@pytest.mark.parametrize("char,crf", [("lstm", True), ("cnn", False), ("none", True)])
def test_padding_changes_nothing(char, crf):
    """A sentence's emissions, loss and tags are the same alone and in a batch padded for longer ones."""
    torch.manual_seed(0)
    sents = tagged_sentences(6, seed=3)
    pipe = _pipeline(sents, char, crf)
    pipe.model.double().eval()
    short = min(range(6), key=lambda i: len(sents[i][0]))
    alone = next(iter(pipe.batches([sents[short][0]], [sents[short][1]], bucket=False)))
    full = next(iter(pipe.batches([s for s, _ in sents], [t for _, t in sents], bucket=False)))
    assert full.words.shape[1] > alone.words.shape[1]  # there is padding
    n = alone.words.shape[1]
    with torch.no_grad():
        torch.testing.assert_close(pipe.model(full)[short, :n], pipe.model(alone)[0], rtol=0, atol=1e-10)
        torch.testing.assert_close(pipe.model.sentence_loss(full)[short], pipe.model.sentence_loss(alone)[0],
                                   rtol=0, atol=1e-10)
    assert pipe.model.decode(full)[short, :n].tolist() == pipe.model.decode(alone)[0].tolist()


@pytest.mark.parametrize("char,crf", [("lstm", True), ("cnn", False)])
def test_tagger_overfits_a_tiny_set(char, crf):
    torch.manual_seed(0)
    sents = tagged_sentences(12, seed=5)
    pipe = _pipeline(sents, char, crf, lowercase=False, hidden=32)
    batch = next(iter(pipe.batches([s for s, _ in sents], [t for _, t in sents])))
    opt = torch.optim.Adam(pipe.model.parameters(), lr=0.03)
    pipe.model.train()
    first = None
    for _ in range(80):
        loss = pipe.model.loss(batch)
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.02 * first
    assert pipe.predict([s for s, _ in sents]) == [t for _, t in sents]


def test_case_patterns():
    assert [case_of(w) for w in ["the", "Paris", "EU", "iPhone", "1996", "B-52", "."]] == [1, 2, 3, 4, 5, 6, 7]


# ---- the command line -------------------------------------------------------------------------
TINY = ["--embed", "16", "--hidden", "24", "--char-dim", "8", "--char-out", "16", "--batch", "16",
        "--save-every", "0", "--lr", "0.01", "--dropout", "0.1", "--embed-dropout", "0.1"]


@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    d = tmp_path_factory.mktemp("ner")
    write_conll(tagged_sentences(160, seed=1), d / "train.txt")
    write_conll(tagged_sentences(40, seed=2), d / "dev.txt")
    assert main(["tag", "train", "--train", str(d / "train.txt"), "--dev", str(d / "dev.txt"), *TINY,
                 "--epochs", "6", "--out", str(d / "run")]) == 0
    return d


def test_cli_train_eval_predict_round_trip(ner, capsys):
    run, dev = ner / "run", ner / "dev.txt"
    cfg = json.loads((run / "best" / "config.json").read_text())
    assert cfg["task"] == "tag" and cfg["model"]["crf"] and cfg["model"]["char"] == "lstm"
    assert cfg["data"]["scheme"] == "bio" and cfg["data"]["model_scheme"] == "bioes"
    capsys.readouterr()
    assert main(["tag", "eval", "--model", str(run), "--data", str(dev), "--json",
                 "--output", str(ner / "pred.txt")]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["sentences"] == 40 and m["f1"] > 0.9 and set(m["per_type"]) == {"PER", "LOC", "ORG"}
    rows = [s.split("\n") for s in (ner / "pred.txt").read_text().strip().split("\n\n")]
    gold = [[r.split()[1] for r in s] for s in rows]
    pred = [[r.split()[2] for r in s] for s in rows]
    assert gold == read_conll(dev).tags and entity_metrics(gold, pred)["f1"] == pytest.approx(m["f1"])
    # predict on the same file gives the same tags, in the training file's scheme (BIO)
    assert main(["tag", "predict", "--model", str(run), "--input", str(dev), "--format", "conll", "--json"]) == 0
    got = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [g["tags"] for g in got] == pred
    assert all(t[0] in "BIO" for g in got for t in g["tags"])
    assert main(["tag", "predict", "--model", str(run), "Mary lives in Berlin ."]) == 0
    assert capsys.readouterr().out == "Mary/B-PER lives/O in/O Berlin/B-LOC ./O\n"
    assert main(["tag", "eval", "--model", str(run), "--data", str(dev)]) == 0
    assert re.search(r"processed \d+ tokens with \d+ phrases.*FB1", capsys.readouterr().out, re.S)


def test_cli_pos_tagging_on_conllu(tmp_path, capsys):
    upos = {"the": "DET", "a": "DET", "dog": "NOUN", "cat": "NOUN", "runs": "VERB", "sleeps": "VERB", ".": "PUNCT"}
    rng = random.Random(0)
    sents = []
    for i in range(60):
        ws = [rng.choice(["the", "a"]), rng.choice(["dog", "cat"]), rng.choice(["runs", "sleeps"]), "."]
        sents.append(f"# sent_id = {i}\n" + "".join(f"{j + 1}\t{w}\t_\t{upos[w]}\t_\t_\t_\t_\t_\t_\n"
                                                    for j, w in enumerate(ws)))
    (tmp_path / "t.conllu").write_text("\n".join(sents) + "\n")
    out = tmp_path / "pos"
    assert main(["tag", "train", "--train", str(tmp_path / "t.conllu"), *TINY, "--epochs", "3", "--char-features",
                 "cnn", "--no-crf", "--lowercase", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["tag", "eval", "--model", str(out), "--data", str(tmp_path / "t.conllu"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["tokens"] == 240 and m["accuracy"] > 0.9 and "f1" not in m


def test_bad_input_is_one_clear_line(ner, tmp_path, capsys):
    (tmp_path / "cols.txt").write_text("EU NNP B-ORG\nrejects O\n\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "nodoc.txt").write_text("-DOCSTART- -X- -X- O\n\n")
    (tmp_path / "plain.txt").write_text("EU NNP ORG\nrejects VBZ O\n\n")
    (tmp_path / "newtag.txt").write_text("Rome NNP B-CITY\n\n")
    good = str(ner / "train.txt")
    train = ["tag", "train", *TINY, "--epochs", "1", "--out", str(tmp_path / "out"), "--train"]
    cases = [
        (train + [str(tmp_path / "cols.txt")], "cols.txt: line 2 has 2 columns but line 1 has 3"),
        (train + [str(tmp_path / "empty.txt")], "empty.txt: the file is empty"),
        (train + [str(tmp_path / "nodoc.txt")], "nodoc.txt: no sentences found"),
        (train + [good, "--scheme", "bilou"], "--scheme must be one of auto, bio, iob1, bioes, none, not 'bilou'"),
        (train + [str(tmp_path / "plain.txt"), "--scheme", "bio"], "line 1: tag 'ORG' is not a BIO tag"),
        (train + [good, "--dev", str(tmp_path / "newtag.txt")], "tag 'S-CITY' in the dev sentences never occurs"),
        (train + [good, "--char-features", "rnn"], "--char-features must be one of none, lstm, cnn, not 'rnn'"),
        (train + [good, "--tag-col", "7"], "tag column 7 is out of range"),
        (train + [good, "--char-out", "15"], "--char-out 15 must be even"),
        (train + [good, "--word-dropout", "1"], "--word-dropout must be in [0, 1)"),
        (["tag", "eval", "--model", str(ner / "run"), "--data", str(tmp_path / "cols.txt")], "line 2 has 2 columns"),
        (["tag", "eval", "--model", str(ner / "run"), "--data", good, "--tag-col", "1"], "look like 'none' tags"),
        (["tag", "predict", "--model", str(ner / "run")], "nothing to tag"),
    ]
    for argv, msg in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("seqlab: error: ") and len(err.strip().splitlines()) == 1, err
        assert msg in err, (msg, err)
        assert not (tmp_path / "out").exists()


# ---- the real data ----------------------------------------------------------------------------
def test_real_conll2003_and_ewt_readers(shared_data):
    d = shared_data / "tagging"
    train = read_conll(d / "conll2003" / "train.txt")
    assert (len(train), train.tokens, check_scheme(train, "auto")) == (14041, 203621, "bio")
    ents = [t for tags in train.tags for t, _, _ in spans(tags)]
    assert {t: ents.count(t) for t in ("PER", "LOC", "ORG", "MISC")} == {
        "PER": 6600, "LOC": 7140, "ORG": 6321, "MISC": 3438}
    assert [len(read_conll(d / "conll2003" / f)) for f in ("valid.txt", "test.txt")] == [3250, 3453]
    ewt = read_conll(d / "ud_english_ewt" / "en_ewt-ud-train.conllu.gz")
    assert (len(ewt), ewt.tokens, ewt.docs) == (12544, 204577, 540)
    assert len({t for tags in ewt.tags for t in tags}) == 17 and check_scheme(ewt, "auto") == "none"
