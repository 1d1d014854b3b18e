"""The CLI is a view of the configs: its defaults are theirs, --config reproduces a run, errors name flags."""

import argparse
import csv

import pytest
import yaml

from seqlab.cli import build_parser, main
from seqlab.pipelines.registry import TASKS, _load_all


def _train_parsers():
    """(task, train sub-parser) for every task whose train command is built from a config."""
    _load_all()
    top = build_parser()
    tasks = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for task, p in tasks.choices.items():
        acts = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if task in TASKS and acts and "train" in acts[0].choices:
            yield task, acts[0].choices["train"]


def test_every_cli_default_equals_the_config_default():
    checked = 0
    for task, p in _train_parsers():
        cfg_cls = TASKS[task].Config
        cfg, leaves = cfg_cls(), cfg_cls.leaf_names()
        for act in p._actions:
            if act.dest in leaves and act.default is not None:
                assert act.default == cfg.get(leaves[act.dest]), (task, act.dest, act.default)
                checked += 1
    assert checked > 20


def test_config_leaf_names_are_unique_per_task():
    for task, cls in TASKS.items():
        import dataclasses
        names = []
        for f in dataclasses.fields(cls.Config):
            sub = getattr(cls.Config(), f.name)
            names += [g.name for g in dataclasses.fields(sub)] if dataclasses.is_dataclass(sub) else [f.name]
        assert len(names) == len(set(names)), (task, sorted(n for n in names if names.count(n) > 1))


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([("good fun", "p"), ("bad dull", "n")] * 10)
    return path


def test_run_yaml_reproduces_a_run_and_flags_win(csv_file, tmp_path):
    base = ["classify", "train", "--train", str(csv_file), "--epochs", "1", "--batch", "4"]
    assert main(base + ["--hidden", "12", "--embed", "6", "--out", str(tmp_path / "a")]) == 0
    run = yaml.safe_load((tmp_path / "a" / "run.yaml").read_text())
    assert run["task"] == "classify" and run["model"]["hidden"] == 12 and run["train"]["batch"] == 4
    assert main(["classify", "train", "--train", str(csv_file), "--config", str(tmp_path / "a" / "run.yaml"),
                 "--embed", "8", "--out", str(tmp_path / "b")]) == 0
    again = yaml.safe_load((tmp_path / "b" / "run.yaml").read_text())
    assert again["model"]["hidden"] == 12 and again["model"]["embed"] == 8 and again["train"]["epochs"] == 1


def test_bad_config_files_and_values_are_one_line_errors(csv_file, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  hiden: 3\n")
    args = ["classify", "train", "--train", str(csv_file), "--out", str(tmp_path / "o")]
    assert main(args + ["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.hiden is not a setting" in err and "bad.yaml" in err
    bad.write_text("train:\n  epochs: many\n")
    assert main(args + ["--config", str(bad)]) == 2
    assert "train.epochs must be a whole number" in capsys.readouterr().err
    for flag, value, want in [("--lr", "nan", "--lr must be a finite number"),
                              ("--dropout", "1.5", "--dropout must be in [0.0, 1.0)"),
                              ("--max-len", "-5", "--max-len must be at least 0"),
                              ("--threads", "-2", "--threads must be at least 0"),
                              ("--dev-fraction", "1.5", "--dev-fraction must be in (0.0, 1.0)")]:
        assert main(args + [flag, value]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"seqlab: error: {want}") and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_time_accepts_units(csv_file, tmp_path):
    assert main(["classify", "train", "--train", str(csv_file), "--time", "1s", "--hidden", "4", "--embed", "4",
                 "--out", str(tmp_path / "t")]) == 0
    assert yaml.safe_load((tmp_path / "t" / "run.yaml").read_text())["train"]["time"] == pytest.approx(1 / 60)


def test_tensorboard_logger_writes_events(csv_file, tmp_path):
    pytest.importorskip("tensorboard")
    assert main(["classify", "train", "--train", str(csv_file), "--epochs", "1", "--hidden", "4", "--embed", "4",
                 "--logger", "tensorboard", "--out", str(tmp_path / "tb")]) == 0
    assert list((tmp_path / "tb" / "tensorboard").glob("events.out.tfevents.*"))
