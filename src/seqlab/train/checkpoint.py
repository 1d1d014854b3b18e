"""Checkpoints: a directory that loads without pickle.

    runs/sst2/best/            runs/sst2/last/ (the same, plus what resuming needs)
      config.json                config.json     task, model, data and training settings
      vocab.json                 vocab.json      tokenizer, vocabularies, labels
      model.safetensors          model.safetensors
                                 state.safetensors   optimizer tensors and RNG state
                                 trainer.json        epoch, step, best metric, optimizer groups

A checkpoint is written into a temporary directory beside its final place and then renamed,
so a kill at any moment leaves either the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from seqlab import __version__
from seqlab.errors import UserError

CONFIG = "config.json"


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    meta: dict[str, dict],
    tensors: dict[str, torch.Tensor] | None = None,
    trainer: dict | None = None,
) -> Path:
    """Write `model` weights, the JSON files in `meta` (name -> object), and optionally extra
    `tensors` (state.safetensors) and `trainer` state (trainer.json), atomically, to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"), metadata={"seqlab": __version__})
    for name, obj in meta.items():
        (tmp / name).write_text(json.dumps(obj, indent=2) + "\n")
    if tensors is not None:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "state.safetensors"))
    if trainer is not None:
        (tmp / "trainer.json").write_text(json.dumps(trainer, indent=2) + "\n")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint directory for `--model PATH`: PATH itself, or PATH/best, or PATH/last."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint; give the --out directory of a training run")
    for cand in (path, path / "best", path / "last"):
        if (cand / CONFIG).is_file() and (cand / "model.safetensors").is_file():
            return cand
    # a kill between the two renames of save_checkpoint leaves only the .old copy
    for name in ("best", "last"):
        olds = sorted(path.glob(f".{name}.old-*"))
        if olds and (olds[-1] / CONFIG).is_file():
            return olds[-1]
    raise UserError(
        f"{path} is not a seqlab checkpoint (no {CONFIG} and model.safetensors); "
        "give the --out directory of `seqlab <task> train`"
    )


def read_config(ckpt: Path, task: str) -> dict:
    """config.json of a checkpoint, checked to belong to `task`."""
    try:
        cfg = json.loads((ckpt / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{ckpt / CONFIG} is damaged ({e}); retrain or restore the file") from None
    if not isinstance(cfg, dict) or "task" not in cfg:
        raise UserError(f"{ckpt / CONFIG} is not a seqlab config; give a seqlab checkpoint")
    if cfg["task"] != task:
        raise UserError(
            f"{ckpt} is a '{cfg['task']}' checkpoint, not '{task}'; "
            f"use `seqlab {cfg['task']} ...` with it, or give a {task} model"
        )
    return cfg


def task_meta(task: str, model_cfg: dict, data: dict, train_cfg, vocab: dict) -> dict[str, dict]:
    """The JSON files every task's checkpoint holds: config.json (task, versions, model, data and
    training settings) and vocab.json (tokenizer, vocabularies, labels)."""
    config = {"task": task, "seqlab": __version__, "model": model_cfg, "data": data, "train": asdict(train_cfg)}
    return {"config.json": config, "vocab.json": vocab}


def open_checkpoint(path: str | Path, task: str) -> tuple[Path, dict, dict]:
    """(checkpoint dir, config.json, vocab.json) for `--model PATH`, checked to belong to `task`."""
    ckpt = resolve_checkpoint(path)
    return ckpt, read_config(ckpt, task), read_json(ckpt, "vocab.json")


def read_json(ckpt: Path, name: str) -> dict:
    try:
        return json.loads((ckpt / name).read_text())
    except FileNotFoundError:
        raise UserError(f"{ckpt} lacks {name}; the checkpoint is incomplete, retrain it") from None


def load_weights(model: torch.nn.Module, ckpt: Path, device: str | torch.device = "cpu") -> None:
    """Load model.safetensors into `model` and move it to `device`; a shape mismatch is a user error."""
    try:
        missing, unexpected = load_model(model, str(ckpt / "model.safetensors"), strict=False, device=str(device))
    except RuntimeError as e:
        raise UserError(f"{ckpt}: weights do not fit the model in its config.json ({e})") from None
    if missing or unexpected:
        raise UserError(f"{ckpt}: weights do not match its config.json (missing {missing}, unexpected {unexpected})")
    model.to(device)


def load_state_tensors(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "state.safetensors"))
