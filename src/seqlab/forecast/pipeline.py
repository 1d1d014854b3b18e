"""Moved to seqlab.pipelines.forecast (the Forecaster pipeline); these names stay importable from here."""

from seqlab.pipelines.forecast import LEVELS, TASK, Forecaster, ForecastPipeline

__all__ = ["LEVELS", "TASK", "ForecastPipeline", "Forecaster"]
