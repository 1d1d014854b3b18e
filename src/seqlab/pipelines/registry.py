"""The one task registry: task name -> pipeline class. `load(path)` opens any checkpoint or exported file.

Export, viz, web and the CLI look a task up here instead of branching on its name.
"""

from __future__ import annotations

from pathlib import Path

from seqlab.errors import UserError

TASKS: dict[str, type] = {}


def register_task(cls):
    """Class decorator (or call): make `cls` the pipeline of `cls.task`."""
    TASKS[cls.task] = cls
    return cls


def task_of(path: str | Path) -> str:
    """The task a checkpoint directory or exported file belongs to (from its config.json)."""
    from seqlab.export import runtime
    from seqlab.train.checkpoint import read_json
    from seqlab.train.run_dir import resolve_checkpoint

    if runtime.is_exported(path):
        cfg = runtime.Graphs(path).meta["config.json"]
    else:
        cfg = read_json(resolve_checkpoint(path), "config.json")
    if not isinstance(cfg, dict) or "task" not in cfg:
        raise UserError(f"{path}: its config.json names no task; give a seqlab checkpoint")
    return cfg["task"]


def pipeline_class(task: str) -> type:
    _load_all()
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; seqlab knows {', '.join(sorted(TASKS))}")
    return TASKS[task]


def load(path: str | Path, device: str = "cpu"):
    """Open a checkpoint (a run directory, its best/ or last/, or a saved pipeline) or an .onnx/.pt export."""
    return pipeline_class(task_of(path)).load(path, device=device)


MODULES = ("classify", "lm", "translate", "qa", "tag", "forecast", "forecast_many", "memory", "speech")


def _load_all() -> None:
    """Import every pipeline module so that each registers itself."""
    import importlib
    import importlib.util

    for name in MODULES:
        if importlib.util.find_spec(f"seqlab.pipelines.{name}") is not None:
            importlib.import_module(f"seqlab.pipelines.{name}")
