"""What the Trainer keeps across a stop: its clock (training time without pauses), the optimizer state
flattened for safetensors + JSON, and the signals it holds while a step runs (so `last/` is consistent)."""

from __future__ import annotations

import signal
import threading
import time

import torch


class _Clock:
    """Training time: wall time minus the pauses for evaluation and checkpoints."""

    def __init__(self, elapsed: float = 0.0):
        self.start = time.perf_counter() - elapsed

    def __call__(self) -> float:
        return time.perf_counter() - self.start

    def pause(self):
        clock = self

        class _Pause:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                clock.start += time.perf_counter() - self.t

        return _Pause()


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict, js: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in js["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": js["param_groups"]})


class _HeldSignals:
    """While active, SIGINT and a Python-level SIGTERM handler are held instead of acted on at once:
    `deliver()` (called between two training steps) then runs the handler that was there before (which
    raises KeyboardInterrupt). A second signal while one is held runs it at once. Only in the main
    thread (the only one Python delivers signals to); elsewhere this does nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, active: bool = True):
        self.active, self.held = active, None
        self._before: dict = {}

    def __enter__(self) -> _HeldSignals:
        if self.active and threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                before = signal.getsignal(sig)
                if callable(before):  # SIG_DFL / SIG_IGN (a plain kill, or ignored) stay as they are
                    self._before[sig] = before
                    signal.signal(sig, self._hold)
        return self

    def _hold(self, signum, frame) -> None:
        if self.held is not None:  # asked twice: stop now
            self._before[signum](signum, frame)
        self.held = (signum, frame)

    def deliver(self) -> None:
        if self.held is not None:
            (signum, frame), self.held = self.held, None
            self._before[signum](signum, frame)

    def __exit__(self, exc_type, *exc) -> None:
        for sig, before in self._before.items():
            signal.signal(sig, before)
        if exc_type is None:  # one that came after the last deliver(): act on it now, not never
            self.deliver()
        self._before = {}
