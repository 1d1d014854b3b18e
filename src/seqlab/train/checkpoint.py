"""Checkpoints: a directory that loads without pickle.

    runs/sst2/best/            runs/sst2/last/ (the same, plus what resuming needs)
      config.json                config.json     task, model, data and training settings
      vocab.json                 vocab.json      tokenizer, vocabularies, labels
      model.safetensors          model.safetensors
                                 state.safetensors   optimizer tensors and RNG state
                                 trainer.json        epoch, step, best metric, optimizer groups

A checkpoint is written into a temporary directory beside its final place and then renamed,
so a kill at any moment leaves either the old checkpoint or the new one, never half of one; a kill
between the two renames leaves the old one as `.NAME.old-PID`, which `seqlab.train.run_dir.recover` puts back.
Finding the checkpoint of `--model PATH` and repairing or tidying a run directory live in
`seqlab.train.run_dir`. Weights that are not finite are never written (`NonFiniteWeights`), and a full disk leaves the
previous checkpoint as it was.

Every function here that reads a checkpoint is the one place its files are checked: a file that
is truncated, empty, garbage, a pickle, a symlink to something else, JSON of the wrong shape or
weights of the wrong shape ends as a one-line `UserError` naming the file and the fix, never a
traceback. Nothing is ever unpickled.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import stat
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from seqlab import __version__
from seqlab.errors import UserError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "state.safetensors"
TRAINER = "trainer.json"
FIX = "retrain, or restore the file"
# what `Trainer._resume` reads from trainer.json (its `state` plus the optimizer's JSON half)
TRAINER_KEYS = ("epoch", "batch", "step", "best", "best_epoch", "bad_evals", "last_eval_step", "elapsed",
                "done", "optimizer")
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}


class NonFiniteWeights(UserError):
    """save_checkpoint refused weights holding NaN or inf; nothing was written."""


def _line(text: object, limit: int = 200) -> str:
    """One line of at most `limit` characters of an exception's text."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _damaged(path: Path, why: str) -> UserError:
    return UserError(f"{path} is damaged ({_line(why)}); {FIX}")


def _regular_file(path: Path, what: str = "checkpoint") -> int:
    """The size of `path`, checked to be a regular file (after symlinks) without opening it, so a
    FIFO or device in a checkpoint never blocks or streams forever."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise _damaged(path, f"a symlink to {os.readlink(path)}, which does not exist") from None
        raise UserError(f"{path.parent} lacks {path.name}; the {what} is incomplete, retrain it") from None
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); check its permissions, or {FIX}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise _damaged(path, kind)
    return st.st_size


def _read_bytes(path: Path) -> bytes:
    _regular_file(path)
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); check its permissions, or {FIX}") from None


# ---- JSON files ------------------------------------------------------------------------------
def read_json(ckpt: Path, name: str, required: tuple[str, ...] = ()) -> dict:
    """A JSON file of a checkpoint, checked to be a JSON object holding the `required` keys."""
    path = Path(ckpt) / name
    raw = _read_bytes(path)
    if not raw.strip():
        raise _damaged(path, "the file is empty")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _damaged(path, "not UTF-8 text" + (", it is a pickle" if raw[:1] == b"\x80" else "")) from None
    except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
        raise _damaged(path, f"not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise _damaged(path, f"a JSON {type(obj).__name__}, not an object")
    missing = [k for k in required if k not in obj]
    if missing:
        raise _damaged(path, f"no {', '.join(repr(k) for k in missing)} in it")
    return obj


def read_config(ckpt: Path, task: str) -> dict:
    """config.json of a checkpoint, checked to belong to `task`."""
    cfg = read_json(ckpt, CONFIG)
    if not isinstance(cfg.get("task"), str):
        raise UserError(f"{Path(ckpt) / CONFIG} is not a seqlab config (no \"task\"); give a seqlab checkpoint, "
                        f"or {FIX}")
    if cfg["task"] != task:
        raise UserError(
            f"{ckpt} is a '{cfg['task']}' checkpoint, not '{task}'; "
            f"use `seqlab {cfg['task']} ...` with it, or give a {task} model"
        )
    for key in ("model", "data"):
        if not isinstance(cfg.get(key), dict):
            raise _damaged(Path(ckpt) / CONFIG, f"no \"{key}\" settings" if key not in cfg
                           else f"\"{key}\" is a {type(cfg[key]).__name__}, not an object")
    return cfg


def read_trainer_state(ckpt: Path) -> dict:
    """trainer.json of a last/ checkpoint, checked to hold what resuming needs."""
    path = Path(ckpt) / TRAINER
    tr = read_json(ckpt, TRAINER, TRAINER_KEYS)
    ints = ("epoch", "batch", "step", "bad_evals", "last_eval_step")
    bad = [k for k in ints if not isinstance(tr[k], int) or isinstance(tr[k], bool)]
    if bad or not isinstance(tr["elapsed"], (int, float)):
        raise _damaged(path, f"{(bad or ['elapsed'])[0]!r} is not a number")
    opt = tr["optimizer"]
    if not (isinstance(opt, dict) and isinstance(opt.get("param_groups"), list)
            and isinstance(opt.get("scalars"), dict)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in opt["param_groups"])):
        raise _damaged(path, "its \"optimizer\" is not the optimizer's param_groups and scalars")
    return tr


def task_meta(task: str, model_cfg: dict, data: dict, train_cfg, vocab: dict) -> dict[str, dict]:
    """The JSON files every task's checkpoint holds: config.json (task, versions, model, data and
    training settings) and vocab.json (tokenizer, vocabularies, labels)."""
    config = {"task": task, "seqlab": __version__, "model": model_cfg, "data": data, "train": asdict(train_cfg)}
    return {"config.json": config, "vocab.json": vocab}


# ---- safetensors files -----------------------------------------------------------------------
def read_safetensors_header(path: Path) -> dict:
    """The tensor table {name: {dtype, shape, data_offsets}} of a .safetensors file, checked
    against the file's size (so a truncated, padded, empty or foreign file is a UserError)."""
    path = Path(path)
    size = _regular_file(path)
    if size == 0:
        raise _damaged(path, "the file is empty")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            raw = f.read(n) if 0 < n <= min(_MAX_HEADER, size - 8) else b""
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); check its permissions, or {FIX}") from None
    # a header length such as 0x0380 starts like a pickle: name pickles/zips only when the header is not JSON
    looks_pickle = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if (looks_pickle or head[:4] == b"PK\x03\x04") and not raw.lstrip().startswith(b"{"):
        kind = "a pickle" if looks_pickle else "a zip (torch.save) file"
        raise _damaged(path, f"it is {kind}, not safetensors; seqlab never unpickles")
    if n < 0:
        raise _damaged(path, f"only {size} bytes, too short for a safetensors file")
    if n > _MAX_HEADER or n == 0:
        raise _damaged(path, f"not a safetensors file: its header would be {n} bytes")
    if not raw:
        raise _damaged(path, f"truncated: its header needs {n} bytes but the file has {size - 8} after the "
                             "length")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _damaged(path, "its header is not safetensors JSON") from None
    if not isinstance(header, dict):
        raise _damaged(path, "its header is not a JSON object")
    end = 0
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (lo, hi) = info["dtype"], info["shape"], info["data_offsets"]
            ok = (isinstance(dtype, str) and all(isinstance(d, int) and d >= 0 for d in shape)
                  and isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi)
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise _damaged(path, f"its entry for tensor {name!r} is malformed")
        if dtype in _DTYPE_BYTES and hi - lo != math.prod(shape) * _DTYPE_BYTES[dtype]:
            raise _damaged(path, f"tensor {name!r} has {hi - lo} bytes for shape {tuple(shape)} of {dtype}")
        end = max(end, hi)
        tensors[name] = info
    if 8 + n + end != size:
        want = 8 + n + end
        raise _damaged(path, f"truncated: {size} bytes, its header describes {want}" if size < want
                       else f"{size} bytes, {size - want} more than its header describes")
    return tensors


def _load_tensors(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    read_safetensors_header(path)
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError, TypeError, KeyError, RuntimeError) as e:
        raise _damaged(path, e) from None


def load_state_tensors(ckpt: Path) -> dict[str, torch.Tensor]:
    """state.safetensors of a last/ checkpoint (optimizer tensors, RNG state)."""
    tensors = _load_tensors(Path(ckpt) / STATE)
    if "rng.torch" not in tensors:
        raise _damaged(Path(ckpt) / STATE, "no 'rng.torch' tensor in it")
    return tensors


def verify_checkpoint(ckpt: Path) -> None:
    """Check every file of a checkpoint directory before any of it is used: the JSON files there
    parse as objects, and a last/ checkpoint (one with trainer.json) has a readable trainer.json and
    state.safetensors. Reads only the safetensors headers, not the tensors."""
    ckpt = Path(ckpt)
    if (ckpt / CONFIG).exists() or (ckpt / CONFIG).is_symlink():
        cfg = read_json(ckpt, CONFIG)
        # a config written by task_meta (it has the version stamp) has all of task_meta's sections
        need = ("task", "model", "data", "train") if "seqlab" in cfg else ("task",)
        missing = [k for k in need if k not in cfg]
        if missing:
            raise _damaged(ckpt / CONFIG, f"no {', '.join(repr(k) for k in missing)} in it")
        wrong = [k for k in need[1:] if not isinstance(cfg[k], dict)]
        if wrong or not isinstance(cfg["task"], str):
            key = wrong[0] if wrong else "task"
            raise _damaged(ckpt / CONFIG, f"its {key!r} is a {type(cfg[key]).__name__}")
    if (ckpt / "vocab.json").exists() or (ckpt / "vocab.json").is_symlink():
        read_json(ckpt, "vocab.json")
    if (ckpt / TRAINER).exists() or (ckpt / TRAINER).is_symlink():
        read_trainer_state(ckpt)
        if "rng.torch" not in read_safetensors_header(ckpt / STATE):
            raise _damaged(ckpt / STATE, "no 'rng.torch' tensor in it")


def _shape_mismatches(model: torch.nn.Module, header: dict) -> list[str]:
    out = []
    for k, v in model.state_dict().items():
        if k in header and tuple(header[k]["shape"]) != tuple(v.shape):
            out.append(f"size mismatch for {k}: checkpoint {tuple(header[k]['shape'])} vs model {tuple(v.shape)}")
    return out


def _names(keys, n: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def load_weights(model: torch.nn.Module, ckpt: Path, device: str | torch.device = "cpu") -> None:
    """Load model.safetensors into `model` and move it to `device`. The whole checkpoint is checked
    first (`verify_checkpoint`); damage or a shape mismatch is a one-line user error."""
    ckpt = Path(ckpt)
    path = ckpt / WEIGHTS
    verify_checkpoint(ckpt)
    header = read_safetensors_header(path)
    bad = _shape_mismatches(model, header)
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise UserError(f"{ckpt}: weights do not fit the model in its config.json ({bad[0]}{more}); "
                        f"retrain, or restore {CONFIG}")
    try:
        missing, unexpected = load_model(model, str(path), strict=False, device=str(device))
    except RuntimeError as e:  # torch's load_state_dict: several lines, keep the first problem
        lines = [s.strip() for s in str(e).splitlines() if s.strip()]
        why = next((s for s in lines if not s.startswith("Error(s) in loading")), lines[0] if lines else "")
        raise UserError(f"{ckpt}: weights do not fit the model in its config.json ({_line(why)}); "
                        f"retrain, or restore {CONFIG}") from None
    except (SafetensorError, OSError, ValueError, TypeError, KeyError) as e:
        raise _damaged(path, e) from None
    if missing or unexpected:
        raise UserError(f"{ckpt}: weights do not match its config.json (missing {_names(missing) or 'none'}; "
                        f"unexpected {_names(unexpected) or 'none'}); retrain, or restore {CONFIG}")
    model.to(device)


# ---- writing ---------------------------------------------------------------------------------
def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _check_finite(path: Path, model: torch.nn.Module) -> None:
    for k, v in model.state_dict().items():
        if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all()):
            raise NonFiniteWeights(
                f"{path} not written: the weights hold NaN or inf (first in {k}); lower --lr or set --clip; "
                f"the previous checkpoint, if any, is kept"
            )


def _fsync(path: Path, strict: bool = True) -> None:
    """Flush `path` to disk; a file's error (EIO, or ENOSPC from delayed allocation) is raised unless
    not `strict` (a directory: some file systems cannot fsync one)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if strict:
            raise


_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def _write_error(path: Path, e: BaseException) -> BaseException:
    """The UserError for an OSError (or safetensors' wrapped I/O error) while writing `path`."""
    code = getattr(e, "errno", None)
    text = str(e)
    if code is None and isinstance(e, SafetensorError):  # the Rust writer: "I/O error: ... (os error 27)"
        m = re.search(r"os error (\d+)|code: (\d+)", text)
        code = int(m.group(1) or m.group(2)) if m else None
    if code in _FULL:
        return UserError(f"no space left to write {path} ({os.strerror(code)}); free disk space, then --resume "
                         "(the previous checkpoint is kept)")
    if code in _DENIED:
        return UserError(f"cannot write {path} ({os.strerror(code)}); choose another --out or fix its permissions")
    return e


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    meta: dict[str, dict],
    tensors: dict[str, torch.Tensor] | None = None,
    trainer: dict | None = None,
) -> Path:
    """Write `model` weights, the JSON files in `meta` (name -> object), and optionally extra
    `tensors` (state.safetensors) and `trainer` state (trainer.json), atomically, to `path`.

    Raises NonFiniteWeights (writing nothing) if a weight is NaN or inf, and a UserError when the
    disk is full; in every failure the previous checkpoint at `path` stays as it was and no
    temporary directory is left behind."""
    path = Path(path)
    _check_finite(path, model)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_model(model, str(tmp / WEIGHTS), metadata={"seqlab": __version__})
        for name, obj in meta.items():
            (tmp / name).write_text(json.dumps(obj, indent=2) + "\n")
        if tensors is not None:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / STATE))
        if trainer is not None:
            (tmp / TRAINER).write_text(json.dumps(trainer, indent=2) + "\n")
        for f in tmp.iterdir():  # on disk before the rename, so a power cut cannot leave empty files
            _fsync(f)
    except BaseException as e:  # KeyboardInterrupt included: never leave a half-written temp dir
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, (OSError, SafetensorError)):
            err = _write_error(path, e)
            if err is not e:
                raise err from None
        raise
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync(path.parent, strict=False)
    shutil.rmtree(old, ignore_errors=True)
    return path
