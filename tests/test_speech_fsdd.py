"""The speech task on the Free Spoken Digit Dataset in ../shared/data/speech/fsdd (skipped where it is absent)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from seqlab.data.utterances import from_names, split

PATTERN = "{label}_{speaker}_{index}"
SPEAKERS = {"george", "jackson", "lucas", "nicolas", "yweweler"}


@pytest.fixture
def fsdd(shared_data):
    folder = shared_data / "speech/fsdd/recordings"
    if not folder.is_dir():
        pytest.skip(f"FSDD not found at {folder}")
    return folder


def test_names_give_the_labels_and_the_official_split(fsdd):
    utts = from_names(fsdd, PATTERN)
    assert len(utts) == 2500 and {u.fields["speaker"] for u in utts} == SPEAKERS
    assert {u.transcript for u in utts} == {str(d) for d in range(10)}
    train, test = split(utts, where="index<5")
    assert len(train) == 2250 and len(test) == 250
    rest, unseen = split(utts, speaker="lucas")
    assert len(rest) == 2000 and len(unseen) == 500


def test_real_clips_read_and_match_librosa(fsdd):
    librosa = pytest.importorskip("librosa")
    import torch

    from seqlab.data.audio import FeatureSpec, log_mel, read_wav

    x, rate = read_wav(fsdd / "7_jackson_0.wav")
    assert rate == 8000 and 0.1 < len(x) / rate < 1.5
    spec = FeatureSpec(sample_rate=rate)
    ref = librosa.feature.melspectrogram(y=x, sr=rate, n_fft=spec.n_fft, hop_length=spec.hop,
                                         win_length=spec.win_length, n_mels=40, power=2.0)
    np.testing.assert_allclose(log_mel([torch.from_numpy(x)], spec)[0].numpy(), np.log(ref.T + 1e-6), atol=2e-3)


def _train(tmp_path, *extra):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "seqlab", "speech", "train", "--data", str(extra[0]), "--label-from-name",
                    PATTERN, "--spell-digits", "--threads", "1", "--out", str(out), *extra[1:]], check=True,
                   env=os.environ | {"SEQLAB_CACHE": str(tmp_path / "cache")})
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_ctc_recogniser_reaches_99_percent_on_the_official_split(fsdd, tmp_path):
    """The README's CTC figure (a few minutes on one thread): run with `pytest -m slow`."""
    r = _train(tmp_path, fsdd, "--test-where", "index<5")
    assert r["test_accuracy"] >= 0.99 and r["test_beam_accuracy"] >= 0.99


@pytest.mark.slow
def test_classifier_baseline_reaches_99_percent_on_the_official_split(fsdd, tmp_path):
    r = _train(tmp_path, fsdd, "--test-where", "index<5", "--head", "classify")
    assert r["test_accuracy"] >= 0.99
