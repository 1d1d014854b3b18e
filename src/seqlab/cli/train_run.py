"""What a `seqlab <task> train` prints around the training itself: a heartbeat while a long step is
silent (`Heartbeat`), and the run's set-up, callbacks and total wall time (`TrainRun`)."""

from __future__ import annotations

import sys
import threading
import time


def _secs(s: float) -> str:
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f}s" if s >= 9.5 else f"{s:.1f}s"
    m, sec = divmod(round(s), 60)
    return f"{m}m{sec:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m{sec:02d}s"


class Heartbeat:
    """While a long step runs (an evaluation), a line on stderr after `after` seconds and then every
    `every` seconds, so that a quiet terminal or log shows the command is still working:

        with Heartbeat("evaluating runs/clf/best on test.csv"):
            pipe.evaluate("test.csv")

    Nothing is written when the step ends sooner. `start()`/`stop()` do the same without a with block."""

    AFTER, EVERY = 5.0, 30.0  # seconds (class attributes, so tests can make them short)

    def __init__(self, what: str, after: float | None = None, every: float | None = None, stream=None):
        self.what, self.stream = what, stream
        self.after = self.AFTER if after is None else after
        self.every = self.EVERY if every is None else every
        self._stop, self._thread, self.started = threading.Event(), None, None
        self.lines = 0

    def _write(self, line: str) -> None:
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)
        self.lines += 1

    def _run(self) -> None:
        wait = self.after
        while not self._stop.wait(wait):
            self._write(f"{self.what} ... {_secs(time.perf_counter() - self.started)} so far")
            wait = self.every

    def start(self) -> Heartbeat:
        self.started = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="seqlab-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class TrainRun:
    """A `train` command's wall time, and a Trainer callback that marks when training ends.

        run = TrainRun(cfg, a.out)
        with run:                                   # the heartbeat stops when fit returns (or fails)
            pipe = Task.fit(..., callbacks=run.callbacks())
        print(...)
        print(run.summary())                        # total wall time: setup, training, evaluation

    After the last training step the pipeline evaluates the best model (dev metrics, test splits,
    thresholds) before `fit` returns; from `on_fit_end` on, a `Heartbeat` says so on stderr when that
    takes long."""

    def __init__(self, cfg=None, out=None, what: str = "evaluating the best model"):
        self.cfg, self.out, self.what = cfg, out, what
        self.t0 = time.perf_counter()
        self.fit_start = self.fit_end = self.t_end = None
        self.trained = 0.0
        self._elapsed0 = 0.0
        self.heartbeat: Heartbeat | None = None

    def callbacks(self) -> list:
        """The run directory's default callbacks (metrics.jsonl, loss.png, TensorBoard) and this one."""
        from seqlab.train.callbacks import default_callbacks

        logger = getattr(getattr(self.cfg, "train", None), "logger", "jsonl")
        return [*default_callbacks(self.out, logger), self]

    def on_fit_start(self, trainer, resume: bool) -> None:
        self.fit_start = time.perf_counter()
        self._elapsed0 = trainer.state.get("elapsed", 0.0)  # a resumed run's earlier training

    def on_fit_end(self, trainer) -> None:
        self.fit_end = time.perf_counter()
        self.trained = trainer.state.get("elapsed", 0.0) - self._elapsed0
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.heartbeat = Heartbeat(self.what).start()

    def __enter__(self) -> TrainRun:
        return self

    def __exit__(self, *exc) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.t_end = time.perf_counter()

    def summary(self) -> str:
        """'total wall time ...: setup, training, evaluation during training and checkpoints, final evaluation'."""
        end = self.t_end or time.perf_counter()
        total = end - self.t0
        if self.fit_start is None or self.fit_end is None:
            return f"total wall time {_secs(total)}"
        parts = [f"setup {_secs(self.fit_start - self.t0)}", f"training {_secs(self.trained)}",
                 f"dev evaluations and checkpoints {_secs(self.fit_end - self.fit_start - self.trained)}",
                 f"final evaluation {_secs(end - self.fit_end)}"]
        return f"total wall time {_secs(total)} ({', '.join(parts)})"
