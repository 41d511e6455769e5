"""Forecast per-movement vehicle counts 15, 30 and 60 minutes ahead (P10/P50/P90)."""

import os

# Busy-waiting OpenMP threads make LightGBM 30-50x slower whenever other processes share the
# cores (measured: 1 s alone, 50 s beside a 2-process simulation run on 2 cores), while passive
# waiting costs nothing measurable on idle cores. libgomp reads this once, when LightGBM loads,
# so it is set here, before any submodule imports LightGBM; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from citybrain_traffic.forecast.evaluate import Evaluation, evaluate, plot_forecasts  # noqa: E402
from citybrain_traffic.forecast.models import (  # noqa: E402
    Forecaster,
    HistoricalAverage,
    LightGBMForecaster,
    Persistence,
)

__all__ = [
    "Evaluation",
    "Forecaster",
    "HistoricalAverage",
    "LightGBMForecaster",
    "Persistence",
    "evaluate",
    "plot_forecasts",
]
