"""One writer per run directory: `RunLock` (an advisory flock on run_dir/.lock)."""

import os
import signal
import subprocess
import sys

import pytest

from seqlab.errors import UserError
from seqlab.train.lock import RunLock, holds

HOLD = """
import sys, time
from seqlab.train.lock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""

TRY = """
import sys
from seqlab.errors import UserError
from seqlab.train.lock import RunLock
try:
    with RunLock(sys.argv[1]):
        pass
except UserError as e:
    print(e)
    sys.exit(2)
"""


@pytest.fixture
def holder(tmp_path):
    """A subprocess holding the lock of tmp_path/run until killed."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        yield p
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        p.stdout.close()


def test_a_live_holder_blocks_and_a_killed_one_does_not(tmp_path, holder):
    run = tmp_path / "run"
    with pytest.raises(UserError) as e:
        RunLock(run).acquire()
    assert str(e.value) == (f"{run} is in use by another training (pid {holder.pid}); "
                            "wait for it or choose another --out")
    assert not holds(run)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert (run / ".lock").exists()  # the dead holder's file stays; only the kernel's lock went
    with RunLock(run) as lock:
        assert holds(run) and lock.path.read_text().strip() == str(os.getpid())
        r = subprocess.run([sys.executable, "-c", TRY, str(run)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and f"(pid {os.getpid()})" in r.stdout, (r.stdout, r.stderr)
    assert not holds(run)
    r = subprocess.run([sys.executable, "-c", TRY, str(run)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_a_stale_lock_file_does_not_block(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text("999999\n")  # left by a process that no longer exists
    with RunLock(run):
        assert (run / ".lock").read_text().strip() == str(os.getpid())
    assert (run / ".lock").read_text() == ""  # released: no pid of a finished run


def test_the_holding_process_may_take_it_again(tmp_path):
    run = tmp_path / "new" / "run"  # created if missing
    with RunLock(run):
        with RunLock(run):
            assert holds(run)
        assert holds(run)  # the outer hold is still there
        r = subprocess.run([sys.executable, "-c", TRY, str(run)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2
    assert not holds(run)
