"""The run directory around the checkpoints: which checkpoint `--model PATH` means
(`resolve_checkpoint`, `open_checkpoint`), repairing a directory after a kill inside a save (`recover`),
and leaving nothing behind after a training that wrote no checkpoint (`remove_if_no_checkpoint`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from seqlab.errors import UserError
from seqlab.train.checkpoint import (
    CONFIG,
    TRAINER,
    WEIGHTS,
    _regular_file,
    read_config,
    read_json,
    read_safetensors_header,
    verify_checkpoint,
)


# ---- finding a checkpoint --------------------------------------------------------------------
def _pid_of(d: Path) -> int | None:
    tail = d.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int | None) -> bool:
    """Whether `pid` is a running process other than this one."""
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _complete(d: Path, name: str) -> bool:
    """Whether `d` holds a whole checkpoint (every file there and readable)."""
    try:
        if not d.is_dir() or d.is_symlink():
            return False
        read_safetensors_header(d / WEIGHTS)
        verify_checkpoint(d)
        if name == "last" and not (d / TRAINER).is_file():
            return False
    except UserError:
        return False
    return True


def _olds(run_dir: Path, name: str) -> list[Path]:
    """The complete `.NAME.old-PID` copies in `run_dir`, newest first."""
    olds = [d for d in run_dir.glob(f".{name}.old-*") if _complete(d, name)]
    return sorted(olds, key=lambda d: d.stat().st_mtime_ns, reverse=True)


def recover(run_dir: str | Path) -> list[str]:
    """Repair a run directory after a kill inside `save_checkpoint`; call it before training starts.

    If best/ or last/ is missing but a complete `.NAME.old-PID` exists (a kill between the two
    renames), the newest one is renamed back to NAME. Stale `.NAME.tmp-*` and `.NAME.old-*`
    directories are removed: those whose PID is not a live process, or all of them when this process
    holds the run's `RunLock`. Returns what it did, one line per action, for the log."""
    from seqlab.train.lock import holds

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    ours = holds(run_dir)
    done = []
    for name in ("best", "last"):
        final = run_dir / name
        if not final.exists() and not final.is_symlink():
            olds = [d for d in _olds(run_dir, name) if ours or not _alive(_pid_of(d))]
            if olds:
                os.replace(olds[0], final)
                done.append(f"restored {final} from {olds[0].name} (a save was interrupted)")
        for d in [*run_dir.glob(f".{name}.tmp-*"), *run_dir.glob(f".{name}.old-*")]:
            if d.is_dir() and not d.is_symlink() and (ours or not _alive(_pid_of(d))):
                shutil.rmtree(d, ignore_errors=True)
                done.append(f"removed {d.name} (left by an interrupted save)")
    return done


# what a training writes before its first checkpoint
RUN_FILES = (".lock", "run.yaml", "metrics.jsonl", "grad_norms.jsonl")


def remove_if_no_checkpoint(run_dir: str | Path, since: float | None = None) -> bool:
    """After a training that stopped before writing any checkpoint (a NaN stop at the first steps, an
    interrupt before the first save), leave no run directory behind. since None: the caller created
    `run_dir`, so all of it goes. Else only what a training writes (RUN_FILES, TensorBoard event files)
    modified from `since` (a time.time()) on, and the directory itself if that empties it: files of
    the user's, or of an earlier run, stay. A directory with best/ or last/ (or a save to recover) is
    left alone. True if the directory is gone."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or run_dir.is_symlink():
        return False
    if any((run_dir / n).exists() for n in ("best", "last")) or \
            any(p.name.startswith((".best.", ".last.")) for p in run_dir.iterdir()):
        return False
    if since is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        return not run_dir.exists()

    def ours(p: Path) -> bool:
        return p.is_file() and not p.is_symlink() and p.stat().st_mtime >= since - 2.0  # coarse file-system clocks

    for p in [run_dir / n for n in RUN_FILES] + sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        if ours(p):
            p.unlink(missing_ok=True)
    for d in (run_dir / "tensorboard", run_dir):
        try:
            d.rmdir()  # only if nothing else is in it
        except OSError:
            pass
    return not run_dir.exists()


def _present(p: Path) -> bool:
    return p.exists() or p.is_symlink()


def _checkpoint_files(d: Path) -> Path:
    """`d`, checked to hold config.json and model.safetensors as regular files."""
    for name in (CONFIG, WEIGHTS):
        _regular_file(d / name)
    return d


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint directory for `--model PATH`: PATH itself, or PATH/best, or PATH/last (or, after
    a kill between the two renames of save_checkpoint, the complete `.best.old-*` / `.last.old-*` copy).
    A best/ or last/ that is there but lacks a file is an error, not a reason to use the other one."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint; give the --out directory of a training run")
    if _present(path / CONFIG) or _present(path / WEIGHTS):
        return _checkpoint_files(path)
    for name in ("best", "last"):
        cand = path / name
        if cand.is_dir():
            return _checkpoint_files(cand)
        if not _present(cand):  # read-only here: `recover` (at the next training) renames it back
            olds = _olds(path, name)
            if olds:
                return olds[0]
    raise UserError(
        f"{path} is not a seqlab checkpoint (no {CONFIG} and {WEIGHTS}); "
        "give the --out directory of `seqlab <task> train`"
    )


def open_checkpoint(path: str | Path, task: str) -> tuple[Path, dict, dict]:
    """(checkpoint dir, config.json, vocab.json) for `--model PATH`, checked to belong to `task`."""
    ckpt = resolve_checkpoint(path)
    return ckpt, read_config(ckpt, task), read_json(ckpt, "vocab.json")
