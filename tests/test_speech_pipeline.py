"""The speech pipeline and CLI end to end on generated "words" (tone sequences), listings and splits, bad input."""

import csv
import json

import numpy as np
import pytest

from seqlab.cli import main
from seqlab.data.connected import make_connected
from seqlab.data.utterances import from_names, list_utterances, name_pattern, normalise_text, read_manifest, split
from seqlab.errors import UserError

sf = pytest.importorskip("soundfile")
pytest.importorskip("jiwer")
RATE = 8000
TONES = {"a": 400.0, "b": 1000.0, "c": 1800.0}  # each letter is a tone: a word is its letters' tones in a row


def say(word, rng):
    parts = []
    for ch in word:
        t = np.arange(int(rng.uniform(0.08, 0.14) * RATE)) / RATE
        parts.append(rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * TONES[ch] * rng.uniform(0.97, 1.03) * t))
    x = np.concatenate(parts)
    return (x + rng.normal(0, 0.01, len(x))).astype(np.float32)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    for word in ("ab", "ba", "ca"):
        for i in range(16):
            sf.write(folder / f"{word}_{'x' if i % 2 else 'y'}_{i}.wav", say(word, rng), RATE, subtype="PCM_16")
    return folder


FAST = dict(epochs=25, hidden=24, layers=1, batch=8, patience=0, lr=1e-2, normalize="global", feature_cache="none",
            feats="logmel", speed_perturb="", vtlp=0.0)  # the defaults (MFCC, cmn, perturbations): see below


@pytest.fixture(scope="module")
def trained(tones):
    from seqlab.pipelines import Recognizer

    return Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", test_where="index<2",
                          log=lambda s: None, **FAST)


def test_train_predict_round_trip_on_generated_words(trained, tones, tmp_path):
    from seqlab.pipelines import Recognizer

    r = trained.results
    assert r["test_n"] == 6 and r["test_accuracy"] == 1.0 and r["test_beam_wer"] == 0.0
    clips = sorted(tones.glob("*_0.wav")) + sorted(tones.glob("*_1.wav"))
    assert trained.predict(clips) == [p.name.split("_")[0] for p in clips]
    trained.save(tmp_path / "m")
    again = Recognizer.load(tmp_path / "m")
    import seqlab

    assert isinstance(seqlab.load(tmp_path / "m"), Recognizer)
    assert again.predict(clips[0]) == clips[0].name.split("_")[0]
    (res,) = again.transcribe(clips[0], beam=4)
    (word,) = res["words"]
    assert word["word"] == res["text"] and 0.5 < word["confidence"] <= 1 and 0 <= word["start"] < word["end"] <= 0.3
    m = again.evaluate(tones, where="index<2")
    assert m["accuracy"] == 1.0 and m["n"] == 6 and m["wer"] == 0.0 and m["cer"] == 0.0


def test_a_lexicon_and_word_units_and_the_classify_head(trained, tones):
    from seqlab.pipelines import Recognizer

    clip = sorted(tones.glob("ab_*_0.wav"))[0]
    assert trained.predict(clip, lexicon=["ab", "ba"]) == "ab"
    assert trained.predict(clip, lexicon=["ba", "ca"]) in ("ba", "ca", "")  # only its words, or nothing
    words = Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", test_where="index<2", units="word",
                           log=lambda s: None, **FAST)
    assert words.units == ["<blank>", "ab", "ba", "ca"] and words.results["test_accuracy"] >= 0.8
    clf = Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", test_speaker="x", head="classify",
                         log=lambda s: None, **(FAST | {"epochs": 12}))
    assert clf.results["test_n"] == 24 and clf.results["test_accuracy"] >= 0.9
    assert "test_beam_wer" not in clf.results
    (res,) = clf.transcribe(clip)
    assert res["text"] == "ab" and res["words"][0]["confidence"] > 0.5


def test_cli_train_eval_predict(tones, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEQLAB_CACHE", str(tmp_path / "cache"))
    rows = [("path", "transcript")] + [(str(p.relative_to(tones.parent)), p.name.split("_")[0])
                                       for p in sorted(tones.glob("*.wav"))]
    manifest = tmp_path / "all.csv"
    with open(tones.parent / "all.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    manifest = tones.parent / "all.csv"
    out = tmp_path / "run"
    args = ["speech", "train", "--data", str(manifest), "--out", str(out), "--epochs", "25", "--hidden", "24",
            "--layers", "1", "--batch", "8", "--patience", "0", "--lr", "0.01", "--normalize", "global",
            "--trim-db", "0", "--unidirectional", "--threads", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "best dev accuracy" in printed and (out / "best").is_dir() and (out / "results.json").is_file()
    assert list((tmp_path / "cache").rglob("*.npy"))  # features cached per file
    assert main(["speech", "eval", "--model", str(out), "--data", str(manifest), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 48 and m["accuracy"] >= 0.9 and {"wer", "cer"} <= set(m)
    assert main(["speech", "eval", "--model", str(out), "--data", str(tones), "--label-from-name",
                 "{label}_{speaker}_{index}", "--speaker", "x", "--beam", "4"]) == 0
    assert "24 recordings" in capsys.readouterr().out
    clip = sorted(tones.glob("ba_*.wav"))[0]
    assert main(["speech", "predict", "--model", str(out), str(clip)]) == 0
    text, words, path = capsys.readouterr().out.strip().split("\t")
    assert text == "ba" and words.startswith("(ba 0.") and path == str(clip)
    assert main(["speech", "predict", "--model", str(out), str(clip), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["words"][0]["word"] == "ba"
    long = tmp_path / "long.wav"  # three words in a row, read 50 ms at a time with the state carried
    sf.write(long, np.concatenate([sf.read(p)[0] for p in sorted(tones.glob("*_1.wav"))]), RATE)
    assert main(["speech", "predict", "--model", str(out), str(long), "--stream", "--chunk-s", "0.05"]) == 0
    *partial, last = capsys.readouterr().out.strip().split("\n")
    assert main(["speech", "predict", "--model", str(out), str(long), "--beam", "1", "--lexicon", "none"]) == 0
    assert last == capsys.readouterr().out.strip() and len(partial) >= 1 and partial[-1].split()[0].endswith("s")


def test_streaming_equals_reading_the_whole_file_and_needs_a_unidirectional_model(trained, tones):
    from seqlab.pipelines import Recognizer

    uni = Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", bidirectional=False, log=lambda s: None,
                         **(FAST | {"epochs": 3, "trim_db": 0.0}))
    clip = sorted(tones.glob("ca_*.wav"))[0]
    *parts, final = uni.stream(clip, 0.03)
    assert len(parts) > 3 and parts[-1]["end"] == pytest.approx(len(sf.read(clip)[0]) / RATE, abs=0.011)
    whole = uni.transcribe(clip, beam=1, lexicon=False)[0]  # a stream decodes greedily
    assert final["text"] == whole["text"] and len(final["words"]) == len(whole["words"])
    for a, b in zip(final["words"], whole["words"]):
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5) and (a["start"], a["end"]) == (
            b["start"], b["end"])
    with pytest.raises(UserError, match="unidirectional"):
        list(trained.stream(clip))


@pytest.mark.parametrize("problem,match", [
    ("missing_path", "line 3: no such audio file"), ("not_wav", "not an audio file"),
    ("no_column", "no column named 'transcript'"), ("empty_text", "line 2: the transcript is empty"),
    ("silent", "silent")])
def test_bad_training_input_is_one_line_exit_2(tmp_path, capsys, problem, match, tones):
    good = sorted(tones.glob("*.wav"))[:4]
    rows = [("path", "transcript")] + [(str(p), p.name[:2]) for p in good]
    if problem == "missing_path":
        rows[2] = ("nowhere/x.wav", "ab")
    elif problem == "not_wav":
        (tmp_path / "fake.wav").write_text("hello")
        rows[1] = ("fake.wav", "ab")
    elif problem == "no_column":
        rows[0] = ("path", "text")
    elif problem == "empty_text":
        rows[1] = (rows[1][0], "")
    elif problem == "silent":
        sf.write(tmp_path / "quiet.wav", np.zeros(2000, np.float32), RATE)
        rows[1] = ("quiet.wav", "ab")
    with open(tmp_path / "d.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    code = main(["speech", "train", "--data", str(tmp_path / "d.csv"), "--out", str(tmp_path / "o"),
                 "--epochs", "1", "--feature-cache", "none"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("seqlab: error:") and match in err, err


def test_names_patterns_and_splits(tones):
    utts = from_names(tones, "{label}_{speaker}_{index}")
    assert len(utts) == 48 and utts[0].fields.keys() == {"label", "speaker", "index"}
    rest, test = split(utts, where="index<2")
    assert len(test) == 6 and len(rest) == 42 and all(int(u.fields["index"]) < 2 for u in test)
    rest, test = split(utts, speaker="x")
    assert {u.fields["speaker"] for u in test} == {"x"} and len(test) == 24
    assert len(split(utts, where="label==ab")[1]) == 16
    for kw, match in [({"where": "index<0"}, "selects no recording"), ({"where": "index>=0"}, "selects every"),
                      ({"where": "accent==x"}, "no field 'accent'"), ({"where": "index 5"}, "FIELD OP VALUE")]:
        with pytest.raises(UserError, match=match):
            split(utts, **kw)
    with pytest.raises(UserError, match="does not match"):
        from_names(tones, "{label}-{index}")
    with pytest.raises(UserError, match="no {label} field"):
        name_pattern("{speaker}_{index}")
    with pytest.raises(UserError, match="--label-from-name"):
        list_utterances(tones)
    assert normalise_text("Call  42 now", spell_digits=True) == "call four two now"


def test_manifest_paths_are_relative_to_the_csv(tmp_path, tones):
    (tmp_path / "sub").mkdir()
    clip = sorted(tones.glob("*.wav"))[0]
    (tmp_path / "sub" / "c.wav").write_bytes(clip.read_bytes())
    (tmp_path / "sub" / "m.csv").write_text("path,transcript,speaker\nc.wav,AB,x\n" + f"{clip},ab,y\n")
    utts = read_manifest(tmp_path / "sub" / "m.csv")
    assert [u.path for u in utts] == [tmp_path / "sub" / "c.wav", clip] and utts[1].fields == {"speaker": "y"}


def test_connected_utterances_are_seeded_and_spoken_by_one_speaker(tones, tmp_path):
    utts = from_names(tones, "{label}_{speaker}_{index}")
    path = make_connected(utts, tmp_path / "c", count=6, min_words=2, max_words=3, seed=4, noise=0.001)
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 6 and all(2 <= len(r["transcript"].split()) <= 3 for r in rows)
    for r in rows:
        x, rate = sf.read(tmp_path / "c" / r["path"])
        assert rate == RATE and len(x) > RATE * (0.05 * 3 + 0.16 * 2) and r["speaker"] in ("x", "y")
    again = make_connected(utts, tmp_path / "d", count=6, min_words=2, max_words=3, seed=4, noise=0.001)
    assert [r["transcript"] for r in csv.DictReader(open(again))] == [r["transcript"] for r in rows]
    assert (tmp_path / "c" / "conn_00003.wav").read_bytes() == (tmp_path / "d" / "conn_00003.wav").read_bytes()


def test_bad_settings_name_their_flag(tmp_path, capsys, tones):
    for flag, value, want in [("--speed-perturb", "fast", "--speed-perturb must be speeds in [0.5, 2]"),
                              ("--stride", "0", "--stride must be in [1, 16]"),
                              ("--trim-db", "-3", "--trim-db must be in [0.0, 120.0]")]:
        code = main(["speech", "train", "--data", str(tones), "--label-from-name", "{label}_{speaker}_{index}",
                     "--out", str(tmp_path / "o"), flag, value])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and want in err, err
    assert not (tmp_path / "o").exists()


def test_inspect_and_the_speech_figure(trained, tones, tmp_path):
    from seqlab.viz.speech_plot import plot_speech

    clip = sorted(tones.glob("ab_*_0.wav"))[0]
    v = trained.inspect(clip)
    steps = v["log_probs"].shape[0]
    assert v["hidden"].shape == (steps, 48) and v["frames"].shape[1] == 40 and v["text"] == "ab"
    assert [v["units"][i] for i in v["labels"]] == ["a", "b"] and all(0 <= s < e <= steps for s, e in v["spans"])
    out = plot_speech(v, tmp_path / "s.png")
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"


def test_vocal_tract_length_perturbation_trains_from_power_spectra(tones):
    from seqlab.pipelines import Recognizer

    rec = Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", test_where="index<2", log=lambda s: None,
                         **(FAST | {"vtlp": 0.1, "normalize": "utterance"}))
    assert rec.results["test_accuracy"] == 1.0 and rec.config.train.vtlp == 0.1
    rec = Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", test_where="index<2", log=lambda s: None,
                         **(FAST | {"vtlp": 0.1, "speed_perturb": "0.9,1.1", "epochs": 3}))
    assert rec.data["stats"] and len(rec.data["stats"]["mean"]) == 40  # global statistics of the unwarped frames
    cmn = Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", test_where="index<2", log=lambda s: None,
                         **(FAST | {"vtlp": 0.1, "normalize": "cmn"}))
    assert cmn.results["test_accuracy"] == 1.0 and max(abs(m) for m in cmn.data["stats"]["mean"]) < 1e-6
    x = cmn.frames([sorted(tones.glob("ab_*.wav"))[0]])[0]  # each recording less its own mean, over the training std
    assert float(x.mean(0).abs().max()) < 1e-5 and float(x.std(0).mean()) != pytest.approx(1.0, abs=1e-3)


def test_the_default_decoding_is_chosen_from_the_training_words():
    from seqlab.pipelines.speech_config import decoding_default

    digits = ["seven", "one two", "two seven one"] * 3
    assert decoding_default(digits, "auto", "ctc", "char")[0] == {"beam": 8, "lexicon": "train"}
    open_vocab = digits + ["a word said once"]
    assert decoding_default(open_vocab, "auto", "ctc", "char")[0] == {"beam": 1, "lexicon": None}
    assert decoding_default(open_vocab, "train", "ctc", "char")[0] == {"beam": 8, "lexicon": "train"}
    assert decoding_default(digits, "none", "ctc", "char")[0] == {"beam": 1, "lexicon": None}
    many = [f"w{i}" for i in range(1001)] * 3  # more than CLOSED_WORDS distinct words: open
    assert decoding_default(many, "auto", "ctc", "char")[0]["lexicon"] is None
    assert decoding_default(digits, "auto", "classify", "char")[0]["beam"] == 1
    assert decoding_default(digits, "auto", "ctc", "word")[0]["beam"] == 1  # word units are the words already


def test_a_run_decodes_with_its_recorded_default_unless_told_otherwise(trained, tones, monkeypatch):
    assert trained.data["decoding"] == {"beam": 8, "lexicon": "train"}  # ab, ba, ca: 10 times each
    assert trained.decoding_name() == "beam 8, lexicon train"
    assert trained.decoding_name(1, False) == "greedy" and trained.decoding_name(4, "none") == "beam 4"
    seen = []
    from seqlab.decode import ctc as ctc_decode

    real = ctc_decode.beam_search
    monkeypatch.setattr(ctc_decode, "beam_search", lambda o, b, p, lex: seen.append((b, lex)) or real(o, b, p, lex))
    clip = sorted(tones.glob("ab_*_0.wav"))[0]
    assert trained.predict(clip) == "ab" and seen[-1][0] == 8 and seen[-1][1] is not None
    n = len(seen)
    assert trained.predict(clip, beam=1, lexicon=False) == "ab" and len(seen) == n  # greedy: no beam search
    old = dict(trained.data)
    old.pop("decoding")  # a checkpoint from before the choice was recorded decodes greedily
    monkeypatch.setattr(trained, "data", old)
    assert trained.decoding == {"beam": 1, "lexicon": None} and trained.predict(clip) == "ab" and len(seen) == n
    r = trained.results
    assert {"test_accuracy", "test_greedy_accuracy", "test_beam_accuracy"} <= set(r)


def test_the_defaults_are_the_speaker_independent_settings(tones):
    from seqlab.pipelines import Recognizer

    lines = []
    rec = Recognizer.fit(tones, label_from_name="{label}_{speaker}_{index}", test_where="index<2", epochs=1,
                         hidden=8, layers=1, feature_cache="none", log=lines.append)
    assert rec.spec.kind == "mfcc" and rec.spec.dim == 13 and rec.spec.trim_db == 40
    assert rec.data["normalize"] == "cmn" and len(rec.data["stats"]["std"]) == 13
    assert rec.config.train.speeds() == [0.9, 1.1] and rec.config.train.vtlp == 0.1
    assert any("speed 0.9" in x for x in lines) and any("vocal-tract-length" in x for x in lines)
    assert rec.data["decoding"] == {"beam": 8, "lexicon": "train"}
