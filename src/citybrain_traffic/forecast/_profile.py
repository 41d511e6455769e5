"""Per-series historical averages of counts by time of week, day type and time of day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.ndimage import convolve1d

from citybrain_traffic.counts import SERIES_KEYS
from citybrain_traffic.forecast._panel import (
    DAYS_PER_WEEK,
    Panel,
    bin_minutes,
    bins_per_day,
    calendar,
)

_WEEKEND_START = 5  # Saturday
# A series' level is its mean count; flooring it at one vehicle per bin keeps nearly empty series
# from turning one stray vehicle into a huge normalised value.
MIN_SCALE = 1.0


class Averages(NamedTuple):
    """Historical averages of some bins (vehicles per bin; NaN where nothing was observed)."""

    week: np.ndarray
    """Mean at the same time of week."""
    day_type: np.ndarray
    """Mean at the same time of day over days of the same type (Monday-Friday or weekend)."""
    day: np.ndarray
    """Mean at the same time of day over all days."""
    overall: np.ndarray
    """Mean of the series over the training period."""
    scaled: np.ndarray
    """The day-type mean times the weekday's own level around that time of day (the ratio of
    time-of-week to day-type means over a wider window): a weekday's shape from many days,
    its level from its own."""
    best: np.ndarray
    """The time-of-week mean shrunk towards ``scaled``; where a mean is missing, the first
    available of week, day type, day and overall."""


def _blend(averages: Averages, shrinkage: float) -> np.ndarray:
    """Return the ``best`` average of :class:`Averages` for a given shrinkage."""
    week, scaled, typed = averages.week, averages.scaled, averages.day_type
    both = (1.0 - shrinkage) * week + shrinkage * scaled
    chain = np.where(
        np.isnan(typed), np.where(np.isnan(averages.day), averages.overall, averages.day), typed
    )
    return np.where(np.isnan(week), chain, np.where(np.isnan(scaled), week, both))


@dataclass(frozen=True)
class Profile:
    """Per-series historical averages of training counts by time of week, day type and time of day.

    Sums and numbers of observations are kept rather than means, so that a training bin's own
    count can be left out when the profile describes that bin (see :meth:`expected`).

    Attributes
    ----------
    keys
        Series (``intersection``, ``movement``) in row order.
    bin
        Bin length.
    train_start, train_end
        The training period ``[train_start, train_end)``.
    week_sum, week_n
        Sum of counts (vehicles) and number of observed bins per series and time-of-week slot,
        shape ``(n_series, 7 * bins_per_day)``; slot = weekday * bins_per_day + time-of-day slot.
    smoothing
        Default half-width (bins) of the kernel over neighbouring slots; see :meth:`expected`.
    shrinkage
        Default weight of the scaled day-type mean in the best average; see :meth:`expected`.
    level_window
        Default half-width (bins) of the window that sets a weekday's level; see :meth:`expected`.
    """

    keys: pd.DataFrame
    bin: pd.Timedelta
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    week_sum: np.ndarray
    week_n: np.ndarray
    smoothing: int = 0
    shrinkage: float = 0.0
    level_window: int = 0

    @classmethod
    def fit(cls, panel: Panel) -> Profile:
        """Accumulate the profile of every series in a training panel."""
        per_day = bins_per_day(panel.bin)
        weekday, slot = calendar(panel.times(np.arange(panel.n_bins)), panel.bin)
        observed = ~np.isnan(panel.values)
        week_sum = np.zeros((DAYS_PER_WEEK * per_day, len(panel.keys)))
        week_n = np.zeros_like(week_sum)
        week_slot = weekday * per_day + slot
        np.add.at(week_sum, week_slot, np.where(observed, panel.values, 0.0).T)
        np.add.at(week_n, week_slot, observed.T)
        return cls(
            keys=panel.keys.reset_index(drop=True),
            bin=panel.bin,
            train_start=panel.start,
            train_end=panel.start + panel.n_bins * panel.bin,
            week_sum=np.ascontiguousarray(week_sum.T),
            week_n=np.ascontiguousarray(week_n.T),
        )

    @cached_property
    def _by_day(self) -> tuple[np.ndarray, np.ndarray]:
        """Return sums and counts per (series, weekday, time-of-day slot)."""
        shape = (len(self.keys), DAYS_PER_WEEK, -1)
        return self.week_sum.reshape(shape), self.week_n.reshape(shape)

    @cached_property
    def _day_type(self) -> tuple[np.ndarray, np.ndarray]:
        """Return sums and counts per (series, day type, time-of-day slot); day type 1 = weekend."""
        total, number = self._by_day
        return (
            np.stack(
                [total[:, :_WEEKEND_START].sum(axis=1), total[:, _WEEKEND_START:].sum(axis=1)],
                axis=1,
            ),
            np.stack(
                [number[:, :_WEEKEND_START].sum(axis=1), number[:, _WEEKEND_START:].sum(axis=1)],
                axis=1,
            ),
        )

    @cached_property
    def _day(self) -> tuple[np.ndarray, np.ndarray]:
        total, number = self._by_day
        return total.sum(axis=1), number.sum(axis=1)

    @cached_property
    def _total(self) -> tuple[np.ndarray, np.ndarray]:
        return self.week_sum.sum(axis=1), self.week_n.sum(axis=1)

    @property
    def mean(self) -> np.ndarray:
        """Mean count per series over the training period (vehicles per bin)."""
        total, number = self._total
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(number > 0, total / np.maximum(number, 1), np.nan)

    @property
    def scale(self) -> np.ndarray:
        """Series level used to normalise counts: the mean, floored at one vehicle per bin."""
        return np.maximum(self.mean, MIN_SCALE)

    def rows_for(self, keys: pd.DataFrame) -> np.ndarray:
        """Return the profile row of each series in ``keys``; ``len(self.keys)`` if not trained."""
        index = pd.MultiIndex.from_frame(self.keys[SERIES_KEYS])
        rows = index.get_indexer(pd.MultiIndex.from_frame(keys[SERIES_KEYS]))
        return np.where(rows < 0, len(self.keys), rows)

    def expected(
        self,
        rows: np.ndarray,
        panel: Panel,
        columns: np.ndarray,
        *,
        leave_out: bool = True,
        smoothing: int | None = None,
        shrinkage: float | None = None,
        level_window: int | None = None,
    ) -> Averages:
        """Return the historical averages of the series of ``panel`` at its bins ``columns``.

        Parameters
        ----------
        rows
            Profile row of each panel series, from :meth:`rows_for`.
        panel
            The counts the bins belong to.
        columns
            Panel column indices, shape ``(m,)``; they may lie outside the panel.
        leave_out
            Leave each looked-up training bin's own count out of the averages, so that features
            of training bins are as out-of-sample as at forecast time (with a few weeks of data
            a bin is otherwise a third of its own time-of-week mean, and a model learns to trust
            the profile too much).
        smoothing
            Half-width, in bins, of the triangular kernel that averages neighbouring time slots;
            default :attr:`smoothing`, 0 for the raw slot means. Neighbours' own counts are left
            out too, so that a training bin's average never contains its own day's neighbours.
        shrinkage
            Weight of the scaled day-type mean in ``best`` where both it and the time-of-week
            mean exist; default :attr:`shrinkage`, 0 for the time-of-week mean alone.
        level_window
            Half-width, in bins, of the triangular window over which a weekday's level is
            compared with its day type's (see :attr:`Averages.scaled`); default
            :attr:`level_window`.

        Returns
        -------
        Averages
            Arrays of shape ``(n_series, m)``; NaN for series never trained on.
        """
        half = self.smoothing if smoothing is None else smoothing
        wide = self.level_window if level_window is None else level_window
        near = self._kernel_means(rows, panel, columns, leave_out, half)
        around = near if wide == half else self._kernel_means(rows, panel, columns, leave_out, wide)
        return self._averages(near, around, self.shrinkage if shrinkage is None else shrinkage)

    @staticmethod
    def _averages(near: list[np.ndarray], around: list[np.ndarray], shrinkage: float) -> Averages:
        week, typed, day, overall = near
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.where(around[1] > 0, around[0] / around[1], np.nan)
        shape = np.broadcast_shapes(week.shape, overall.shape)
        averages = Averages(
            week=np.broadcast_to(week, shape),
            day_type=np.broadcast_to(typed, shape),
            day=np.broadcast_to(day, shape),
            overall=np.broadcast_to(overall, shape),
            scaled=np.broadcast_to(typed * level, shape),
            best=np.empty(0),
        )
        return averages._replace(best=_blend(averages, shrinkage))

    def _kernel_means(
        self, rows: np.ndarray, panel: Panel, columns: np.ndarray, leave_out: bool, half: int
    ) -> list[np.ndarray]:
        """Return means by time of week, day type, time of day and overall, smoothed over slots.

        The smoothing is a triangular kernel of half-width ``half`` bins. Each bin's own means
        (leaving its own count out) are looked up once over the span the kernel covers, and the
        kernel is a convolution along time, so the cost does not grow with ``half``.
        """
        columns = np.asarray(columns, dtype=np.int64)
        row = np.asarray(rows)[:, None]
        if columns.size == 0:
            return [np.empty((len(row), 0))] * 4
        first = int(columns.min()) - half
        span = np.arange(first, int(columns.max()) + half + 1)
        observed = panel.take(span) if leave_out else None
        means = self._slot_means(row, panel.times(span), observed)
        shape = (len(row), len(span))
        position = columns - first
        if half == 0:
            return [np.broadcast_to(mean, shape)[:, position] for mean in means]
        kernel = (half + 1 - np.abs(np.arange(-half, half + 1))).astype(float)
        out = []
        for mean in means:
            mean = np.broadcast_to(mean, shape)
            known = ~np.isnan(mean)
            total = convolve1d(np.where(known, mean, 0.0), kernel, axis=1, mode="constant")
            weight = convolve1d(known.astype(float), kernel, axis=1, mode="constant")
            with np.errstate(invalid="ignore", divide="ignore"):
                # Weights are whole numbers: below one half is no observation at all.
                out.append(np.where(weight > 0.5, total / weight, np.nan)[:, position])
        return out

    def tune(
        self,
        panel: Panel,
        *,
        max_minutes: float = 60.0,
        level_minutes: Sequence[float] = (60, 120, 240),
    ) -> Profile:
        """Return a copy with the smoothing, level window and shrinkage that fit ``panel`` best.

        Every smoothing half-width from 0 to ``max_minutes`` (minutes), level window of
        ``level_minutes`` (minutes) and shrinkage from 0 to 1 in steps of 0.1 is scored by the
        mean absolute error of the leave-out averages against every training count, so the
        choice is made on counts the averages have not seen.
        """
        minutes = bin_minutes(self.bin)
        largest = max(1, int(max_minutes // minutes))
        windows = sorted({max(1, round(m / minutes)) for m in level_minutes})
        rows = self.rows_for(panel.keys)
        columns = np.arange(panel.n_bins)
        observed = panel.values
        kernels = {
            half: self._kernel_means(rows, panel, columns, True, half)
            for half in sorted({*range(largest + 1), *windows})
        }
        scores = {}
        for half in range(largest + 1):
            for wide in windows:
                for shrinkage in np.linspace(0.0, 1.0, 11):
                    best = self._averages(kernels[half], kernels[wide], float(shrinkage)).best
                    usable = ~np.isnan(observed) & ~np.isnan(best)
                    if usable.any():
                        scores[half, wide, round(float(shrinkage), 1)] = np.abs(best - observed)[
                            usable
                        ].mean()
        if not scores:
            return self
        half, wide, shrinkage = min(scores, key=scores.__getitem__)
        return replace(self, smoothing=half, shrinkage=shrinkage, level_window=wide)

    def _slot_means(
        self, row: np.ndarray, times: np.ndarray, observed: np.ndarray | None
    ) -> list[np.ndarray]:
        """Return means by time of week, day type, time of day and overall, without ``observed``."""
        weekday, slot = calendar(times, self.bin)
        seen = row < len(self.keys)
        row = np.where(seen, row, 0)
        total, number = self._by_day
        day_type = (weekday >= _WEEKEND_START).astype(np.int64)
        typed_total, typed_number = self._day_type
        lookups = [
            (total[row, weekday, slot], number[row, weekday, slot]),
            (typed_total[row, day_type, slot], typed_number[row, day_type, slot]),
            (self._day[0][row, slot], self._day[1][row, slot]),
            (self._total[0][row], self._total[1][row]),
        ]
        own = np.zeros((1, 1), dtype=bool)
        value = np.zeros((1, 1))
        if observed is not None:
            own = (
                (times >= self.train_start.value)
                & (times < self.train_end.value)
                & ~np.isnan(observed)
            )
            value = np.where(own, observed, 0.0)
        means = []
        with np.errstate(invalid="ignore", divide="ignore"):
            for level_sum, level_n in lookups:
                level_n = level_n * seen - own
                means.append(np.where(level_n > 0, (level_sum - value) / level_n, np.nan))
        return means

    def save(self, path: Path) -> None:
        """Write the profile as one ``.npz`` file (no pickled objects)."""
        np.savez(
            path,
            intersection=self.keys["intersection"].to_numpy(dtype=str),
            movement=self.keys["movement"].to_numpy(dtype=str),
            bin_ns=np.int64(self.bin.value),
            train_ns=np.array([self.train_start.value, self.train_end.value], dtype=np.int64),
            week_sum=self.week_sum,
            week_n=self.week_n,
            smoothing=np.int64(self.smoothing),
            shrinkage=np.float64(self.shrinkage),
            level_window=np.int64(self.level_window),
        )

    @classmethod
    def load(cls, path: Path) -> Profile:
        """Read a profile written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            keys = pd.DataFrame(
                {
                    "intersection": data["intersection"].astype(str),
                    "movement": data["movement"].astype(str),
                }
            ).astype({"intersection": "str", "movement": "str"})
            return cls(
                keys=keys,
                bin=pd.Timedelta(int(data["bin_ns"]), unit="ns"),
                train_start=pd.Timestamp(int(data["train_ns"][0]), unit="ns"),
                train_end=pd.Timestamp(int(data["train_ns"][1]), unit="ns"),
                week_sum=data["week_sum"],
                week_n=data["week_n"],
                smoothing=int(data["smoothing"]),
                shrinkage=float(data["shrinkage"]),
                level_window=int(data["level_window"]),
            )
