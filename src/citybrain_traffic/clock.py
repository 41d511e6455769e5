"""Simulation time and the timestamps of counts: simulation time 0 is midnight of a day."""

from __future__ import annotations

import pandas as pd

#: The date whose midnight is simulation time 0 in count timestamps (a Monday).
SIM_DAY_ZERO = pd.Timestamp("2026-01-05")


def timestamp(sim_time_s: float, *, day: pd.Timestamp = SIM_DAY_ZERO) -> pd.Timestamp:
    """Return the timestamp of simulation time ``sim_time_s`` (s) on ``day``."""
    return day + pd.Timedelta(seconds=sim_time_s)
