"""The Python API of translation: train, predict, evaluate, save, load in a few public lines."""

import itertools
import json

import pytest

import seqlab
from seqlab.cli import main
from seqlab.pipelines import ConfigError, TranslateConfig, Translator

ADJ = dict(red="rouge", big="grand", small="petit", blue="bleu", old="vieux")
NOUN = dict(cat="chat", dog="chien", bird="oiseau", car="camion", tree="arbre")
VERB = dict(sleeps="dort", eats="mange", runs="court")
PAIRS = [(f"the {a} {n} {v}", f"le {NOUN[n]} {ADJ[a]} {VERB[v]}") for a, n, v in itertools.product(ADJ, NOUN, VERB)]
TINY = dict(hidden=32, embed=16, batch=8, lr=0.01, dropout=0.0, patience=0, save_every=0, log=lambda s: None)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("api_translate")
    for name, rows in (("train.tsv", PAIRS), ("dev.tsv", PAIRS[::4])):
        (d / name).write_text("en\tfr\n" + "".join(f"{s}\t{t}\n" for s, t in rows))
    return d / "train.tsv", d / "dev.tsv", d


def test_six_lines_train_predict_evaluate_save_load(files):
    train, dev, d = files
    tr = Translator.fit(train, dev, src_col="en", tgt_col="fr", epochs=15, **TINY)
    assert tr.predict(["the red cat sleeps", "the old tree runs"]) == ["le chat rouge dort", "le arbre vieux court"]
    assert tr.evaluate(dev, beam=3)["bleu"] > 99
    tr.save(d / "model")
    assert seqlab.load(d / "model").predict("the big dog eats", beam=3) == "le chien grand mange"
    assert tr.results["valid_greedy_exact_match"] == 1.0 and "test_greedy_bleu" not in tr.results


def test_fit_from_pairs_in_memory_holds_out_valid_and_test(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tr = Translator.fit(PAIRS * 2, epochs=2, valid_metric="loss", beam=2, **TINY)
    assert {"valid_greedy_bleu", "valid_beam2_chrf", "test_greedy_exact_match"} <= set(tr.results)
    assert tr.history and "loss" in tr.history[0]
    assert tr.evaluate(PAIRS[:5])["n"] == 5
    assert not list(tmp_path.iterdir())  # nothing written anywhere without out=


def test_config_round_trips_and_names_bad_parameters():
    cfg = TranslateConfig().with_values(attention="dot", dec_hidden=64, valid_metric="loss", time="2m")
    assert cfg.train.time == 2.0 and cfg.model.attention == "dot"
    assert TranslateConfig.from_yaml(cfg.to_yaml()) == cfg
    assert TranslateConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"train\.label_smoothing must be in \[0.0, 1.0\)"):
        TranslateConfig().with_values(label_smoothing=1.0).validate()
    with pytest.raises(ConfigError, match=r"model\.attention must be one of"):
        Translator.fit(PAIRS, attention="luong")
    with pytest.raises(ConfigError, match=r"beams is not a setting"):
        Translator.fit(PAIRS, beams=3)


def test_time_without_epochs_trains_and_writes_best(files, tmp_path):
    train, _, _ = files
    out = tmp_path / "timed"
    assert main(["translate", "train", "--data", str(train), "--src-col", "en", "--tgt-col", "fr", "--time", "0.02",
                 "--hidden", "16", "--embed", "8", "--batch", "16", "--save-every", "0", "--out", str(out)]) == 0
    assert (out / "best" / "model.safetensors").is_file() and (out / "run.yaml").is_file()
    assert json.loads((out / "best" / "config.json").read_text())["train"]["epochs"] == 0  # until the time is up
