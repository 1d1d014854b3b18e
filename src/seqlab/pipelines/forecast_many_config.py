"""The global forecaster's typed config (many series, one model): model, panel data and training."""

from __future__ import annotations

from dataclasses import dataclass, field

from seqlab.models.encoder import CELLS
from seqlab.models.forecaster import LIKELIHOODS, WINDOW_NORMS
from seqlab.models.global_forecaster import LOSSES
from seqlab.pipelines.config import Config, choice, num
from seqlab.pipelines.sections import EncoderSettings, TrainSettings


@dataclass
class ManyModel(EncoderSettings):
    """One ForecastNet for every series (direct head), on per-window scaled inputs."""

    cell: str = choice("gru", CELLS)
    hidden: int | None = num(64, 1, 65536, allow_none=True)
    dropout: float = num(0.0, 0.0, 1.0, hi_open=True)
    horizon: int = num(12, 1)
    likelihood: str = choice("gaussian", LIKELIHOODS)
    loss: str = choice("mae", LOSSES)  # mae: point forecast by absolute error (+ the scale by likelihood)
    window_norm: str | None = choice("last", WINDOW_NORMS, allow_none=True)
    ensemble: int | None = num(3, 1, 1024, allow_none=True)  # members trained side by side; median forecast
    head_dropout: float = num(0.0, 0.0, 1.0, hi_open=True)
    id_embed: int = num(0, 0, 4096)  # size of a learned per-series embedding (0: none)


@dataclass
class ManyData(Config):
    """How the panel is read and cut."""

    id_col: str | None = None  # long panel: the series id column
    wide: bool = False  # wide panel: one column per series
    time_col: str | None = None  # None: long: the first column after the id; wide: the first column
    no_time: bool = False
    time_format: str | None = None
    target: str | None = None  # long: the value column; wide: the series columns (default all)
    static_cols: str | None = None  # long: columns constant per series, comma-separated
    season: int | None = num(None, 1, allow_none=True)
    freq: str | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"
    deseason: bool | None = None  # divide each seasonal series by its classical indices; None: when season > 1
    lookback: int | None = num(None, 1, allow_none=True)  # None: 2 horizons, at least one season + 1
    min_history: int | None = num(None, 1, allow_none=True)  # None: lookback (no padded windows)
    test: int | None = num(None, 0, allow_none=True)  # steps held out at the end of each series; None: horizon
    dev: int | None = num(None, 0, allow_none=True)  # None/0: no dev part; else the last `dev` training steps
    recent: int | None = num(None, 1, allow_none=True)  # train on the last `recent` windows of each series only


@dataclass
class ManyTrain(TrainSettings):
    batch: int = num(256, 1)
    patience: int = num(10, 0)


@dataclass
class ManyForecastConfig(Config):
    model: ManyModel = field(default_factory=ManyModel)
    data: ManyData = field(default_factory=ManyData)
    train: ManyTrain = field(default_factory=ManyTrain)
