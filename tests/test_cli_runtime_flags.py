"""Every command that runs a model takes --device and --threads (one definition, cli/common.py)."""

import argparse

import pytest
import torch

from seqlab.cli import build_parser, main

COMPUTE = {"train", "eval", "predict", "generate", "ask"}
NUMPY_ONLY = {"scratch"}  # the from-scratch NumPy commands have no torch device


def _leaves(parser: argparse.ArgumentParser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for act in subs:
        for name, child in act.choices.items():
            yield from _leaves(child, (*path, name))


def _compute_commands():
    return [(path, p) for path, p in _leaves(build_parser())
            if path[-1] in COMPUTE and path[0] not in NUMPY_ONLY]


def test_every_compute_command_is_found():
    found = {" ".join(path) for path, _ in _compute_commands()}
    for task, actions in {"classify": ("train", "eval", "predict"), "lm": ("train", "eval", "generate"),
                          "translate": ("train", "eval", "predict"), "qa": ("train", "ask", "eval"),
                          "tag": ("train", "eval", "predict"), "forecast": ("train", "eval", "predict")}.items():
        for action in actions:
            assert f"{task} {action}" in found


@pytest.mark.parametrize("path", [" ".join(p) for p, _ in _compute_commands()])
def test_compute_command_accepts_device_and_threads(path):
    parser = dict((" ".join(p), q) for p, q in _compute_commands())[path]
    options = parser._option_string_actions
    assert "--device" in options and "--threads" in options, path
    # the same help everywhere: both come from common.add_runtime_args
    assert "CPU threads for torch" in options["--threads"].help
    required = []
    for act in parser._actions:
        if act.required and act.option_strings:
            required += [act.option_strings[-1], "x"]
        elif not act.option_strings and act.nargs not in ("?", "*", argparse.SUPPRESS):
            required.append("x")  # a positional such as the input file
    a = build_parser().parse_args([*path.split(), *required, "--device", "cpu", "--threads", "3"])
    assert a.device == "cpu" and a.threads == 3


def test_bad_runtime_values_are_one_line_errors(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["lm", "eval", "--model", "m", "--data", "d", "--device", "gpu"])
    assert e.value.code == 2
    assert "argument --device: unknown device 'gpu'" in capsys.readouterr().err
    assert main(["lm", "eval", "--model", "m", "--data", "d", "--threads", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqlab: error: --threads must be at least 0") and err.count("\n") == 1, err


def test_threads_is_applied_before_an_eval_command_runs(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        # the model does not exist: the command fails after --threads took effect
        assert main(["classify", "eval", "--model", str(tmp_path / "nope"), "--data", "x.csv",
                     "--threads", "2"]) == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert capsys.readouterr().err.startswith("seqlab: error: ")
