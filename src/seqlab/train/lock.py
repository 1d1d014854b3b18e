"""One writer per run directory: `with RunLock(out): ...` around a training.

The lock is an advisory exclusive `flock` on `run_dir/.lock`, taken without waiting and held for the
life of the training. The kernel drops it when the holding process ends, however it ends (SIGKILL
included), so a `.lock` file left behind by a killed run never blocks the next one: only a live
holder does. The holder writes its pid into the file, for the message the second writer gets.

Under torchrun only rank 0 should take it (the ranks of one run share the directory).
"""

from __future__ import annotations

import errno
import fcntl
import os
import warnings
from pathlib import Path

from seqlab.errors import UserError

LOCK = ".lock"
_held: dict[str, RunLock] = {}  # run dirs (resolved) whose lock this process holds


def _key(run_dir: Path) -> str:
    return str(Path(run_dir).resolve())


def holds(run_dir: str | Path) -> bool:
    """Whether this process holds the RunLock of `run_dir`."""
    return _key(Path(run_dir)) in _held


class RunLock:
    """An exclusive, non-blocking lock on a run directory (created if missing), as a context manager.

    Entering raises UserError when another live process holds it. Re-entering in the process that
    holds it is allowed (counted), so a caller and the trainer may both take it."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self._fd: int | None = None
        self._depth = 0

    def acquire(self) -> RunLock:
        key = _key(self.run_dir)
        if key in _held and _held[key] is not self:
            _held[key]._depth += 1
            self._depth = -1  # a nested handle: release() lowers the holder's count
            return self
        if self._fd is not None:
            self._depth += 1
            return self
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise UserError(f"cannot create {self.path} ({e.strerror}); choose another --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                pid = _read_pid(fd)
                os.close(fd)
                raise UserError(f"{self.run_dir} is in use by another training (pid {pid or 'unknown'}); "
                                "wait for it or choose another --out") from None
            os.close(fd)  # a file system without locks (some network/FUSE mounts): run unguarded
            warnings.warn(f"cannot lock {self.path} ({e.strerror}); nothing stops a second training "
                          "from writing the same run directory", stacklevel=2)
            return self
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd, self._depth = fd, 1
        _held[key] = self
        return self

    def release(self) -> None:
        key = _key(self.run_dir)
        if self._depth == -1:  # nested handle of another RunLock object
            holder = _held.get(key)
            self._depth = 0
            if holder is not None:
                holder.release()
            return
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        fd, self._fd = self._fd, None
        _held.pop(key, None)
        try:
            os.ftruncate(fd, 0)  # no pid of a finished run in the file
        except OSError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
