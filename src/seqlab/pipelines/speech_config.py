"""The speech task's settings (model, data, train sections) and the recordings `Recognizer.fit` reads.

Train data: a path,transcript CSV, a folder of recordings whose names give the transcript
(`label_from_name`), or an (audio items, transcripts) pair; `test_where` / `test_speaker` hold part of it
out as the test set, and a seeded `dev_fraction` of the rest is the dev set unless one is given.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from seqlab.data import audio
from seqlab.data.split import holdout
from seqlab.data.utterances import list_utterances, select, split
from seqlab.errors import UserError
from seqlab.models.classifier import POOLINGS
from seqlab.models.ctc import FRONTENDS
from seqlab.pipelines.config import Config, ConfigError, choice, num
from seqlab.pipelines.sections import EncoderSettings, TrainSettings
from seqlab.train.trainer import SCHEDULES

HEADS = ("ctc", "classify")
LEXICONS = ("auto", "train", "none")  # auto: beam 8 within the training words when they are a closed vocabulary
BLANK = "<blank>"


@dataclass
class SpeechModel(EncoderSettings):
    head: str = choice("ctc", HEADS)
    frontend: str = choice("stack", FRONTENDS)  # ctc head: how frames are shortened before the encoder
    stride: int = num(3, 1, 16)
    pooling: str = choice("mean", POOLINGS)  # classify head
    cell: str = choice("gru", ("rnn", "rnn_relu", "lstm", "gru"))
    layers: int = num(2, 1, 64)
    hidden: int | None = num(128, 1, 65536, allow_none=True)
    embed: int | None = num(None, 1, 65536, allow_none=True)  # frames are not embedded
    bidirectional: bool = True
    dropout: float = num(0.2, 0.0, 1.0, hi_open=True)


@dataclass
class SpeechData(Config):
    label_from_name: str | None = None  # for a folder: '{label}_{speaker}_{index}'
    path_col: str = "path"
    transcript_col: str = "transcript"
    test_where: str | None = None  # hold these out as the test set: 'index<5'
    test_speaker: str | None = None
    units: str = choice("char", ("char", "word"))
    spell_digits: bool = False  # "7" -> "seven" in every transcript
    lowercase: bool = True
    sample_rate: int | None = num(None, 1000, 192000, allow_none=True)  # None: the first training file's
    feats: str = choice("mfcc", audio.KINDS)  # MFCCs: measured the most speaker-independent on FSDD
    n_mels: int = num(40, 4, 256)
    n_mfcc: int = num(13, 2, 256)
    win_ms: float = num(25.0, 1.0, 200.0)
    hop_ms: float = num(10.0, 1.0, 100.0)
    trim_db: float = num(40.0, 0.0, 120.0)  # > 0: cut leading/trailing audio this far below the loudest 25 ms
    normalize: str = choice("cmn", audio.NORMALIZE)  # each recording less its own mean (gain, microphone)
    lexicon: str = choice("auto", LEXICONS)  # the run's default decoding (see decoding_default)
    feature_cache: str | None = None  # None: $SEQLAB_CACHE or ~/.cache/seqlab/speech; 'none': memory only


@dataclass
class SpeechTrain(TrainSettings):
    """Defaults measured on FSDD: 30 epochs of a cosine-decayed learning rate, no early stop, speed and
    vocal-tract-length perturbation (for voices the training set does not have)."""

    batch: int = num(32, 1)
    schedule: str = choice("cosine", SCHEDULES)
    patience: int = num(0, 0)
    time_masks: int = num(2, 0, 100)  # SpecAugment on the training clips
    time_mask_width: int = num(8, 0)
    freq_masks: int = num(2, 0, 100)
    freq_mask_width: int = num(6, 0)
    speed_perturb: str = "0.9,1.1"  # also train on every clip played at these speeds; "" for none
    vtlp: float = num(0.1, 0.0, 0.3)  # > 0: warp each training clip's mel filterbank by 1 +- this, per step

    def speeds(self) -> list[float]:
        try:
            out = [float(v) for v in self.speed_perturb.replace(" ", "").split(",") if v]
        except ValueError:
            out = [0.0]
        if any(not 0.5 <= v <= 2.0 for v in out):
            raise ConfigError("train.speed_perturb", f"must be speeds in [0.5, 2] separated by commas (e.g. "
                              f"0.9,1.1), not {self.speed_perturb!r}")
        return [v for v in out if v != 1.0]

    def check(self) -> None:
        super().check()
        self.speeds()


@dataclass
class SpeechConfig(Config):
    model: SpeechModel = field(default_factory=SpeechModel)
    data: SpeechData = field(default_factory=SpeechData)
    train: SpeechTrain = field(default_factory=SpeechTrain)


def read_items(source, d: dict, name: str, need_text: bool = True, where=None, speaker=None) -> tuple[list, list, list]:
    """(audio items, raw transcripts, utterances or None) from a path or an (items, transcripts) pair."""
    if isinstance(source, (str, Path)):
        utts = list_utterances(source, d.get("label_from_name"), d.get("path_col", "path"),
                               d.get("transcript_col", "transcript"), need_text)
        if where or speaker:
            utts = [u for u, m in zip(utts, select(utts, where, speaker)) if m]
            if not utts:
                raise UserError(f"{source}: no recording matches the selection")
        return [u.path for u in utts], [u.transcript for u in utts], utts
    try:
        items, texts = source
        items, texts = list(items), [str(t) for t in texts]
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a path (a CSV or a folder) or an (audio items, transcripts) pair") from None
    if len(items) != len(texts) or not items:
        raise UserError(f"{name}: {len(items)} recordings and {len(texts)} transcripts; give one per recording")
    return items, texts, None


def sources(train, dev, test, dc: SpeechData, tc: SpeechTrain):
    """(train items, transcripts, dev items, transcripts, [(test items, transcripts)]) of fit's arguments."""
    d = dc.to_dict()
    items, raw, utts = read_items(train, d, "train")
    tests = []
    if dc.test_where or dc.test_speaker:
        if utts is None:
            raise UserError("test_where / test_speaker select from a CSV or a folder; give train as a path")
        rest, held = split(utts, dc.test_where, dc.test_speaker)
        items, raw = [u.path for u in rest], [u.transcript for u in rest]
        tests.append(([u.path for u in held], [u.transcript for u in held]))
    if test is not None:
        tests.append(read_items(test, d, "test")[:2])
    if dev is not None:
        return (items, raw, *read_items(dev, d, "dev")[:2], tests)
    if len(items) < 2:
        raise UserError("give at least 2 training recordings (one is held out as dev)")
    tr, dv = holdout(len(items), tc.dev_fraction, tc.seed)
    return [items[i] for i in tr], [raw[i] for i in tr], [items[i] for i in dv], [raw[i] for i in dv], tests


CLOSED_WORDS, CLOSED_MIN_COUNT = 1000, 3  # a vocabulary this small, each word this often: decode within it


def decoding_default(texts: list[str], lexicon: str, head: str, units: str) -> tuple[dict, str]:
    """The run's default decoding ({"beam", "lexicon"}) and why, from the training transcripts: with
    lexicon 'auto', prefix beam search (8) restricted to the training words when those form a closed
    vocabulary (at most CLOSED_WORDS distinct words, each heard CLOSED_MIN_COUNT times or more: digits,
    commands), so that a misspelling such as 'fivt' cannot come out, only words that were said; otherwise greedy."""
    if head != "ctc" or units != "char":
        return {"beam": 1, "lexicon": None}, "greedy"
    counts = Counter(w for t in texts for w in t.split())
    closed = len(counts) <= CLOSED_WORDS and min(counts.values(), default=0) >= CLOSED_MIN_COUNT
    if lexicon == "train" or (lexicon == "auto" and closed):
        why = (f"a closed vocabulary: {len(counts)} words, each said {min(counts.values())} times or more"
               if closed else "lexicon train")
        return {"beam": 8, "lexicon": "train"}, f"beam 8 within the training words ({why})"
    why = "lexicon none" if lexicon == "none" else f"an open vocabulary: {len(counts)} words, some rare"
    return {"beam": 1, "lexicon": None}, f"greedy ({why})"
