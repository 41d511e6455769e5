"""The series-by-bin panel of counts on one regular time grid, and calendar arithmetic on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from citybrain_traffic.counts import SERIES_KEYS
from citybrain_traffic.errors import InputError

NS_PER_DAY = 86_400 * 10**9
DAYS_PER_WEEK = 7
# 1970-01-01, day 0 of the int64 nanosecond clock, was a Thursday (Monday = 0).
_EPOCH_WEEKDAY = 3


@dataclass(frozen=True)
class Panel:
    """Counts of many series on one regular time grid.

    Attributes
    ----------
    keys
        One row per series, columns ``intersection`` and ``movement``; row ``i`` is ``values[i]``.
    start
        Start of the bin in column 0.
    bin
        Bin length.
    values
        Vehicles per bin, shape ``(n_series, n_bins)``, NaN where a bin has no count.
    """

    keys: pd.DataFrame
    start: pd.Timestamp
    bin: pd.Timedelta
    values: np.ndarray

    @property
    def n_bins(self) -> int:
        """Number of bins (columns)."""
        return self.values.shape[1]

    def times(self, columns: np.ndarray) -> np.ndarray:
        """Return the start of the bins at ``columns`` (any shape, may lie outside) as int64 ns."""
        return self.start.value + np.asarray(columns, dtype=np.int64) * self.bin.value

    def columns_of(self, timestamps: pd.DatetimeIndex | pd.Series | np.ndarray) -> np.ndarray:
        """Return the column index of each timestamp; InputError for one that is not a bin start."""
        stamps = np.asarray(timestamps, dtype="datetime64[ns]").view(np.int64)
        offset = stamps - self.start.value
        off_grid = np.flatnonzero(offset % self.bin.value != 0)
        if off_grid.size:
            bad = pd.Timestamp(stamps[off_grid[0]])
            raise InputError(
                f"time {bad} is not a bin boundary of the {bin_minutes(self.bin):g}-min grid "
                f"through {self.start}; expected e.g. "
                f"{self.start + self.bin * ((bad - self.start) // self.bin)}"
            )
        return offset // self.bin.value

    def take(self, columns: np.ndarray) -> np.ndarray:
        """Return the values at 1-D ``columns`` for every series, NaN outside the panel."""
        columns = np.asarray(columns, dtype=np.int64)
        out = np.full((len(self.keys), len(columns)), np.nan)
        inside = (columns >= 0) & (columns < self.n_bins)
        out[:, inside] = self.values[:, columns[inside]]
        return out


def build_panel(
    counts: pd.DataFrame, *, bin: pd.Timedelta, start: pd.Timestamp, end: pd.Timestamp
) -> Panel:
    """Place a validated tidy count table on the grid ``[start, end)`` of step ``bin``.

    Parameters
    ----------
    counts
        A validated tidy count table (see :mod:`citybrain_traffic.counts`); rows outside
        ``[start, end)`` are ignored, but every series in the table gets a panel row.
    bin
        Bin length.
    start, end
        First bin start and end of the last bin; ``start`` fixes the grid.

    Returns
    -------
    Panel
        Series sorted by intersection and movement.
    """
    grouped = counts.groupby(SERIES_KEYS, sort=True, observed=True)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    keys = (
        grouped.size().index.to_frame(index=False)[SERIES_KEYS]
        if len(counts)
        else pd.DataFrame({"intersection": pd.Series(dtype=str), "movement": pd.Series(dtype=str)})
    )
    n_bins = max(int((end - start) // bin), 0)
    panel = Panel(keys=keys, start=start, bin=bin, values=np.full((len(keys), n_bins), np.nan))
    columns = panel.columns_of(counts["timestamp"].to_numpy())
    inside = (columns >= 0) & (columns < n_bins)
    panel.values[codes[inside], columns[inside]] = counts["count"].to_numpy(dtype=np.float64)[
        inside
    ]
    return panel


def bins_per_day(bin: pd.Timedelta) -> int:
    """Return the number of bins in a day; InputError when ``bin`` does not divide a day."""
    if NS_PER_DAY % bin.value:
        raise InputError(
            f"bin length {bin_minutes(bin):g} min does not divide a day; expected a divisor of "
            "24 h such as 5, 15 or 60 min"
        )
    return NS_PER_DAY // bin.value


def bin_minutes(bin: pd.Timedelta) -> float:
    """Return the bin length in minutes."""
    return bin / pd.Timedelta(minutes=1)


def calendar(times: np.ndarray, bin: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
    """Return the day of week (Monday = 0) and time-of-day slot (bins since midnight) of times.

    ``times`` are int64 nanoseconds since the epoch, as from :meth:`Panel.times`.
    """
    days = np.floor_divide(times, NS_PER_DAY)
    return (days + _EPOCH_WEEKDAY) % DAYS_PER_WEEK, (times - days * NS_PER_DAY) // bin.value
