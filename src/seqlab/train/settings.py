"""The Trainer's settings (TrainConfig), its learning-rate schedules, device choice and mixed precision."""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from seqlab.errors import UserError

SCHEDULES = ("constant", "linear", "cosine", "slanted")


@dataclass
class TrainConfig:
    """Settings of the training loop (saved in config.json under "train")."""

    epochs: int = 10  # 0 = no limit: train until the time budget is spent
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    clip: float = 1.0  # max global gradient norm; 0 = no clipping
    schedule: str = "constant"  # constant | linear | cosine (decay to 0 over all steps) | slanted (ULMFiT)
    warmup: int = 0  # steps of linear warm-up
    patience: int = 0  # stop after this many evaluations without dev improvement; 0 = never
    seed: int = 1
    device: str = "auto"
    save_every: int = 500  # also write last/ every N steps; 0 = only at epoch ends
    time_budget: float = 0.0  # stop after this many seconds of training (evaluation not counted); 0 = no limit
    log_every: int = 20  # steps between metrics-log lines
    eval_every: int = 0  # also evaluate on dev every N steps; 0 = only at epoch ends
    target: float | None = None  # stop once the dev metric reaches this value (>= for mode max, <= for min)
    amp: str = "none"  # none | bf16 | fp16: run step_fn under autocast (bf16 on CPU or GPU, fp16 on GPU)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_factor(step: int, total: int, cfg: TrainConfig, time_frac: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based).

    The decay follows whichever runs out first: the steps (`total`, 0 = unknown) or the time
    budget (`time_frac`, the share of it spent), so a `--time` run ends at the bottom of its schedule.
    """
    if cfg.warmup and step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.schedule == "constant" or (total and total <= cfg.warmup):
        return 1.0
    step_frac = (step - cfg.warmup) / max(1, total - cfg.warmup) if total else 0.0
    frac = min(1.0, max(step_frac, time_frac))
    if cfg.schedule == "linear":
        return 1.0 - frac
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    if cfg.schedule == "slanted":  # ULMFiT's slanted triangle: up over the first 10%, down to 1/32 of the peak
        p = frac / 0.1 if frac < 0.1 else 1.0 - (frac - 0.1) / 0.9
        return (1.0 + 31.0 * p) / 32.0
    raise UserError(f"unknown schedule {cfg.schedule!r}; choose one of {', '.join(SCHEDULES)}")


AMP = ("none", "bf16", "fp16")


def bf16_native(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 matrix products natively (CPU: AVX-512 BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def bf16_recurrent_ok(device_type: str) -> bool:
    """Whether the recurrent layers run under bfloat16 autocast on this device: some CPUs' oneDNN builds
    have no bfloat16 LSTM primitive ("could not create a primitive descriptor"), so probe once."""
    if device_type != "cpu":
        return True
    try:
        lstm = torch.nn.LSTM(4, 4, batch_first=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = lstm(torch.zeros(1, 2, 4))
        out.float().sum().backward()
        return True
    except RuntimeError:
        return False


def resolve_amp(amp: str, device: str = "auto") -> str:
    """'auto' -> 'bf16' where the device runs it natively, else 'none'; other values unchanged."""
    if amp != "auto":
        return amp
    d = pick_device(device)
    return "bf16" if bf16_native(d) and bf16_recurrent_ok(d.type) else "none"


def autocast(cfg: TrainConfig, device: torch.device):
    """The autocast context of `cfg.amp` on `device` (a no-op context for 'none')."""
    if cfg.amp not in AMP:
        raise UserError(f"unknown --amp {cfg.amp!r}; choose one of {', '.join(AMP)}")
    if cfg.amp == "fp16" and device.type != "cuda":
        raise UserError("--amp fp16 needs a CUDA GPU; on CPU use --amp bf16")
    if cfg.amp == "bf16" and not bf16_recurrent_ok(device.type):
        raise UserError("--amp bf16: this CPU's oneDNN has no bfloat16 kernels for the recurrent layers; use "
                        "--amp none (--amp auto chooses it here)")
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype, enabled=cfg.amp != "none")
