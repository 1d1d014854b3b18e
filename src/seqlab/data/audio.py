"""Audio in: WAV files -> mono float waves -> log-mel (or MFCC) frames, computed batched in torch and cached.

    wave, sr = read_wav("7_jackson_0.wav", sample_rate=8000)      # (samples,) float32 in [-1, 1]
    spec = FeatureSpec(sample_rate=8000)                             # 40 log-mels, 25 ms windows, 10 ms hop
    frames = log_mel([torch.from_numpy(wave)], spec)[0]              # (frames, n_mels)
    feats = FeatureCache(spec, "~/.cache/seqlab/speech").get(paths)  # seqlab.data.audio_cache

WAV files are read with `soundfile` (PCM 8/16/24/32-bit, float, any channel count; mixed down to mono)
or, where it is not installed, the standard library's `wave` (PCM only). Another sample rate is
resampled to the model's with a polyphase filter (scipy). The filterbank is librosa's default (Slaney
mel scale and area normalisation), written out here and checked against `librosa.filters.mel` in the
tests; frames are `torch.stft` (Hann window, centred, zero-padded ends) power spectra, so a clip's
frames are the same computed alone or padded inside a batch.
"""

from __future__ import annotations

import math
import wave as wavelib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from seqlab.errors import UserError

SILENT_PEAK = 1e-4  # -80 dBFS: below this a whole clip is taken for silence (16-bit audio's LSB is 3e-5)
KINDS = ("logmel", "mfcc")


# ---- reading ------------------------------------------------------------------------------------
def _read_stdlib(path: Path) -> tuple[np.ndarray, int]:
    """(samples, channels) float32 and the rate of a PCM WAV, by the standard library."""
    try:
        with wavelib.open(str(path), "rb") as w:
            width, channels, rate, n = w.getsampwidth(), w.getnchannels(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wavelib.Error, EOFError) as e:
        raise UserError(f"{path}: not a PCM WAV file the standard library reads ({e}); convert it to 16-bit "
                        "PCM WAV, or pip install 'seqlab[speech]' for soundfile") from None
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float32) / 2**23
    elif width in (2, 4):
        x = np.frombuffer(raw, f"<i{width}").astype(np.float32) / 2 ** (8 * width - 1)
    else:
        raise UserError(f"{path}: {8 * width}-bit samples; give 8, 16, 24 or 32-bit PCM")
    return x.reshape(-1, max(channels, 1)), rate


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        why = str(e).split(":")[-1].strip() or type(e).__name__
        raise UserError(f"{path}: not an audio file soundfile can read ({why}); give a WAV file") from None
    return x, rate


def read_wav(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """A mono float32 wave (samples,) in [-1, 1] and its rate (`sample_rate` when given: resampled to it).

    Raises a one-line UserError for a missing, empty, unreadable, 0 Hz or silent file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such audio file; check the path" if not path.exists() else
                        f"{path} is not a file; give a WAV file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (0 bytes); give a WAV recording")
    try:
        import soundfile  # noqa: F401
    except (ImportError, OSError):  # OSError: the libsndfile library itself is missing
        x, rate = _read_stdlib(path)
    else:
        try:
            x, rate = _read_soundfile(path)
        except UserError as e:  # a PCM WAV that libsndfile refuses (a 0 Hz header): the header says why
            try:
                x, rate = _read_stdlib(path)
            except UserError:
                raise e from None
    if not rate or rate <= 0:
        raise UserError(f"{path}: the header gives a sample rate of {rate} Hz; the file is damaged")
    if x.shape[0] == 0:
        raise UserError(f"{path}: the recording has no samples; give a non-empty WAV file")
    mono = x.mean(1) if x.shape[1] > 1 else x[:, 0]
    if not np.isfinite(mono).all():
        raise UserError(f"{path}: the recording holds NaN or infinite samples; the file is damaged")
    if float(np.abs(mono).max()) < SILENT_PEAK:
        raise UserError(f"{path}: the recording is silent (peak below -80 dBFS); record it again or leave it out")
    if sample_rate and rate != sample_rate:
        mono, rate = resample(mono, rate, sample_rate), sample_rate
    return np.ascontiguousarray(mono, dtype=np.float32), rate


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`x` from `rate` Hz to `target` Hz (polyphase filtering, scipy.signal.resample_poly)."""
    if rate == target:
        return x
    from seqlab.extras import require

    signal = require("scipy.signal", "resampling audio to the model's sample rate")
    g = math.gcd(int(rate), int(target))
    return signal.resample_poly(x, target // g, rate // g).astype(np.float32)


def trim(x: np.ndarray, rate: int, top_db: float) -> np.ndarray:
    """`x` without the leading and trailing stretches whose 25 ms RMS is more than `top_db` below the loudest."""
    frame, hop = max(1, int(0.025 * rate)), max(1, int(0.010 * rate))
    if len(x) <= frame or top_db <= 0:
        return x
    starts = np.arange(0, len(x) - frame + 1, hop)
    csum = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    db = 10 * np.log10((csum[starts + frame] - csum[starts]) / frame + 1e-20)
    keep = np.flatnonzero(db > db.max() - top_db)
    return x[starts[keep[0]] : starts[keep[-1]] + frame]


def perturb_speed(x: np.ndarray, speed: float) -> np.ndarray:
    """`x` played `speed` times as fast (1.1: 10% shorter and higher), by resampling it."""
    if speed == 1.0:
        return x
    from fractions import Fraction

    f = Fraction(1 / speed).limit_denominator(50)
    return resample(x, f.denominator, f.numerator)


# ---- features -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureSpec:
    """What one frame is: `kind` logmel (n_mels log energies) or mfcc (the first n_mfcc cepstra of them),
    from `win_ms` Hann windows every `hop_ms` at `sample_rate` Hz (n_fft: the next power of two)."""

    sample_rate: int = 16000
    kind: str = "logmel"
    n_mels: int = 40
    n_mfcc: int = 13
    win_ms: float = 25.0
    hop_ms: float = 10.0
    trim_db: float = 0.0  # > 0: cut leading and trailing audio this many dB below the loudest 25 ms

    @property
    def win_length(self) -> int:
        return max(2, round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop(self) -> int:
        return max(1, round(self.sample_rate * self.hop_ms / 1000))

    @property
    def n_fft(self) -> int:
        return 1 << (self.win_length - 1).bit_length()

    @property
    def dim(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def frames(self, samples: int) -> int:
        """Frames of a clip of `samples` samples (centred windows: one every hop, the first at sample 0)."""
        return 1 + samples // self.hop

    def to_json(self) -> dict:
        return asdict(self)


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    mel = f * 3 / 200  # Slaney: linear below 1 kHz, logarithmic above (librosa's default, htk=False)
    log = f >= 1000
    return np.where(log, 15 + np.log(np.maximum(f, 1e-10) / 1000) / (np.log(6.4) / 27), mel)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15, 1000 * np.exp((np.log(6.4) / 27) * (m - 15)), m * 200 / 3)


def vtlp_warp(f, alpha: float, nyquist: float, f_hi: float = 0.8):
    """Frequencies `f` (Hz) under a vocal-tract-length warp by `alpha` (Jaitly & Hinton 2013): scaled by
    alpha up to a knee (`f_hi` of Nyquist, lowered for alpha > 1), then a straight line that keeps
    Nyquist at Nyquist, so the map is monotonic and stays inside the band."""
    f = np.asarray(f, dtype=np.float64)
    knee = f_hi * nyquist * min(alpha, 1.0) / alpha
    top = nyquist - (nyquist - alpha * knee) / (nyquist - knee) * (nyquist - f)
    return np.where(f <= knee, f * alpha, top)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
                   warp: float = 1.0):
    """(n_mels, 1 + n_fft // 2) triangular filters, as `librosa.filters.mel` (Slaney scale and norm);
    `warp` != 1 moves every filter edge by `vtlp_warp` (a longer or shorter vocal tract)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    if warp != 1.0:
        edges = vtlp_warp(edges, warp, sample_rate / 2)
    ramps = edges[:, None] - freqs[None, :]
    fdiff = np.diff(edges)
    lower, upper = -ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def _dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_in, n_out) orthonormal DCT-II, as scipy.fft.dct(norm='ortho') along the mel axis."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)
    m = torch.cos(math.pi / n_in * (n[:, None] + 0.5) * k[None, :]) * math.sqrt(2.0 / n_in)
    m[:, 0] /= math.sqrt(2.0)
    return m.float()


_FILTERS: dict = {}


def mel_power(waves: torch.Tensor, spec: FeatureSpec, center: bool = True) -> torch.Tensor:
    """Mel power spectrogram of a padded batch (batch, samples) -> (batch, frames, n_mels); center=False: the
    windows start at sample 0 instead of being centred on hop multiples (the caller gives the context)."""
    return torch.matmul(power_spectrum(waves, spec, center), filterbank(spec).T.to(waves.dtype))


def filterbank(spec: FeatureSpec, warp: float = 1.0) -> torch.Tensor:
    """The spec's (n_mels, freq) mel filters (kept once made), warped by `warp` (see `vtlp_warp`)."""
    key = (spec.sample_rate, spec.n_fft, spec.n_mels, round(warp, 6))
    if key not in _FILTERS:
        _FILTERS[key] = torch.from_numpy(mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels, warp=warp))
    return _FILTERS[key]


def power_spectrum(waves: torch.Tensor, spec: FeatureSpec, center: bool = True) -> torch.Tensor:
    """|STFT|^2 of a padded batch (batch, samples) -> (batch, frames, 1 + n_fft // 2), Hann windows."""
    window = torch.hann_window(spec.win_length, periodic=True, dtype=waves.dtype)
    stft = torch.stft(waves, spec.n_fft, spec.hop, spec.win_length, window, center=center, pad_mode="constant",
                      return_complex=True)  # (batch, freq, frames)
    return (stft.real**2 + stft.imag**2).transpose(1, 2)


def log_mel(waves: list[torch.Tensor], spec: FeatureSpec, batch: int = 64, power: bool = False) -> list[torch.Tensor]:
    """Frames of each wave (samples,): a list of (frames_i, spec.dim) float32 tensors, computed in padded
    batches of similar length (the zero padding never changes a clip's own frames); power=True: the
    power spectra (frames_i, 1 + n_fft // 2) instead, for `warped_features` to make the frames of later."""
    out: list[torch.Tensor | None] = [None] * len(waves)
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        x = torch.nn.utils.rnn.pad_sequence([waves[i].float() for i in idx], batch_first=True)
        feats = power_spectrum(x, spec) if power else mel_to_features(mel_power(x, spec), spec)
        for row, i in enumerate(idx):
            out[i] = feats[row, : spec.frames(len(waves[i]))].contiguous()
    return out


def mel_to_features(mel: torch.Tensor, spec: FeatureSpec) -> torch.Tensor:
    """Mel power (..., n_mels) -> the spec's frames: log energies, or their first n_mfcc cepstra."""
    feats = torch.log(mel + 1e-6)
    return feats @ _dct_matrix(spec.n_mels, spec.n_mfcc) if spec.kind == "mfcc" else feats


def warped_features(power: torch.Tensor, spec: FeatureSpec, warps: list[float]) -> torch.Tensor:
    """Frames (batch, time, dim) of padded power spectra (batch, time, freq), clip b through the mel
    filterbank warped by warps[b] (vocal-tract-length perturbation); warp 1 gives `log_mel`'s frames."""
    banks = torch.stack([filterbank(spec, w).T for w in warps]).to(power.device, power.dtype)
    return mel_to_features(torch.bmm(power, banks), spec)


def chunk_frames(wave: np.ndarray, start: int, count: int, spec: FeatureSpec) -> torch.Tensor:
    """Frames start .. start+count-1 of `wave`, equal to those `log_mel` computes from the whole wave, from
    only the samples they cover (half a window beyond the last frame): what a stream computes chunk by chunk."""
    half = spec.n_fft // 2
    lo = start * spec.hop - half
    hi = lo + (count - 1) * spec.hop + spec.n_fft
    seg = np.zeros(hi - lo, np.float32)
    a, b = max(lo, 0), min(hi, len(wave))
    if b > a:
        seg[a - lo : b - lo] = wave[a:b]
    return mel_to_features(mel_power(torch.from_numpy(seg)[None], spec, center=False)[0], spec)


NORMALIZE = ("global", "utterance", "cmn", "none")


def normalise(frames: torch.Tensor, how: str, stats: dict | None = None) -> torch.Tensor:
    """(frames, dim) standardised per utterance ('utterance'), with training statistics ('global':
    stats {"mean": [...], "std": [...]}), less their own mean and over the training std of such frames
    ('cmn': cepstral mean normalisation, which removes a recording's gain and microphone colouring, both
    constant offsets of log energies), or unchanged ('none')."""
    if how == "utterance":
        return (frames - frames.mean(0)) / frames.std(0, unbiased=False).clamp_min(1e-3)
    if how == "cmn":
        return (frames - frames.mean(0)) / torch.tensor(stats["std"])
    if how == "global":
        return (frames - torch.tensor(stats["mean"])) / torch.tensor(stats["std"])
    return frames


def global_stats(frames: list[torch.Tensor], centre: bool = False) -> dict:
    """Per-dimension mean and std over every frame of the training clips (centre: of each clip less its
    own mean, for 'cmn'), as JSON."""
    allf = torch.cat([f - f.mean(0) if centre else f for f in frames], 0).double()
    return {"mean": allf.mean(0).tolist(), "std": allf.std(0, unbiased=False).clamp_min(1e-3).tolist()}
