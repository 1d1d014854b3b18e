"""The frames of audio files, computed once: one cached .npy per (file, size, mtime, feature settings).

    cache = FeatureCache(FeatureSpec(sample_rate=8000), default_cache_dir())
    frames = cache.get(paths)             # [(frames, dim) float32 arrays], computed in batches when missing
    faster = cache.get(paths, speed=1.1)  # speed-perturbed copies, cached under their own key

Cached arrays are written through a temporary file and a rename and read with allow_pickle=False; a
damaged entry or an unwritable cache folder only costs the recomputation.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from seqlab.data.audio import FeatureSpec, log_mel, perturb_speed, read_wav, resample, trim
from seqlab.errors import UserError


# ---- the cache ----------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """$SEQLAB_CACHE (or ~/.cache/seqlab) / speech."""
    base = os.environ.get("SEQLAB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqlab"
    return Path(base) / "speech"


class FeatureCache:
    """The frames of audio files, one cached .npy per (file, size, mtime, FeatureSpec); `directory` None
    keeps them in memory only. Uncached files are read and computed together, in batches."""

    def __init__(self, spec: FeatureSpec, directory: str | Path | None = None):
        self.spec, self.dir = spec, Path(directory).expanduser() if directory else None
        self.memory: dict[str, np.ndarray] = {}
        self.tag = hashlib.sha1(json.dumps(spec.to_json(), sort_keys=True).encode()).hexdigest()[:12]

    def _key(self, path: Path, speed: float = 1.0) -> str:
        st = path.stat()
        at = "" if speed == 1.0 else f"|speed {speed:g}"
        return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.tag}{at}".encode()).hexdigest()

    def _file(self, key: str) -> Path:
        return self.dir / self.tag / key[:2] / f"{key}.npy"

    def _load(self, key: str) -> np.ndarray | None:
        if key in self.memory:
            return self.memory[key]
        if self.dir is not None and self._file(key).is_file():
            try:
                arr = np.load(self._file(key), allow_pickle=False)
            except (OSError, ValueError):  # a damaged cache entry: computed again
                return None
            if arr.ndim == 2 and arr.shape[1] == self.spec.dim:
                self.memory[key] = arr
                return arr
        return None

    def _store(self, key: str, arr: np.ndarray) -> None:
        self.memory[key] = arr
        if self.dir is None:
            return
        f = self._file(key)
        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            os.replace(tmp, f)
        except OSError:  # a read-only or full cache directory only costs the recomputation
            pass

    def get(self, items: list, speed: float = 1.0) -> list[np.ndarray]:
        """(frames, dim) float32 arrays for paths (cached) or (wave, sample_rate) pairs (not cached);
        `speed` != 1 first plays each recording that much faster (speed perturbation: shorter and higher)."""
        out: list[np.ndarray | None] = [None] * len(items)
        todo, keys = [], {}
        for i, item in enumerate(items):
            if isinstance(item, (str, Path)):
                p = Path(item)
                if not p.is_file():
                    read_wav(p)  # the one-line error for a missing path or a folder
                keys[i] = self._key(p, speed)
                out[i] = self._load(keys[i])
            if out[i] is None:
                todo.append(i)
        for s in range(0, len(todo), 256):  # bounded memory: read and compute 256 clips at a time
            part = todo[s : s + 256]
            waves = [torch.from_numpy(perturb_speed(self.wave(items[i]), speed)) for i in part]
            for i, f in zip(part, log_mel(waves, self.spec)):
                out[i] = f.numpy()
                if i in keys:
                    self._store(keys[i], out[i])
        return out

    def wave(self, item) -> np.ndarray:
        """The mono wave of a path or a (wave, sample_rate) pair, at the spec's rate."""
        if isinstance(item, (str, Path)):
            return trim(read_wav(item, self.spec.sample_rate)[0], self.spec.sample_rate, self.spec.trim_db)
        try:
            x, rate = item
            x = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError):
            raise UserError("give audio as a file path or a (wave, sample_rate) pair") from None
        if x.ndim == 2:
            x = x.mean(1)
        if x.ndim != 1 or not len(x) or not rate or rate <= 0:
            raise UserError(f"a wave must be a non-empty 1-d array with a positive sample rate, not {x.shape} at "
                            f"{rate} Hz")
        return trim(resample(x, int(rate), self.spec.sample_rate), self.spec.sample_rate, self.spec.trim_db)
