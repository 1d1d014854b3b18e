"""The Python API as a notebook uses it: train, predict, evaluate, save, load in a few public lines."""

import csv

import pytest

import seqlab
from seqlab.pipelines import Classifier, ClassifyConfig, ConfigError


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    good = ["a fine warm film", "great fun and warm", "fine acting , great story", "warm and great"]
    bad = ["a dull cold film", "awful and dull", "cold story , awful acting", "dull and awful"]
    rows = [(t, "pos") for t in good] * 6 + [(t, "neg") for t in bad] * 6
    return _write(d / "train.csv", rows), _write(d / "test.csv", rows[::5]), d


def test_six_lines_train_predict_evaluate_save_load(files):
    train, test, d = files
    clf = Classifier.fit(train, epochs=15, hidden=16, embed=16, batch=8, lr=0.01, log=lambda s: None)
    assert clf.predict(["great and warm", "awful and cold"]) == ["pos", "neg"]
    assert clf.evaluate(test)["accuracy"] == 1.0
    clf.save(d / "model")
    assert seqlab.load(d / "model").predict("dull and awful") == "neg"


def test_fit_from_python_objects_in_memory(tmp_path):
    texts = ["good", "bad", "good good", "bad bad"] * 10
    labels = ["p", "n", "p", "n"] * 10
    clf = Classifier.fit((texts, labels), epochs=20, hidden=8, embed=8, batch=8, lr=0.01, log=lambda s: None)
    assert clf.results["dev_accuracy"] == 1.0 and clf.history and "loss" in clf.history[0]
    assert not list(tmp_path.iterdir())  # nothing written anywhere without out=


def test_config_round_trips_and_names_bad_parameters(tmp_path):
    cfg = ClassifyConfig().with_values(hidden=32, lr=1e-3, time="90s")
    assert cfg.train.time == 1.5
    assert ClassifyConfig.from_yaml(cfg.to_yaml()) == cfg
    assert ClassifyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"train\.lr must be greater than 0"):
        ClassifyConfig().with_values(lr=-1.0).validate()
    with pytest.raises(ConfigError, match=r"model\.dropout must be in \[0.0, 1.0\)"):
        ClassifyConfig().with_values(dropout=1.5).validate()
    with pytest.raises(ConfigError, match=r"model\.hiden is not a setting"):
        ClassifyConfig.from_dict({"model": {"hiden": 3}})
    with pytest.raises(ConfigError, match=r"train\.epochs must be a whole number"):
        ClassifyConfig.from_dict({"train": {"epochs": "many"}})
    with pytest.raises(ConfigError, match=r"hiden is not a setting"):
        Classifier.fit(("a", "b"), hiden=3)
