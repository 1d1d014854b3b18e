"""Fault injection on the command line: every numeric flag of every `train` command, and of
`seqlab scratch train | gradcheck | vanishing`, set to 0, -1, nan and inf wherever that value is invalid
for the flag, must end as exit status 2 with exactly one line on stderr that names the flag: no
traceback, no file left in --out (or in the working directory), and the error comes before any data
is read or any training starts.

The flags are enumerated from the argparse parser (every action whose type turns "1" into an int or a
float), so a flag added later is covered without editing this file; `VALID` lists the values that are
meaningful for a flag (e.g. --clip 0 = no clipping), which are skipped.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

import seqlab.cli
import seqlab.scratch
import seqlab.scratch.charlm
import seqlab.scratch.vanishing
from seqlab.cli import build_parser, main
from seqlab.train.trainer import Trainer

VALUES = ("0", "-1", "nan", "inf")

# values that are valid for a flag (on every command that has it): those cases are not run
VALID_ALL = {
    "--weight-decay": {"0"}, "--clip": {"0"}, "--warmup": {"0"}, "--patience": {"0"}, "--eval-every": {"0"},
    "--time": {"0"}, "--seed": {"0"}, "--threads": {"0"}, "--save-every": {"0"}, "--dropout": {"0"},
    "--embed-dropout": {"0"}, "--sample-every": {"0"},
    # seq2seq: 0 = derived from another flag, or off
    "--max-tokens": {"0"}, "--max-src-len": {"0"}, "--dec-layers": {"0"}, "--dec-hidden": {"0"},
    "--dec-embed": {"0"}, "--attn-dim": {"0"}, "--teacher-forcing": {"0"}, "--tf-final": {"0"},
    "--tf-steps": {"0"}, "--label-smoothing": {"0"}, "--length-norm": {"0"}, "--test-fraction": {"0"},
    # tagger and forecaster
    "--word-dropout": {"0"}, "--head-dropout": {"0"},
    # speech: 0 = no trimming
    "--trim-db": {"0"},
}
# per command, where a flag means something else there
VALID_BY_COMMAND = {
    # --max-len 0 = keep whole examples (translate's --max-len is the output limit); --bag-buckets 0 = no bigrams
    "classify train": {"--max-len": {"0"}, "--bag-buckets": {"0"}},
    "lm train": {"--valid-tokens": {"0"},  # 0 = as many as the budget allows
                 # the AWD-LSTM regularisers: 0 = off
                 **{f"--{k}": {"0"} for k in ("weight-drop", "embed-row-dropout", "ar", "tar", "average")}},
    "qa train": {"--valid-fraction": {"0"}},  # 0 = no held-out questions, no abstain threshold
    "forecast train": {"--test": {"0"}, "--dev": {"0"},  # 0 = no test part / no dev part
                       "--calibration-folds": {"0"},  # 0 = calibrate the conformal intervals on the dev part
                       "--id-embed": {"0"}},  # 0 = no per-series embedding
    "speech train": {f"--{k}": {"0"} for k in ("time-masks", "time-mask-width", "freq-masks", "freq-mask-width",
                                               "vtlp")},
    "scratch gradcheck": {"--time": set()},  # the sequence length, not a time budget
    "scratch vanishing": {"--clip": set()},  # the clipping norm of the second table must be > 0
}

SCRATCH = ["scratch train", "scratch gradcheck", "scratch vanishing"]


def _train_commands() -> list[str]:
    """`<task> train` for every task of the parser (a task added later is in the matrix at once)."""
    top = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for task, p in top.choices.items():
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if task != "scratch" and subs and "train" in subs[0].choices:
            out.append(f"{task} train")
    return out


COMMANDS = [*_train_commands(), *SCRATCH]


@functools.lru_cache(maxsize=1)
def _parser() -> argparse.ArgumentParser:
    return build_parser()


def _subparser(path: str) -> argparse.ArgumentParser:
    p = _parser()
    for name in path.split():
        act = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        p = act.choices[name]
    return p


def _numeric(act: argparse.Action) -> bool:
    if act.type is None or not act.option_strings or act.nargs not in (None, "?"):
        return False
    if act.type in (int, float) or getattr(act.type, "kind", None) in (int, float):  # config.num_arg
        return True
    try:
        return isinstance(act.type("1"), (int, float)) and not isinstance(act.type("1"), bool)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False


def numeric_flags(path: str) -> list[str]:
    return [a.option_strings[-1] for a in _subparser(path)._actions if _numeric(a)]


def cases(path: str) -> list[tuple[str, str]]:
    valid = {**VALID_ALL, **VALID_BY_COMMAND.get(path, {})}
    return [(flag, v) for flag in numeric_flags(path) for v in VALUES if v not in valid.get(flag, set())]


# ---- tiny data files ----------------------------------------------------------------------------
def _write_data(d: Path) -> dict[str, list[str]]:
    words = "the cat sat on a mat and then it ran to the red house".split()
    lines = [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    (d / "text.txt").write_text("\n".join(lines * 12) + "\n")  # enough for scratch train's 32 x 50 default
    (d / "train.csv").write_text("text,label\n" + "".join(f"{w} film,{'pos' if i % 2 else 'neg'}\n"
                                                         for i, w in enumerate(words)))
    (d / "pairs.tsv").write_text("".join(f"{w} .\t{w.upper()} .\n" for w in words))
    (d / "qa.csv").write_text("question,answer\n" + "".join(f"what is {w}?,{w}\n" for w in words))
    (d / "train.conll").write_text("".join(f"{w} NN {'B-X' if i % 3 == 0 else 'O'}\n" + ("\n" if i % 4 == 3 else "")
                                           for i, w in enumerate(words)) + "\n")
    (d / "speech.csv").write_text("path,transcript\n" + "".join(f"{w}.wav,{w}\n" for w in words))
    (d / "series.csv").write_text("month,y\n" + "".join(f"{1990 + i // 12}-{i % 12 + 1:02d},{i % 12 + i / 10:.2f}\n"
                                                        for i in range(72)))
    return {
        "classify train": ["--train", str(d / "train.csv")],
        "lm train": ["--data", str(d / "text.txt")],
        "translate train": ["--data", str(d / "pairs.tsv")],
        "qa train": ["--data", str(d / "qa.csv")],
        "tag train": ["--train", str(d / "train.conll")],
        "forecast train": ["--data", str(d / "series.csv")],
        "speech train": ["--data", str(d / "speech.csv")],
        "scratch train": ["--data", str(d / "text.txt")],
        "scratch gradcheck": [],
        "scratch vanishing": [],
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("faultdata")
    return d, _write_data(d)


# ---- watching for data reads and training starts ---------------------------------------------------
_WATCH: set[str] = set()
_OPENED: list[str] = []


def _audit(event: str, args) -> None:
    if event == "open" and _WATCH and args and isinstance(args[0], (str, bytes, os.PathLike)):
        p = os.fsdecode(args[0])
        if p in _WATCH or os.path.abspath(p) in _WATCH:
            _OPENED.append(p)


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one does nothing while _WATCH is empty


class Started(Exception):
    """Raised by the patched entry points of training: the flag's value got past validation."""


def _started(*a, **k):
    raise Started


@pytest.fixture
def guarded(monkeypatch, data, tmp_path):
    """Training entry points patched to raise Started, the data files watched, cwd an empty folder."""
    d, _ = data
    monkeypatch.setattr(seqlab.cli, "build_parser", _parser)  # one parser for all cases (70 ms each to build)
    monkeypatch.setattr(Trainer, "fit", _started)
    monkeypatch.setattr(seqlab.scratch.charlm, "train_char_lm", _started)
    monkeypatch.setattr(seqlab.scratch, "gradcheck", _started)
    monkeypatch.setattr(seqlab.scratch.vanishing, "gradient_vs_distance", _started)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    _WATCH.update(str(p) for p in d.iterdir())
    yield cwd
    _WATCH.clear()
    _OPENED.clear()


def run_case(path: str, flag: str, value: str, base: list[str], out: Path, capsys) -> str | None:
    """Run one case in this process; None if it behaved, else what went wrong."""
    argv = [*path.split(), *base]
    if "--out" in [o for a in _subparser(path)._actions for o in a.option_strings]:
        argv += ["--out", str(out)]
    argv += [f"{flag}={value}"]  # `=`: a value such as -1 is not taken for a flag
    cwd_before = set(os.listdir("."))
    _OPENED.clear()
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    except Started:
        return "accepted: training started"
    except BaseException as e:  # noqa: BLE001 - any escape is a traceback for the user
        return f"traceback: {type(e).__name__}: {str(e)[:120]}"
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    problems = []
    if code != 2:
        problems.append(f"exit {code}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr: {err.strip()[:160]!r}")
    elif flag not in lines[0]:
        problems.append(f"does not name {flag}: {lines[0][:160]!r}")
    if "Traceback" in err:
        problems.append("traceback")
    if _OPENED:
        problems.append(f"read {Path(_OPENED[0]).name} before refusing the flag")
    if out.exists():
        problems.append(f"left {out.name}/ ({', '.join(sorted(os.listdir(out))) or 'empty'})")
    new = set(os.listdir(".")) - cwd_before
    if new:
        problems.append(f"left {', '.join(sorted(new))} in the working directory")
    return "; ".join(problems) or None


def _run_matrix(path, selected, base, tmp_path, capsys):
    bad = []
    for i, (flag, value) in enumerate(selected):
        why = run_case(path, flag, value, base, tmp_path / f"out{i}", capsys)
        if why:
            bad.append(f"{path} {flag}={value}: {why}")
    return bad


def test_every_command_has_numeric_flags(data):
    _, base = data
    missing = [path for path in COMMANDS if path not in base]
    assert not missing, f"give {missing} tiny data files in _write_data (a new task's train command)"
    assert {"classify train", "lm train", "translate train", "qa train", "tag train", "forecast train"} <= set(COMMANDS)
    sizes = {path: len(cases(path)) for path in COMMANDS}
    assert all(sizes.values()), sizes
    assert "--hidden" in numeric_flags("scratch train") and "--time" in numeric_flags("scratch gradcheck")


@pytest.mark.parametrize("path", COMMANDS)
def test_bad_numeric_flags_are_one_line_errors(path, data, guarded, tmp_path, capsys):
    """The whole matrix for one command, in this process (each case is parsing and validation only)."""
    _, base = data
    bad = _run_matrix(path, cases(path), base[path], tmp_path, capsys)
    assert not bad, f"{len(bad)} of {len(cases(path))} cases misbehave:\n" + "\n".join(bad)


def test_the_guards_see_a_valid_value_get_through(data, guarded, tmp_path, capsys):
    """The controls of the matrix work: a valid value reads the data and reaches the (patched) training."""
    _, base = data
    why = run_case("lm train", "--hidden", "8", base["lm train"], tmp_path / "out", capsys)
    assert why == "accepted: training started"
    assert _OPENED, "the audit hook did not see the data file being read"
    assert run_case("scratch gradcheck", "--time", "3", [], tmp_path / "o2", capsys) == "accepted: training started"


# ---- the same in a real process, for a sample --------------------------------------------------
SAMPLE = [("lm train", "--hidden", "0"), ("classify train", "--lr", "nan"), ("scratch gradcheck", "--time", "0")]


def _subprocess_case(path, flag, value, base, out, cwd):
    argv = [*path.split(), *base]
    if "--out" in [o for a in _subparser(path)._actions for o in a.option_strings]:
        argv += ["--out", str(out)]
    r = subprocess.run([sys.executable, "-m", "seqlab", *argv, f"{flag}={value}"], capture_output=True, text=True,
                       cwd=cwd, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (path, flag, value, r.returncode, r.stderr[-500:])
    assert len(lines) == 1 and flag in lines[0] and lines[0].startswith("seqlab"), r.stderr
    assert not out.exists() and not os.listdir(cwd)


@pytest.mark.parametrize("path, flag, value", SAMPLE)
def test_a_bad_flag_in_a_real_process(path, flag, value, data, tmp_path):
    _, base = data
    (tmp_path / "cwd").mkdir()
    _subprocess_case(path, flag, value, base[path], tmp_path / "out", tmp_path / "cwd")


@pytest.mark.slow
@pytest.mark.parametrize("path", COMMANDS)
def test_every_flag_in_a_real_process(path, data, tmp_path):
    """Every numeric flag once (one of its invalid values, chosen by a seeded draw), one process per case:
    slow, ~3 s of imports each; the in-process matrix above covers every value."""
    import random

    _, base = data
    by_flag: dict[str, list[str]] = {}
    for flag, value in cases(path):
        by_flag.setdefault(flag, []).append(value)
    rng = random.Random(path)
    for i, (flag, values) in enumerate(by_flag.items()):
        cwd = tmp_path / f"cwd{i}"
        cwd.mkdir()
        _subprocess_case(path, flag, rng.choice(values), base[path], tmp_path / f"out{i}", cwd)
