"""The forecaster's typed config: model, data (how the series is read and cut) and training sections.
A setting left None is chosen from the data at fit time (seqlab.forecast.auto)."""

from __future__ import annotations

from dataclasses import dataclass, field

from seqlab.data.timeseries import FILLS
from seqlab.forecast.auto import NETWORKS
from seqlab.models.encoder import CELLS
from seqlab.models.forecaster import DECODERS, LIKELIHOODS, WINDOW_NORMS
from seqlab.pipelines.config import Config, choice, num
from seqlab.pipelines.sections import EncoderSettings, TrainSettings
from seqlab.train.trainer import SCHEDULES

INTERVALS = ("conformal", "gaussian")  # where the 80%/95% intervals and quantiles come from


@dataclass
class ForecastModel(EncoderSettings):
    """The recurrent forecaster: encoder, decoder, output distribution. network None: 'scaled' for a short
    positive series of one target without covariates, else 'standard' (seqlab.forecast.auto)."""

    network: str | None = choice(None, NETWORKS, allow_none=True)
    cell: str | None = choice(None, CELLS, allow_none=True)  # None: gru for the scaled network, else lstm
    hidden: int | None = num(64, 1, 65536, allow_none=True)
    dropout: float = num(0.0, 0.0, 1.0, hi_open=True)
    horizon: int = num(12, 1)  # steps forecast at once
    decoder: str = choice("direct", DECODERS)
    likelihood: str = choice("gaussian", LIKELIHOODS)
    window_norm: str | None = choice(None, WINDOW_NORMS, allow_none=True)  # None: season if seasonal, else last
    teacher_forcing: float = num(1.0, 0.0, 1.0)
    ensemble: int | None = num(None, 1, 1024, allow_none=True)  # None: 5 for short series, else 1
    head_dropout: float = num(0.0, 0.0, 1.0, hi_open=True)
    intervals: str = choice("conformal", INTERVALS)  # conformal: calibrated on the training part; gaussian: the head's
    calibration_folds: int = num(3, 0)  # conformal: rolling-origin refits to calibrate on; 0: the dev part
    combine: str | None = None  # None: the median with ets,arima,theta on short series; "none"; or some of them


@dataclass
class ForecastData(Config):
    """How the series is read and cut into train / dev / test parts."""

    time_col: str = "0"  # a CSV's time column: name or 0-based index; a DataFrame's: a column name
    no_time: bool = False  # no time column: rows are the steps
    time_format: str | None = None
    target: str | None = None  # column(s) to forecast, comma-separated (default: the first after the time)
    covariates: str | None = None  # known covariates, comma-separated
    fill: str = choice("none", FILLS)
    season: int | None = num(None, 1, allow_none=True)  # None: from the frequency
    freq: str | None = None  # a plain array's frequency (e.g. "MS"); sets the default season
    delimiter: str | None = None
    encoding: str = "utf-8"
    lookback: int | None = num(None, 1, allow_none=True)  # past steps the model reads; None: from the data
    test: int | None = num(None, 0, allow_none=True)  # None: 20% of the series
    test_start: str | None = None  # first time of the test part (instead of test)
    dev: int | None = num(None, 0, allow_none=True)  # None: 10% of the rest, at least the horizon (scaled: 0); 0: none
    log_scale: bool | None = None  # the CLI's --log: model the log; None: when the seasonal swing grows
    calendar: bool | None = None  # the position in the season as known covariates; None: when seasonal


@dataclass
class ForecastTrain(TrainSettings):
    batch: int = num(32, 1)
    patience: int = num(20, 0)
    lr: float | None = num(None, 0.0, lo_open=True, allow_none=True)  # None: 5e-3 (scaled network), else 2e-3
    schedule: str | None = choice(None, SCHEDULES, allow_none=True)  # None: cosine (scaled network), else constant


@dataclass
class ForecastConfig(Config):
    model: ForecastModel = field(default_factory=ForecastModel)
    data: ForecastData = field(default_factory=ForecastData)
    train: ForecastTrain = field(default_factory=ForecastTrain)
