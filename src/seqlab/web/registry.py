"""The models a `seqlab serve` may show: run directories under `--models`, and nothing else.

A request names a model by its path relative to `--models`, as listed by /api/models. The name is
checked as text first (relative, no '..', no backslash or drive, at most 200 characters: 403 if
not) and then must be one of the runs found by scanning `--models` (404 if not). So no request can
reach a file outside `--models`: a run is found only by walking the directory the user gave
(symbolic links inside it are followed, so `ln -s ~/runs/sst2 models/` serves that run: a link is
the server's owner saying so). Checkpoints load with the tasks' own `Pipeline.load`: safetensors
weights and JSON, never pickle.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path, PurePosixPath

from seqlab.errors import UserError
from seqlab.train.checkpoint import CONFIG
from seqlab.train.run_dir import resolve_checkpoint

MAX_DEPTH = 4
CACHE = 4  # loaded models kept in memory


class Forbidden(UserError):
    """A model name that points outside --models (403)."""


class NotFound(UserError):
    """A model or run that is not under --models (404)."""


def check_name(name: str) -> str:
    """A model name as a clean relative POSIX path, or Forbidden."""
    p = PurePosixPath(name)
    if (not name or len(name) > 200 or "\\" in name or "\x00" in name or p.is_absolute() or ":" in name
            or any(part in ("..", ".") for part in name.split("/")) or name.startswith("~") or str(p) != name):
        raise Forbidden(f"model {name!r} is not a path inside --models; name one listed by /api/models")
    return str(p)


def _checkpoint_config(run: Path) -> dict | None:
    for sub in ("best", "last"):
        cfg = run / sub / CONFIG
        if cfg.is_file() and (run / sub / "model.safetensors").is_file():
            try:
                return json.loads(cfg.read_text())
            except (OSError, ValueError):
                return None
    return None


def _summary(cfg: dict) -> dict:
    model = cfg.get("model", {})
    enc = model.get("encoder", {})
    out = {"cell": enc.get("cell"), "hidden": enc.get("hidden"), "layers": enc.get("layers"),
           "bidirectional": enc.get("bidirectional")}
    if cfg.get("task") == "lm":
        out["level"] = cfg.get("data", {}).get("level") or None
    if cfg.get("task") == "qa":
        out["mode"] = cfg.get("data", {}).get("mode")
    if cfg.get("task") == "translate" or out.get("mode") == "seq2seq":
        out["attention"] = model.get("attention")
    return out


class Registry:
    """Runs under `root`: scanned on demand, loaded lazily, the last CACHE loaded kept in memory."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root).resolve() if root else None
        self._cache: OrderedDict[str, tuple[str, object]] = OrderedDict()
        self.lock = threading.Lock()  # one model call at a time: torch threads are the parallelism

    def scan(self) -> dict[str, dict]:
        """name -> {name, task, has_metrics, summary} for every run directory under root: a directory
        with best/ or last/ holding a checkpoint, or with a metrics.jsonl (a run still training)."""
        found: dict[str, dict] = {}
        if self.root is None or not self.root.is_dir():
            return found
        for dirpath, dirnames, _ in os.walk(self.root, followlinks=True):
            d = Path(dirpath)
            rel = d.relative_to(self.root)
            depth = len(rel.parts)
            dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and n not in ("best", "last"))
            if depth >= MAX_DEPTH:
                dirnames[:] = []
            cfg = _checkpoint_config(d)
            metrics = (d / "metrics.jsonl").is_file()
            if cfg is None and not metrics:
                continue
            name = rel.as_posix() if depth else "."
            found[name] = {"name": name, "task": cfg.get("task") if cfg else None, "has_metrics": metrics,
                           "has_checkpoint": cfg is not None, **(_summary(cfg) if cfg else {})}
        return found

    def run_dir(self, name: str) -> Path:
        """The directory of run `name` (Forbidden / NotFound as described in the module docstring)."""
        name = check_name(name) if name != "." else name
        if self.root is None:
            raise NotFound("no --models directory was given to `seqlab serve`")
        runs = self.scan()
        if name not in runs:
            raise NotFound(f"no run {name!r} under --models; see /api/models for the ones there are")
        return self.root / name

    def get(self, name: str, tasks: tuple[str, ...] | None = None) -> tuple[str, object]:
        """(task, pipeline) of run `name`, loaded once; a task outside `tasks` is a UserError (400)."""
        from seqlab.pipelines.registry import task_of
        from seqlab.viz.model_trace import load_model

        path = self.run_dir(name)
        ckpt = resolve_checkpoint(path)
        key = f"{path}@{(ckpt / 'model.safetensors').stat().st_mtime_ns}"  # a retrained run is loaded afresh
        if key not in self._cache:
            task = task_of(path)
            if tasks is not None and task not in tasks:
                raise UserError(f"{name} is a '{task}' model; this page shows {' or '.join(tasks)} models")
            self._cache[key] = load_model(path)
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        task, pipe = self._cache[key]
        if tasks is not None and task not in tasks:
            raise UserError(f"{name} is a '{task}' model; this page shows {' or '.join(tasks)} models")
        return task, pipe
