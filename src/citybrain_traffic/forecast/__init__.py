"""Forecast per-movement vehicle counts 15, 30 and 60 minutes ahead (P10/P50/P90)."""

import os

# Set before any submodule imports LightGBM (libgomp reads it once); a user's own setting wins.
# Busy-waiting threads make LightGBM 30-50x slower on shared cores (docs/decisions/0003).
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
