"""Audio in: WAV reading (formats, channels, rates), log-mel features against librosa, the cache, bad files."""

import wave

import numpy as np
import pytest
import torch

from seqlab.data import audio
from seqlab.data.audio import FeatureSpec, log_mel, mel_filterbank, mel_power, read_wav
from seqlab.data.audio_cache import FeatureCache
from seqlab.errors import UserError

sf = pytest.importorskip("soundfile")
RATE = 8000


def tone(freq=440.0, seconds=0.3, rate=RATE, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("n_fft,n_mels,rate", [(256, 40, 8000), (512, 80, 16000), (1024, 64, 22050)])
def test_mel_filterbank_equals_librosa(n_fft, n_mels, rate):
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels)
    np.testing.assert_allclose(mel_filterbank(rate, n_fft, n_mels), ref, atol=1e-7, rtol=1e-5)


def test_mel_spectrogram_equals_librosa_on_the_same_signal():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    x = (tone(300, 0.5) + tone(1700, 0.5, amp=0.2) + rng.normal(0, 0.01, 4000)).astype(np.float32)
    spec = FeatureSpec(sample_rate=RATE)
    ref = librosa.feature.melspectrogram(y=x, sr=RATE, n_fft=spec.n_fft, hop_length=spec.hop,
                                         win_length=spec.win_length, n_mels=spec.n_mels, power=2.0)
    ours = mel_power(torch.from_numpy(x)[None].double(), spec)[0].numpy().T
    assert ours.shape == ref.shape == (40, spec.frames(len(x)))
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * ref.max())
    logmel = log_mel([torch.from_numpy(x)], spec)[0].numpy()
    np.testing.assert_allclose(logmel, np.log(ref.T + 1e-6), atol=2e-3)


def test_mfcc_is_the_orthonormal_dct_of_the_log_mels():
    from scipy.fft import dct

    x = torch.from_numpy(tone(500, 0.4))
    mel = log_mel([x], FeatureSpec(sample_rate=RATE))[0].numpy()
    mfcc = log_mel([x], FeatureSpec(sample_rate=RATE, kind="mfcc", n_mfcc=13))[0].numpy()
    np.testing.assert_allclose(mfcc, dct(mel, type=2, norm="ortho", axis=1)[:, :13], atol=1e-3)


def test_batched_frames_equal_frames_computed_alone():
    spec = FeatureSpec(sample_rate=RATE)
    waves = [torch.from_numpy(tone(200 + 100 * i, 0.1 + 0.07 * i)) for i in range(6)]
    together = log_mel(waves, spec, batch=4)
    for w, f in zip(waves, together):
        assert f.shape == (spec.frames(len(w)), 40)
        torch.testing.assert_close(f, log_mel([w], spec)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_reads_pcm_and_float_wavs(tmp_path, subtype):
    x = tone()
    p = tmp_path / "a.wav"
    sf.write(p, x, RATE, subtype=subtype)
    y, rate = read_wav(p)
    assert rate == RATE and y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1.5 / 128 if subtype == "PCM_U8" else 1e-4)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32"])
def test_stdlib_reader_matches_soundfile(tmp_path, subtype):
    p = tmp_path / "a.wav"
    sf.write(p, np.stack([tone(), tone(880)], 1), RATE, subtype=subtype)
    x, rate = audio._read_stdlib(p)
    y, rate2 = audio._read_soundfile(p)
    assert rate == rate2 == RATE and x.shape == y.shape == (2400, 2)
    np.testing.assert_allclose(x, y, atol=1e-6)


def test_stereo_is_mixed_down_and_other_rates_resampled(tmp_path):
    p = tmp_path / "st.wav"
    left, right = tone(400, 0.5, 16000), tone(400, 0.5, 16000, amp=0.1)
    sf.write(p, np.stack([left, right], 1), 16000, subtype="PCM_16")
    y, rate = read_wav(p)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-4)
    z, rate = read_wav(p, sample_rate=RATE)
    assert rate == RATE and len(z) == 4000
    spectrum = np.abs(np.fft.rfft(z))
    assert abs(np.argmax(spectrum) * RATE / len(z) - 400) < 5  # the tone is where it was


def _zero_rate_wav(path):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((tone() * 30000).astype("<i2").tobytes())
    raw = bytearray(path.read_bytes())
    raw[24:28] = (0).to_bytes(4, "little")  # the fmt chunk's sample rate
    raw[28:32] = (0).to_bytes(4, "little")  # and byte rate
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("kind,match", [
    ("text", "not an audio file"), ("empty", "empty"), ("zero_hz", "sample rate of 0 Hz"),
    ("silent", "silent"), ("missing", "no such audio file"), ("no_samples", "no samples"), ("folder", "not a file")])
def test_bad_audio_is_a_one_line_error(tmp_path, kind, match):
    p = tmp_path / "bad.wav"
    if kind == "text":
        p.write_text("path,transcript\nthis is not audio\n")
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "zero_hz":
        _zero_rate_wav(p)
    elif kind == "silent":
        sf.write(p, np.zeros(4000, np.float32), RATE, subtype="PCM_16")
    elif kind == "no_samples":
        sf.write(p, np.zeros(0, np.float32), RATE, subtype="PCM_16")
    elif kind == "folder":
        p.mkdir()
    with pytest.raises(UserError, match=match) as e:
        read_wav(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_the_stdlib_fallback_names_bad_files_too(tmp_path):
    p = tmp_path / "bad.wav"
    p.write_text("not a wav")
    with pytest.raises(UserError, match="not a PCM WAV"):
        audio._read_stdlib(p)


def test_cache_keeps_features_on_disk_and_notices_changes(tmp_path):
    p = tmp_path / "a.wav"
    sf.write(p, tone(), RATE, subtype="PCM_16")
    spec = FeatureSpec(sample_rate=RATE)
    first = FeatureCache(spec, tmp_path / "cache").get([p])[0]
    files = list((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 1
    again = FeatureCache(spec, tmp_path / "cache")
    again.wave = None  # a fresh cache must not read the audio again
    np.testing.assert_array_equal(again.get([p])[0], first)
    sf.write(p, tone(900, 0.5), RATE, subtype="PCM_16")  # a new recording under the same name
    changed = FeatureCache(spec, tmp_path / "cache").get([p])[0]
    assert changed.shape[0] != first.shape[0]
    other = FeatureCache(FeatureSpec(sample_rate=RATE, n_mels=20), tmp_path / "cache").get([p])[0]
    assert other.shape[1] == 20
    arrays = FeatureCache(spec, None).get([(tone(), RATE)])[0]
    np.testing.assert_allclose(arrays, first, atol=2e-2)  # the file holds 16-bit samples


def test_spec_augment_masks_bands_and_stretches_only():
    from seqlab.data.augment import spec_augment

    torch.manual_seed(0)
    x = torch.ones(4, 50, 40)
    y = spec_augment(x, torch.tensor([50, 40, 30, 20]), 2, 8, 2, 6)
    assert y.shape == x.shape and set(y.unique().tolist()) <= {0.0, 1.0}
    assert (y == 0).any() and (y == 1).float().mean() > 0.5
    assert torch.equal(spec_augment(x, torch.tensor([50] * 4), 0, 0, 0, 0), x)


def test_trim_cuts_leading_and_trailing_silence_and_speed_perturbation_resamples():
    x = np.concatenate([np.zeros(2000, np.float32), tone(500, 0.3), np.full(1600, 1e-5, np.float32)])
    y = audio.trim(x, RATE, 40)
    assert 2400 <= len(y) <= 2400 + 400 and np.abs(y[:200]).max() > 0.1  # within a 25 ms frame of the tone
    assert audio.trim(x, RATE, 0) is x
    fast = audio.perturb_speed(tone(500, 0.3), 1.1)
    assert len(fast) == round(2400 / 1.1)
    spectrum = np.abs(np.fft.rfft(fast))
    assert abs(np.argmax(spectrum) * RATE / len(fast) - 550) < 10  # played faster: higher


def test_vtlp_warps_the_filterbank_and_warp_one_gives_the_usual_frames():
    from seqlab.data.augment import vtlp_frames

    spec = audio.FeatureSpec(RATE)
    f = np.linspace(0, RATE / 2, 9)
    for alpha in (0.9, 1.1):
        w = audio.vtlp_warp(f, alpha, RATE / 2)
        assert w[0] == 0 and w[-1] == pytest.approx(RATE / 2) and (np.diff(w) > 0).all()
        assert w[2] == pytest.approx(f[2] * alpha)  # below the knee: scaled
    waves = [torch.from_numpy(tone(500, 0.3)), torch.from_numpy(tone(900, 0.2))]
    power = audio.log_mel(waves, spec, power=True)
    usual = audio.log_mel(waves, spec)
    padded = torch.nn.utils.rnn.pad_sequence(power, batch_first=True)
    same = audio.warped_features(padded, spec, [1.0, 1.0])
    for i in range(2):
        torch.testing.assert_close(same[i, : len(usual[i])], usual[i], atol=1e-4, rtol=1e-4)
    # a 1.1 warp moves the filters up: a 500 Hz tone's energy peaks in a lower mel channel
    up = audio.warped_features(padded[:1], spec, [1.1])[0].mean(0).argmax()
    assert up < usual[0].mean(0).argmax()
    lengths = torch.tensor([len(p) for p in power])
    torch.manual_seed(0)
    x = vtlp_frames(padded, lengths, spec, 0.1, "utterance")
    assert x.shape == (2, len(power[0]), 40) and (x[1, lengths[1]:] == 0).all()
    torch.testing.assert_close(x[1, : lengths[1]].mean(0), torch.zeros(40), atol=1e-4, rtol=0)
