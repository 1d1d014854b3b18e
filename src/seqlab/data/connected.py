"""Connected speech from isolated words: clips of one speaker joined with random pauses, as WAV + CSV.

    utts = from_names("fsdd/recordings", "{label}_{speaker}_{index}")
    csv_path = make_connected([u for u in utts if int(u.fields["index"]) < 5], "connected/test", count=500)

Each generated utterance takes 1-7 (`min_words`..`max_words`) clips of one speaker (the `speaker` field;
one group when there is none), puts a random pause of `gap_ms` (50-300 ms) before, between and after
them, optionally adds white noise of standard deviation `noise` (full scale 1.0), and is written as 16-bit
PCM WAV beside `transcripts.csv` (path,transcript,speaker,words) in `out`. The same seed gives the same
files. A recogniser trained on such utterances has to find the word boundaries itself: that is what
CTC learns.
"""

from __future__ import annotations

import csv
import io
import wave as wavelib
from pathlib import Path

import numpy as np

from seqlab.data.audio import read_wav
from seqlab.data.utterances import Utterance
from seqlab.errors import UserError


def write_wav(path: str | Path, x: np.ndarray, rate: int) -> None:
    """A mono float wave in [-1, 1] as 16-bit PCM WAV (the standard library's writer)."""
    pcm = (np.clip(x, -1.0, 1.0) * 32767).round().astype("<i2")
    with wavelib.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())


def make_connected(utts: list[Utterance], out: str | Path, count: int = 500, min_words: int = 1,
                   max_words: int = 7, gap_ms: tuple[float, float] = (50.0, 300.0), noise: float = 0.0,
                   seed: int = 1, sample_rate: int | None = None, log=None) -> Path:
    """Write `count` connected utterances into `out` and return the path of its transcripts.csv."""
    if not utts:
        raise UserError("no recordings to build connected speech from")
    if not 1 <= min_words <= max_words:
        raise UserError(f"words per utterance must satisfy 1 <= min ({min_words}) <= max ({max_words})")
    if count < 1:
        raise UserError(f"--count must be at least 1, not {count}")
    lo, hi = gap_ms
    if not 0 <= lo <= hi:
        raise UserError(f"--gap-ms must be MIN,MAX with 0 <= MIN <= MAX, not {lo},{hi}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder for the generated recordings")
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[Utterance]] = {}
    for u in utts:
        groups.setdefault(u.fields.get("speaker", ""), []).append(u)
    names = sorted(groups)
    weights = np.array([len(groups[n]) for n in names], float)
    rng = np.random.default_rng(seed)
    rate = sample_rate or read_wav(utts[0].path)[1]
    waves: dict[Path, np.ndarray] = {}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "transcript", "speaker", "words"])
    for n in range(count):
        spk = names[rng.choice(len(names), p=weights / weights.sum())]
        k = int(rng.integers(min_words, max_words + 1))
        picks = [groups[spk][i] for i in rng.integers(0, len(groups[spk]), k)]
        parts = []
        for u in picks:
            parts.append(np.zeros(int(rng.uniform(lo, hi) * rate / 1000), np.float32))
            if u.path not in waves:
                waves[u.path] = read_wav(u.path, rate)[0]
            parts.append(waves[u.path])
        parts.append(np.zeros(int(rng.uniform(lo, hi) * rate / 1000), np.float32))
        x = np.concatenate(parts)
        if noise > 0:
            x = x + rng.normal(0.0, noise, len(x)).astype(np.float32)
        name = f"conn_{n:05d}.wav"
        write_wav(out / name, x, rate)
        w.writerow([name, " ".join(u.transcript for u in picks), spk, k])
        if log and (n + 1) % 500 == 0:
            log(f"  {n + 1}/{count} utterances")
    path = out / "transcripts.csv"
    path.write_text(buf.getvalue())
    return path
