"""Forecasting: accuracy metrics, classical baselines, rolling-origin backtests, the trained pipeline
and the series that ship with the dependencies."""
