"""Turn tidy counts into a series-by-bin panel, historical profiles and forecast features."""

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
from citybrain_traffic.errors import InputError

NS_PER_DAY = 86_400 * 10**9
DAYS_PER_WEEK = 7
# 1970-01-01, day 0 of the int64 nanosecond clock, was a Thursday (Monday = 0).
_EPOCH_WEEKDAY = 3
_WEEKEND_START = 5  # Saturday
# A series' level is its mean count; flooring it at one vehicle per bin keeps nearly empty series
# from turning one stray vehicle into a huge normalised value.
MIN_SCALE = 1.0


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
        return self.values.shape[1]

    def times(self, columns: np.ndarray) -> np.ndarray:
        """Start of the bins at ``columns`` (any shape, may lie outside the panel) as int64 ns."""
        return self.start.value + np.asarray(columns, dtype=np.int64) * self.bin.value

    def columns_of(self, timestamps: pd.DatetimeIndex | pd.Series | np.ndarray) -> np.ndarray:
        """Column index of each timestamp; raises InputError for one that is not a bin start."""
        stamps = np.asarray(timestamps, dtype="datetime64[ns]").view(np.int64)
        offset = stamps - self.start.value
        off_grid = np.flatnonzero(offset % self.bin.value != 0)
        if off_grid.size:
            bad = pd.Timestamp(stamps[off_grid[0]])
            raise InputError(
                f"time {bad} is not a bin boundary of the {bin_minutes(self.bin):g}-min grid through "
                f"{self.start}; expected e.g. {self.start + self.bin * ((bad - self.start) // self.bin)}"
            )
        return offset // self.bin.value

    def take(self, columns: np.ndarray) -> np.ndarray:
        """Values at 1-D ``columns`` for every series, NaN for columns outside the panel."""
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
    """Number of bins in a day; raises InputError when ``bin`` does not divide a day evenly."""
    if NS_PER_DAY % bin.value:
        raise InputError(
            f"bin length {bin_minutes(bin):g} min does not divide a day; expected a divisor of "
            "24 h such as 5, 15 or 60 min"
        )
    return NS_PER_DAY // bin.value


def bin_minutes(bin: pd.Timedelta) -> float:
    """Bin length in minutes."""
    return bin / pd.Timedelta(minutes=1)


def calendar(times: np.ndarray, bin: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
    """Day of week (Monday = 0) and time-of-day slot (bins since midnight) of int64-ns times."""
    days = np.floor_divide(times, NS_PER_DAY)
    return (days + _EPOCH_WEEKDAY) % DAYS_PER_WEEK, (times - days * NS_PER_DAY) // bin.value


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
    """The ``best`` average of :class:`Averages` for a given shrinkage."""
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
        """Sums and counts per (series, weekday, time-of-day slot)."""
        shape = (len(self.keys), DAYS_PER_WEEK, -1)
        return self.week_sum.reshape(shape), self.week_n.reshape(shape)

    @cached_property
    def _day_type(self) -> tuple[np.ndarray, np.ndarray]:
        """Sums and counts per (series, day type, time-of-day slot); day type 1 = weekend."""
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
        """Profile row of each series in ``keys``; ``len(self.keys)`` for a series never trained on."""
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
        """Historical averages of the series of ``panel`` at its bins ``columns``.

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
        """Means by time of week, day type, time of day and overall, averaged over a triangular
        kernel of neighbouring slots of half-width ``half`` bins.

        Each bin's own means (leaving its own count out) are looked up once over the span the
        kernel covers, and the kernel is a convolution along time, so the cost does not grow
        with ``half``.
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
        """Copy of this profile with the smoothing, level window and shrinkage that best predict
        the training bins.

        Every smoothing half-width from 0 to ``max_minutes``, level window of ``level_minutes``
        and shrinkage from 0 to 1 in steps of 0.1 is scored by the mean absolute error of the
        leave-out averages against every training count, so the choice is made on counts the
        averages have not seen.
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
        half, wide, shrinkage = min(scores, key=scores.get)
        return replace(self, smoothing=half, shrinkage=shrinkage, level_window=wide)

    def _slot_means(
        self, row: np.ndarray, times: np.ndarray, observed: np.ndarray | None
    ) -> list[np.ndarray]:
        """Means by time of week, day type, time of day and overall, leaving ``observed`` out."""
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


@dataclass(frozen=True)
class FeatureSpec:
    """Which recent history the LightGBM features read.

    Attributes
    ----------
    lags
        Number of most recent bins used one by one (level and deviation from the profile).
    pooled_lags
        Number of most recent bins whose deviation, pooled over the series' intersection and
        over the network, is used one by one.
    window_bins
        Lengths (in bins) of the rolling windows of recent history.
    per_day
        Bins per day, for the same-time-yesterday and same-time-last-week lags.
    """

    lags: int
    window_bins: tuple[int, ...]
    per_day: int
    pooled_lags: int = 2

    @property
    def names(self) -> list[str]:
        """Feature column names, in matrix order."""
        return [
            "intersection",
            "movement",
            "log_mean",
            "hour_of_day",
            "day_of_week",
            "weekend",
            "ha_week_raw",
            "ha_week",
            "ha_day_type",
            "ha_day",
            "ha_scaled",
            *(f"lag_{lag}" for lag in range(1, self.lags + 1)),
            *(f"lag_dev_{lag}" for lag in range(1, self.lags + 1)),
            *(
                f"{group}_lag_dev_{lag}"
                for lag in range(1, self.pooled_lags + 1)
                for group in ("intersection", "network")
            ),
            *(
                name
                for w in self.window_bins
                for name in (f"mean_{w}", f"dev_{w}", f"intersection_dev_{w}", f"network_dev_{w}")
            ),
            *(
                f"{kind}_{group}_{w}"
                for w in self.window_bins
                for group in ("own", "intersection", "network")
                for kind in ("ratio", "scaled")
            ),
            "day_ago",
            "dev_day_ago",
            "week_ago",
            "dev_week_ago",
            "horizon_bins",
        ]

    @property
    def categorical(self) -> list[int]:
        """Matrix columns holding category codes."""
        return [0, 1]

    @property
    def recent_bins(self) -> int:
        """How many bins before the origin the recent-history features read."""
        return max(self.lags, self.pooled_lags, *self.window_bins)

    def history_offsets(self, horizon_bins: Sequence[int]) -> np.ndarray:
        """Bin offsets from the origin (``-1`` = the last bin before it) the features read."""
        recent = -np.arange(1, self.recent_bins + 1)
        seasonal = [
            k - 1 - days * self.per_day for k in horizon_bins for days in (1, DAYS_PER_WEEK)
        ]
        return np.unique(np.r_[recent, [s for s in seasonal if s < 0]])


@dataclass(frozen=True)
class Features:
    """Feature rows for every (series, origin) pair at one horizon, series-major.

    Attributes
    ----------
    matrix
        float32, shape ``(n_series * n_origins, n_features)``.
    base
        Historical-average expectation of the target bin (vehicles per bin).
    scale
        Series level the target is normalised by (vehicles per bin).
    actual
        Observed count of the target bin (NaN when missing or beyond the panel).
    target_columns
        Panel column of the target bin per origin, shape ``(n_origins,)``.
    """

    matrix: np.ndarray
    base: np.ndarray
    scale: np.ndarray
    actual: np.ndarray
    target_columns: np.ndarray


def make_features(
    panel: Panel,
    profile: Profile,
    *,
    spec: FeatureSpec,
    origins: np.ndarray,
    horizon_bins: Sequence[int],
    categories: dict[str, list[str]],
) -> list[Features]:
    """Build LightGBM features for every series of ``panel`` at each origin and horizon.

    An origin is a panel column index ``o``: the forecast may use bins ``< o`` only. The target
    of horizon ``k`` bins is the bin ``o + k - 1`` (``k = 1`` is the bin that starts at the
    origin). Counts are divided by the series level (:attr:`Profile.scale`) so that one model
    serves quiet and busy series alike.

    Parameters
    ----------
    panel
        Counts; columns at or after an origin are never read for that origin.
    profile
        Historical profile fitted on the training period.
    spec
        Which lags and windows to compute.
    origins
        Panel column indices of the forecast origins, shape ``(n_origins,)``.
    horizon_bins
        Horizons in bins.
    categories
        Known ``intersection`` and ``movement`` values; their position is the category code
        (an unknown value becomes NaN, which LightGBM treats as missing).

    Returns
    -------
    list of Features
        One per horizon, in the order of ``horizon_bins``.
    """
    origins = np.asarray(origins, dtype=np.int64)
    rows = profile.rows_for(panel.keys)
    scale = np.append(profile.scale, np.nan)[rows][:, None]
    n_series, n_origins = len(panel.keys), len(origins)
    shape = (n_series, n_origins)

    def full(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values, shape)

    static = [
        full(_codes(panel.keys["intersection"], categories["intersection"])[:, None]),
        full(_codes(panel.keys["movement"], categories["movement"])[:, None]),
        full(np.log1p(np.append(profile.mean, np.nan)[rows])[:, None]),
    ]
    recent, ratios = _recent_features(panel, profile, rows, scale, spec, origins)
    out = []
    for k in horizon_bins:
        target = origins + k - 1
        actual = panel.take(target)
        target_times = panel.times(target)
        usual = profile.expected(rows, panel, target)
        raw_week = profile.expected(rows, panel, target, smoothing=0).week
        weekday, slot = calendar(target_times, panel.bin)
        seasonal = []
        for lag_days, average in ((1, usual.day_type), (DAYS_PER_WEEK, usual.week)):
            columns = target - lag_days * spec.per_day
            # Seasonal lags must be in the past of the origin too (horizons longer than a day).
            value = panel.take(np.where(columns < origins, columns, -1))
            # Compared with the target slot's own average, which leaves the target out; the
            # lag bin's average would contain the training target and leak it.
            seasonal += [value / scale, (value - average) / scale]
        columns = [
            *static,
            full(slot * bin_minutes(panel.bin) / 60.0),
            full(weekday),
            full(weekday >= 5),
            raw_week / scale,
            usual.week / scale,
            usual.day_type / scale,
            usual.day / scale,
            usual.scaled / scale,
            *recent,
            *(x for ratio in ratios for x in (ratio, (ratio - 1.0) * usual.best / scale)),
            *seasonal,
            full(np.float64(k)),
        ]
        matrix = np.empty((n_series * n_origins, len(columns)), dtype=np.float32)
        for i, column in enumerate(columns):
            matrix[:, i] = np.asarray(column, dtype=np.float64).ravel()
        out.append(
            Features(
                matrix=matrix,
                base=usual.best.ravel(),
                scale=full(scale).ravel(),
                actual=actual.ravel(),
                target_columns=target,
            )
        )
    return out


def _recent_features(
    panel: Panel,
    profile: Profile,
    rows: np.ndarray,
    scale: np.ndarray,
    spec: FeatureSpec,
    origins: np.ndarray,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Lags and their deviations from the profile (own and pooled), rolling means/deviations, and
    ratios to the profile.

    Returns the features, and the count-to-usual ratios (series, intersection, network per window)
    that :func:`make_features` also multiplies with the target's usual value.
    """
    first = int(origins.min()) - spec.recent_bins
    block_columns = np.arange(first, int(origins.max()))
    values = panel.take(block_columns)
    usual = profile.expected(rows, panel, block_columns).best
    level = values / scale
    deviation = (values - usual) / scale
    end = origins - first  # block position just past the last bin before each origin
    lags = range(1, spec.lags + 1)
    features = [*(level[:, end - lag] for lag in lags), *(deviation[:, end - lag] for lag in lags)]
    level_sum, level_n = _cumulative(level)
    deviation_sum, deviation_n = _cumulative(deviation)
    # Movements of one intersection, and all series of a network, share weather, events and
    # incidents; their pooled deviation is a far less noisy signal than one series' own. The
    # last bins' pooled deviations are the freshest of it (on SCATS the network's deviation has
    # a lag-1 autocorrelation of ~0.56, a single series' ~0.13), the windows below its trend.
    intersection = pd.factorize(panel.keys["intersection"])[0]
    everything = np.zeros(len(panel.keys), dtype=np.int64)
    for lag in range(1, spec.pooled_lags + 1):
        last = deviation[:, end - lag]
        features += [_group_mean(last, intersection), _group_mean(last, everything)]
    # Traffic above or below its usual level tends to stay so in proportion: the ratio of the
    # counts to their usual values over a window, for the series and pooled over its intersection
    # and the network, scales the target's usual value.
    both = ~np.isnan(values) & ~np.isnan(usual)
    seen_sum, _ = _cumulative(np.where(both, values, np.nan))
    usual_sum, _ = _cumulative(np.where(both, usual, np.nan))
    ratios = []
    for width in spec.window_bins:
        own = _window_mean(deviation_sum, deviation_n, end, width)
        features += [
            _window_mean(level_sum, level_n, end, width),
            own,
            _group_mean(own, intersection),
            _group_mean(own, everything),
        ]
        seen = seen_sum[:, end] - seen_sum[:, end - width]
        expected = usual_sum[:, end] - usual_sum[:, end - width]
        for groups in (None, intersection, everything):
            top, bottom = (
                (seen, expected)
                if groups is None
                else (_group_sum(seen, groups), _group_sum(expected, groups))
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                ratios.append(np.where(bottom > 0, top / bottom, np.nan))
    return features, ratios


def _group_sum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (rows = series) within each group, repeated per series."""
    total = np.zeros((groups.max() + 1, values.shape[1]))
    np.add.at(total, groups, values)
    return total[groups]


def _group_mean(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mean of the observed ``values`` (rows = series) within each group, repeated per series."""
    observed = ~np.isnan(values)
    total = np.zeros((groups.max() + 1, values.shape[1]))
    number = np.zeros_like(total)
    np.add.at(total, groups, np.where(observed, values, 0.0))
    np.add.at(number, groups, observed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(number > 0, total / number, np.nan)[groups]


def _cumulative(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running sums of observed values and of their number, with a leading zero column."""
    observed = ~np.isnan(values)
    zeros = np.zeros((values.shape[0], 1))
    return (
        np.hstack([zeros, np.cumsum(np.where(observed, values, 0.0), axis=1)]),
        np.hstack([zeros, np.cumsum(observed, axis=1)]),
    )


def _window_mean(total: np.ndarray, number: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """Mean of the observed values among the ``width`` block columns before each ``end``."""
    count = number[:, end] - number[:, end - width]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (total[:, end] - total[:, end - width]) / count, np.nan)


def _codes(values: pd.Series, known: list[str]) -> np.ndarray:
    codes = pd.Index(known).get_indexer(values.astype(str)).astype(np.float64)
    codes[codes < 0] = np.nan
    return codes
