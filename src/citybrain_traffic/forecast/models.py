"""Forecast per-movement counts: persistence, historical average and a global LightGBM model.

All forecasters share one interface (scikit-learn shaped): hyperparameters in ``__init__``,
``fit(counts)`` on a tidy count table, ``predict(history, at=...)`` for one or many forecast
origins, ``save(path)`` to a folder and ``Forecaster.load(path)`` back.

A forecast *origin* ``T`` is a bin boundary: only bins that start before ``T`` are history. The
forecast for horizon ``h`` minutes is the count of the bin that ends at ``T + h`` (so with 15-min
bins, ``h = 15`` is the bin ``[T, T + 15 min)`` and ``h = 60`` is ``[T + 45 min, T + 60 min)``).
Forecasts are vehicles per bin.

The interface lives in ``_forecaster``, the baselines in ``_baselines`` and the LightGBM model in
``_lightgbm``; import them from here or from :mod:`citybrain_traffic.forecast`.
"""

from citybrain_traffic.forecast._baselines import HistoricalAverage, Persistence
from citybrain_traffic.forecast._forecaster import (
    DEFAULT_HORIZONS,
    FORECAST_COLUMNS,
    QUANTILES,
    Forecaster,
)
from citybrain_traffic.forecast._lightgbm import LightGBMForecaster

__all__ = [
    "DEFAULT_HORIZONS",
    "FORECAST_COLUMNS",
    "QUANTILES",
    "Forecaster",
    "HistoricalAverage",
    "LightGBMForecaster",
    "Persistence",
]
