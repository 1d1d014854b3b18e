"""Damaged checkpoints, exported files and inputs end as one `seqlab: error:` line (exit 2), never a
traceback; non-finite weights are never written; a kill between save_checkpoint's renames and a full
disk leave a loadable checkpoint."""

import errno
import json
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seqlab.cli import main
from seqlab.data.readers import read_lines, read_table, read_text
from seqlab.errors import UserError
from seqlab.train.checkpoint import (
    NonFiniteWeights,
    load_state_tensors,
    load_weights,
    read_config,
    read_json,
    save_checkpoint,
)
from seqlab.train.run_dir import open_checkpoint, recover, resolve_checkpoint

TRAIN_FLAGS = ["--epochs", "1", "--hidden", "8", "--embed", "8", "--batch", "8", "--device", "cpu"]


def _csv(path: Path, n: int = 40) -> Path:
    rng = random.Random(0)
    lines = ["text,label"]
    for i in range(n):
        words = ["good", "great", "fine"] if i % 2 else ["bad", "awful", "poor"]
        lines.append(" ".join(rng.choice(words) for _ in range(4)) + (",pos" if i % 2 else ",neg"))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A tiny real run directory (best/ and last/) and an exported TorchScript file of it, built once."""
    root = tmp_path_factory.mktemp("pristine")
    data = _csv(root / "train.csv")
    run = root / "run"
    assert main(["classify", "train", "--train", str(data), "--out", str(run), *TRAIN_FLAGS]) == 0
    assert (run / "best" / "model.safetensors").is_file() and (run / "last" / "trainer.json").is_file()
    assert main(["export", "--model", str(run), "--out", str(root / "m.pt")]) == 0
    return root


@pytest.fixture
def run(pristine, tmp_path):
    """A fresh copy of the pristine run for one test to damage."""
    shutil.copytree(pristine / "run", tmp_path / "run", symlinks=True)
    shutil.copy(pristine / "train.csv", tmp_path / "train.csv")
    return tmp_path / "run"


# ---- the damage matrix ---------------------------------------------------------------------------
def _half(p: Path) -> None:
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])


def _json_edit(fn):
    def edit(p: Path) -> None:
        obj = json.loads(p.read_text())
        fn(obj)
        p.write_text(json.dumps(obj))
    return edit


def _symlink(target: str):
    def link(p: Path) -> None:
        p.unlink()
        p.symlink_to(target)
    return link


def _oversized_header(p: Path) -> None:
    raw = p.read_bytes()
    p.write_bytes((2**40).to_bytes(8, "little") + raw[8:])


def _short_header(p: Path) -> None:  # the header length points inside the JSON: the JSON is cut
    raw = p.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    p.write_bytes((n // 2).to_bytes(8, "little") + raw[8:])


def _padded(p: Path) -> None:
    p.write_bytes(p.read_bytes() + b"\0" * 64)


def _hidden_doubled(cfg: dict) -> None:
    cfg["model"]["encoder"]["hidden"] *= 2


COMMON = {
    "empty": lambda p: p.write_bytes(b""),
    "half": _half,
    "garbage": lambda p: p.write_bytes(random.Random(1).randbytes(4096)),
    "pickle": lambda p: p.write_bytes(pickle.dumps({"weight": [1.0, 2.0], "__reduce__": "x"})),
    "symlink_hostname": _symlink("/etc/hostname"),
    "symlink_dangling": _symlink("/nonexistent/seqlab-file"),
    "removed": lambda p: p.unlink(),
}
JSON_DAMAGE = {
    "invalid_json": lambda p: p.write_text("{not json"),
    "json_list": lambda p: p.write_text("[1, 2, 3]"),
    "not_utf8": lambda p: p.write_bytes(b'{"task": "\xff\xfe"}'),
}
KEY_REMOVED = {
    "config.json": {"no_model": _json_edit(lambda d: d.pop("model")), "no_task": _json_edit(lambda d: d.pop("task")),
                    "model_is_list": _json_edit(lambda d: d.update(model=[1])),
                    "hidden_doubled": _json_edit(_hidden_doubled)},
    "trainer.json": {"no_optimizer": _json_edit(lambda d: d.pop("optimizer")),
                     "no_step": _json_edit(lambda d: d.pop("step")),
                     "groups_not_list": _json_edit(lambda d: d["optimizer"].update(param_groups={}))},
    "vocab.json": {},
}
SAFETENSORS_DAMAGE = {"oversized_header": _oversized_header, "short_header": _short_header, "padded": _padded}
FILES = {"best": ["config.json", "vocab.json", "model.safetensors"],
         "last": ["config.json", "vocab.json", "model.safetensors", "state.safetensors", "trainer.json"]}


def _damages(name: str) -> dict:
    extra = {**JSON_DAMAGE, **KEY_REMOVED[name]} if name.endswith(".json") else SAFETENSORS_DAMAGE
    return {**COMMON, **extra}


def _commands(where: str, name: str, damage: str) -> list[str]:
    cmds = ["predict", "eval"]
    # resuming reads last/ (weights, trainer.json, state.safetensors; config.json and vocab.json only
    # checked to be readable JSON): a damage that leaves them readable does not stop it
    # (a Trainer without meta writes no config.json or vocab.json, so their absence is no damage to resuming)
    reads_on_resume = (not (name == "vocab.json" and damage in KEY_REMOVED["vocab.json"])
                       and damage != "hidden_doubled"
                       and not (damage == "removed" and name in ("config.json", "vocab.json")))
    if where == "last" and reads_on_resume:
        cmds.append("resume")
    if name == "trainer.json" and damage == "removed":
        cmds = ["resume"]  # without trainer.json, last/ is a plain inference checkpoint, as best/ is
    return cmds


MATRIX = [
    pytest.param(where, name, damage, cmd, id=f"{where}/{name}-{damage}-{cmd}")
    for where, names in FILES.items()
    for name in names
    for damage in _damages(name)
    for cmd in _commands(where, name, damage)
]


def _argv(cmd: str, run: Path, where: str) -> list[str]:
    model = str(run if where == "best" else run / "last")  # a run dir resolves to best/
    data = str(run.parent / "train.csv")
    if cmd == "predict":
        return ["classify", "predict", "--model", model, "hello"]
    if cmd == "eval":
        return ["classify", "eval", "--model", model, "--data", data]
    return ["classify", "train", "--train", data, "--out", str(run), *TRAIN_FLAGS, "--resume"]


def _one_error_line(capsys, argv) -> str:
    capsys.readouterr()
    code = main(argv)  # an exception other than UserError propagates: the test fails with its traceback
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("seqlab: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("where,name,damage,cmd", MATRIX)
def test_damaged_checkpoint_file_is_one_error_line(run, capsys, where, name, damage, cmd):
    path = run / where / name
    _damages(name)[damage](path)
    line = _one_error_line(capsys, _argv(cmd, run, where))
    if damage == "hidden_doubled":
        assert "weights do not fit" in line and "size mismatch for" in line and "vs model" in line, line
    elif damage == "no_task":
        assert "config.json" in line, line
    elif name == "trainer.json" and damage in ("symlink_dangling", "removed") and cmd == "resume":
        assert "no last/trainer.json" in line, line  # the trainer's own check, before any reading
    else:
        assert name in line and "retrain" in line, line


@pytest.mark.parametrize("key", ["labels", "tokenizer"])
def test_vocab_json_without_a_key_the_task_needs(run, capsys, key):
    _json_edit(lambda d: d.pop(key))(run / "best" / "vocab.json")
    _one_error_line(capsys, _argv("predict", run, "best"))


def test_matrix_size():
    assert len(MATRIX) >= 150


def test_shape_mismatch_is_one_line_naming_the_tensor(run, capsys):
    path = run / "best" / "config.json"
    _json_edit(lambda d: d["model"]["encoder"].update(embed_dim=16))(path)
    line = _one_error_line(capsys, _argv("predict", run, "best"))
    assert "weights do not fit" in line, line
    assert re.search(r"size mismatch for encoder\.embedding\.weight: checkpoint \(\d+, 8\) vs model \(\d+, 16\)", line)


def test_pickle_in_place_of_weights_is_never_unpickled(run, capsys, tmp_path):
    marker = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (run / "best" / "model.safetensors").write_bytes(pickle.dumps(Evil()))
    line = _one_error_line(capsys, _argv("predict", run, "best"))
    assert "pickle" in line and not marker.exists()
    torch.save({"w": torch.ones(2)}, run / "best" / "model.safetensors")  # torch.save's zip of pickles
    line = _one_error_line(capsys, _argv("predict", run, "best"))
    assert "zip" in line and "model.safetensors" in line


def test_fifo_in_a_checkpoint_does_not_block(run, capsys):
    p = run / "best" / "vocab.json"
    p.unlink()
    os.mkfifo(p)
    assert "not a regular file" in _one_error_line(capsys, _argv("predict", run, "best"))


def test_intact_copy_still_predicts(run, capsys):
    assert main(_argv("predict", run, "best")) == 0
    assert main(_argv("predict", run, "last")) == 0


def test_reader_functions_raise_user_errors(run):
    best, last = run / "best", run / "last"
    (best / "config.json").write_text("[]")
    with pytest.raises(UserError, match="config.json is damaged"):
        read_config(best, "classify")
    with pytest.raises(UserError, match="config.json is damaged"):
        open_checkpoint(run / "best", "classify")
    (last / "state.safetensors").write_bytes(b"\0" * 3)
    with pytest.raises(UserError, match="state.safetensors is damaged"):
        load_state_tensors(last)
    (last / "vocab.json").unlink()
    with pytest.raises(UserError, match="lacks vocab.json"):
        read_json(last, "vocab.json")


# ---- exported files ----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
@pytest.mark.parametrize("damage", ["empty", "half", "garbage", "pickle"])
def test_damaged_exported_file_is_one_error_line(pristine, tmp_path, capsys, suffix, damage):
    if suffix == ".onnx":
        pytest.importorskip("onnxruntime")
    p = tmp_path / f"m{suffix}"
    raw = (pristine / "m.pt").read_bytes()  # for .onnx, half of a TorchScript zip is garbage too
    p.write_bytes({"empty": b"", "half": raw[: len(raw) // 2], "garbage": random.Random(2).randbytes(5000),
                   "pickle": pickle.dumps({"a": 1})}[damage])
    line = _one_error_line(capsys, ["classify", "predict", "--model", str(p), "hello"])
    assert str(p) in line and "export it again" in line, line


def test_exported_file_still_predicts(pristine, capsys):
    assert main(["classify", "predict", "--model", str(pristine / "m.pt"), "hello"]) == 0


# ---- writing: non-finite weights, disk full --------------------------------------------------------
def _model():
    return torch.nn.Linear(3, 2)


META = {"config.json": {"task": "t"}}
TRAINER = {"epoch": 1, "batch": 0, "step": 5, "best": None, "best_epoch": None, "bad_evals": 0, "last_eval_step": 5,
           "elapsed": 0.1, "done": False, "optimizer": {"param_groups": [{"params": [0, 1]}], "scalars": {}}}


def test_non_finite_weights_are_never_written(tmp_path):
    model = _model()
    save_checkpoint(tmp_path / "last", model, META)
    before = (tmp_path / "last" / "model.safetensors").read_bytes()
    for bad in (float("nan"), float("inf")):
        with torch.no_grad():
            model.weight[0, 0] = bad
        with pytest.raises(NonFiniteWeights, match="NaN or inf .*weight"):
            save_checkpoint(tmp_path / "last", model, META)
        with pytest.raises(NonFiniteWeights):
            save_checkpoint(tmp_path / "fresh", model, META)
    assert issubclass(NonFiniteWeights, UserError)
    assert (tmp_path / "last" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # no temp dir, no fresh/


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG])
@pytest.mark.parametrize("where", ["save_model", "save_file"])
def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch, code, where):
    model = _model()
    save_checkpoint(tmp_path / "last", model, META, tensors={"rng.torch": torch.get_rng_state()}, trainer=TRAINER)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)

    def full(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(f"seqlab.train.checkpoint.{where}", full)
    with pytest.raises(UserError, match=r"no space left to write .*last.*free disk space, then --resume"):
        save_checkpoint(tmp_path / "last", model, META, tensors={"rng.torch": torch.get_rng_state()}, trainer=TRAINER)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    fresh = _model()
    load_weights(fresh, resolve_checkpoint(tmp_path / "last"))
    assert all(torch.equal(v, before[k]) for k, v in fresh.state_dict().items())


def test_file_size_limit_is_disk_full(tmp_path):
    """A real write past RLIMIT_FSIZE (SIGXFSZ is ignored by Python, so the write fails with EFBIG)."""
    code = f"""
import resource, torch, sys
from seqlab.train.checkpoint import save_checkpoint
from seqlab.errors import UserError
small = torch.nn.Linear(2, 2)
save_checkpoint({str(tmp_path / 'last')!r}, small, {{"config.json": {{"task": "t"}}}})
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
try:
    save_checkpoint({str(tmp_path / 'last')!r}, torch.nn.Linear(100, 100), {{"config.json": {{"task": "t"}}}})
except UserError as e:
    print(e)
    sys.exit(2)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "no space left to write" in r.stdout and "free disk space" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    load_weights(torch.nn.Linear(2, 2), tmp_path / "last")


def test_interrupt_while_writing_leaves_no_temp_dir(tmp_path, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("seqlab.train.checkpoint.save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "last", _model(), META, tensors={"x": torch.ones(1)})
    assert list(tmp_path.iterdir()) == []


# ---- recovery after a kill between the two renames --------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_recover_restores_the_old_copy_and_removes_stale_dirs(run):
    dead = _dead_pid()
    os.replace(run / "last", run / f".last.old-{dead}")  # killed after the first rename
    shutil.copytree(run / "best", run / f".last.tmp-{dead}")  # the new copy it was about to rename
    shutil.copytree(run / "best", run / f".best.tmp-{dead}")  # a save killed while writing
    assert resolve_checkpoint(run) == run / "best"
    done = recover(run)
    assert (run / "last" / "trainer.json").is_file() and len(done) == 3, done
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".") and p.name != ".lock") == []
    assert recover(run) == []


def test_recover_picks_the_newest_complete_old_copy(run):
    a, b, c = run / ".last.old-1000001", run / ".last.old-999", run / ".last.old-1000002"
    os.replace(run / "last", a)
    shutil.copytree(a, b)
    (b / "trainer.json").write_text(json.dumps({**json.loads((b / "trainer.json").read_text()), "step": 4242}))
    os.utime(b, (time.time() + 10, time.time() + 10))  # newest, though "999" sorts last by name
    shutil.copytree(a, c)
    (c / "model.safetensors").write_bytes(b"")  # newest of all but incomplete
    os.utime(c, (time.time() + 20, time.time() + 20))
    recover(run)
    assert json.loads((run / "last" / "trainer.json").read_text())["step"] == 4242
    assert not any(p.name.startswith(".last.") for p in run.iterdir())


def test_resolve_checkpoint_uses_the_old_copy_without_changing_the_run(run, capsys):
    dead = _dead_pid()
    os.replace(run / "best", run / f".best.old-{dead}")
    shutil.rmtree(run / "last")
    assert resolve_checkpoint(run) == run / f".best.old-{dead}"
    assert main(_argv("predict", run, "best")) == 0
    assert (run / f".best.old-{dead}").is_dir() and not (run / "best").exists()


def test_recover_spares_dirs_of_a_live_writer_unless_we_hold_the_lock(run):
    from seqlab.train.lock import RunLock

    live = os.getppid()  # a live process other than us
    tmp = run / f".last.tmp-{live}"
    shutil.copytree(run / "best", tmp)
    recover(run)
    assert tmp.is_dir()
    with RunLock(run):
        recover(run)
    assert not tmp.exists()


def test_resume_after_a_kill_between_the_renames(run, capsys):
    """The CLI's resume with last/ renamed away: recover() puts it back (when the trainer calls it)."""
    os.replace(run / "last", run / f".last.old-{_dead_pid()}")
    recover(run)
    argv = _argv("resume", run, "last")
    assert main(argv) == 0


# ---- readers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    b"this is not gzip at all\n",
    b"\x1f\x8b\x08\x00" + b"\xff" * 40,  # a gzip magic, then corrupt deflate data (zlib.error)
    None,  # a truncated gzip (EOFError)
])
def test_corrupt_gzip_input_names_the_file(tmp_path, raw):
    import gzip

    p = tmp_path / "data.csv.gz"
    if raw is None:
        full = gzip.compress(b"text,label\n" + b"good film,pos\n" * 200)
        raw = full[: len(full) // 2]
    p.write_bytes(raw)
    with pytest.raises(UserError, match=r"data\.csv\.gz is not a valid gzip file"):
        read_table(p, ["text", "label"])


def test_fifo_input_is_refused_without_hanging(tmp_path):
    p = tmp_path / "pipe.txt"
    os.mkfifo(p)
    with pytest.raises(UserError, match="pipe.txt is not a regular file"):
        read_lines(p)
    with pytest.raises(UserError, match="not a regular file"):
        read_text("/dev/null")


def test_non_utf8_input_names_file_line_and_flag(tmp_path, capsys):
    p = tmp_path / "latin.csv"
    p.write_bytes("text,label\ngood,pos\ntr\xe8s bon,pos\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin\.csv: line 3 is not valid utf-8 .*--encoding"):
        read_table(p, ["text", "label"])
    line = _one_error_line(capsys, ["classify", "train", "--train", str(p), "--out", str(tmp_path / "o"),
                                    *TRAIN_FLAGS])
    assert "latin.csv: line 3" in line and "--encoding" in line


def test_fifo_input_through_the_cli(tmp_path, capsys):
    p = tmp_path / "in.csv"
    os.mkfifo(p)
    line = _one_error_line(capsys, ["classify", "train", "--train", str(p), "--out", str(tmp_path / "o"),
                                    *TRAIN_FLAGS])
    assert "in.csv is not a regular file" in line



def test_a_header_length_that_starts_like_a_pickle_still_loads(tmp_path):
    """0x0380 = 896 header bytes begin with b"\\x80\\x03", the pickle protocol-3 marker: not a pickle."""
    from safetensors.torch import save_file

    from seqlab.train.checkpoint import read_safetensors_header

    for n in range(780, 900):  # a tensor name long enough to make the header 896 bytes
        path = tmp_path / f"m{n}.safetensors"
        save_file({"w" * n: torch.zeros(1)}, str(path))
        if path.read_bytes()[:2] == b"\x80\x03":
            assert list(read_safetensors_header(path)) == ["w" * n]
            return
    pytest.skip("no tensor count gave a 0x0380 header here")
