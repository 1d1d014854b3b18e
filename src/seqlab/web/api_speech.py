"""The speech page's API: one recording through a CTC recogniser, as the four panels of `seqlab plot speech`.

    GET  /api/speech/clips?model=RUN        the WAV files inside the run's directory (`examples/`, written by
                                            `seqlab speech train`: a few of its test or dev recordings)
    POST /api/speech          {model, clip}  one of those clips
    POST /api/speech/upload?model=RUN        the request body is a WAV file (at most MAX_AUDIO bytes)

Both POSTs answer (T frames, T' encoder steps, L labels with the blank first, H hidden values per step):
    frames (T, dim)          the normalised log-mel (or MFCC) frames the model reads; frame_s seconds apart
    probs (T', L)            CTC posteriors per encoder step (step_s seconds apart); units (L,) name them
    alignment [{label, unit, start, end, step_start, step_end}]   each decoded label's aligned steps, in seconds
    hidden (T', H)           the recurrent encoder's top-layer outputs (both directions side by side)
    text, words [{word, confidence, start, end}]                  the greedy transcript
A clip is named by its path inside the run (checked like model names: no '..', nothing outside --models).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Query, Request
from pydantic import Field

from seqlab.errors import UserError
from seqlab.web.api_unroll import num
from seqlab.web.registry import NotFound, check_name
from seqlab.web.schemas import ModelName, Strict

router = APIRouter(prefix="/api/speech")
MAX_AUDIO = 2 * 1024 * 1024  # bytes of an uploaded WAV (about a minute of 16 kHz 16-bit mono)
MAX_CLIPS = 200  # WAVs listed per run
MAX_SECONDS = 60.0  # the longest recording the page shows


class SpeechRequest(Strict):
    model: str = ModelName
    clip: str = Field(min_length=1, max_length=200, description="a WAV listed by /api/speech/clips")


def clips(run: Path) -> list[str]:
    """The .wav files inside a run directory (up to two folders deep), as POSIX paths relative to it."""
    found = sorted(p for pattern in ("*.wav", "*/*.wav", "*/*/*.wav") for p in run.glob(pattern) if p.is_file())
    return [p.relative_to(run).as_posix() for p in found[:MAX_CLIPS]]


def view_json(view: dict, name: str, source: str) -> dict:
    import numpy as np

    units, ss = view["units"], view["step_s"]
    align = [{"label": "␣" if units[k] == " " else units[k], "unit": int(k), "step_start": s, "step_end": e,
              "start": round(s * ss, 4), "end": round(e * ss, 4)} for k, (s, e) in zip(view["labels"], view["spans"])]
    return {"model": name, "source": source, "text": view["text"], "words": view["words"], "units": units,
            "frame_s": view["frame_s"], "step_s": ss, "frames": num(view["frames"]),
            "probs": num(np.exp(view["log_probs"])), "alignment": align, "hidden": num(view["hidden"]),
            "directions": view["directions"]}


def _inspect(request: Request, model: str, item, source: str) -> dict:
    reg = request.app.state.registry
    with reg.lock:
        _, pipe = reg.get(model, ("speech",))
        if pipe.head != "ctc":
            raise UserError(f"{model} classifies whole clips; the speech page shows a CTC recogniser's posteriors")
        wave = pipe.cache.wave(item)
        if len(wave) > MAX_SECONDS * pipe.spec.sample_rate:
            raise UserError(f"the recording lasts {len(wave) / pipe.spec.sample_rate:.0f} s; the page shows at most "
                            f"{MAX_SECONDS:.0f} s")
        return view_json(pipe.inspect(item), model, source)


@router.get("/clips")
def list_clips(request: Request, model: str = Query(min_length=1, max_length=200)) -> dict:
    """The WAV files stored in run `model`'s directory."""
    return {"model": model, "clips": clips(request.app.state.registry.run_dir(model))}


@router.post("")
def speech(req: SpeechRequest, request: Request) -> dict:
    """One of the run's own clips through the recogniser."""
    run = request.app.state.registry.run_dir(req.model)
    name = check_name(req.clip)
    if name not in clips(run):
        raise NotFound(f"no clip {req.clip!r} in run {req.model!r}; see /api/speech/clips?model={req.model}")
    return _inspect(request, req.model, run / name, name)


@router.post("/upload")
async def upload(request: Request, model: str = Query(min_length=1, max_length=200)) -> dict:
    """A WAV file sent as the request body through the recogniser (read, checked and resampled like any)."""
    from seqlab.data.audio import read_wav

    body = await request.body()
    if not body:
        raise UserError("the upload is empty; choose a WAV file")
    request.app.state.registry.run_dir(model)  # 403 / 404 before any work
    fd, tmp = tempfile.mkstemp(suffix=".wav", prefix="seqlab-upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        try:
            wave, rate = read_wav(tmp)
        except UserError as e:  # the message names the temporary file: name the upload instead
            raise UserError(str(e).replace(tmp, "the uploaded file")) from None
    finally:
        os.unlink(tmp)
    return _inspect(request, model, (wave, rate), "upload")
