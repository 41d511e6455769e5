"""Shared pieces of the forecasting tests: synthetic counts whose days differ in demand."""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2025-03-03")  # a Monday
KEYS = [("I0", "NBT"), ("I0", "SBT"), ("I0", "EBL"), ("I1", "NBT"), ("I1", "SBT"), ("I1", "EBL")]
# Small boosting settings: these tests check behaviour, not the tuned defaults.
SMALL = {"n_estimators": 40}


def synthetic_counts(
    *, days: int = 21, seed: int = 0, keys=KEYS, day_sigma: float = 0.25
) -> pd.DataFrame:
    """Weekday/weekend profiles x a level per series x a demand factor per day, Poisson noise.

    The day factor holds for the whole day and is shared by every series (weather, an event), so
    the morning's counts tell how the rest of the day will run: a forecaster that reads recent
    history can beat the historical average, which cannot know the day's factor.
    """
    rng = np.random.default_rng(seed)
    per_day = 96
    hours = (np.arange(per_day) + 0.5) / 4
    weekday = (
        0.2 + np.exp(-(((hours - 8.0) / 1.5) ** 2)) + 0.8 * np.exp(-(((hours - 17.0) / 2.0) ** 2))
    )
    weekend = 0.2 + 0.7 * np.exp(-(((hours - 13.0) / 3.0) ** 2))
    dates = pd.date_range(START, periods=days, freq="D")
    shape = np.concatenate([weekend if date.day_of_week >= 5 else weekday for date in dates])
    factor = np.repeat(rng.lognormal(0.0, day_sigma, size=days), per_day)
    level = rng.uniform(8.0, 40.0, size=len(keys))[:, None]
    counts = rng.poisson(level * shape * factor).astype(np.float64)
    stamps = pd.date_range(START, periods=days * per_day, freq="15min")
    return pd.DataFrame(
        {
            "timestamp": np.tile(stamps, len(keys)),
            "intersection": np.repeat([k[0] for k in keys], len(stamps)),
            "movement": np.repeat([k[1] for k in keys], len(stamps)),
            "count": counts.ravel(),
        }
    )
