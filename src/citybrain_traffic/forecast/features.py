"""Turn tidy counts into a series-by-bin panel, historical profiles and forecast features.

The panel is built in ``_panel`` and the profile in ``_profile``; this module builds the features
and is the public home of all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from citybrain_traffic.forecast._panel import (
    DAYS_PER_WEEK,
    NS_PER_DAY,
    Panel,
    bin_minutes,
    bins_per_day,
    build_panel,
    calendar,
)
from citybrain_traffic.forecast._profile import MIN_SCALE, Averages, Profile

__all__ = [
    "DAYS_PER_WEEK",
    "MIN_SCALE",
    "NS_PER_DAY",
    "Averages",
    "FeatureSpec",
    "Features",
    "Panel",
    "Profile",
    "bin_minutes",
    "bins_per_day",
    "build_panel",
    "calendar",
    "make_features",
]


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
        """Return the offsets (bins) from the origin the features read; ``-1`` is the last bin."""
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

    def full(values: npt.ArrayLike) -> np.ndarray:
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
            lagged = target - lag_days * spec.per_day
            # Seasonal lags must be in the past of the origin too (horizons longer than a day).
            value = panel.take(np.where(lagged < origins, lagged, -1))
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
    """Build the recent-history features and the count-to-usual ratios.

    The features are the last bins' levels and deviations from the profile (own, and pooled over
    the intersection and the network) and rolling-window means and deviations. The ratios
    (series, intersection, network per window) are returned apart, since :func:`make_features`
    also multiplies them with the target's usual value.
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
    """Return the sum of ``values`` (rows = series) within each group, repeated per series."""
    total = np.zeros((groups.max() + 1, values.shape[1]))
    np.add.at(total, groups, values)
    return total[groups]


def _group_mean(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Return the mean of observed ``values`` (rows = series) per group, repeated per series."""
    observed = ~np.isnan(values)
    total = np.zeros((groups.max() + 1, values.shape[1]))
    number = np.zeros_like(total)
    np.add.at(total, groups, np.where(observed, values, 0.0))
    np.add.at(number, groups, observed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(number > 0, total / number, np.nan)[groups]


def _cumulative(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return running sums of observed values and of their number, with a leading zero column."""
    observed = ~np.isnan(values)
    zeros = np.zeros((values.shape[0], 1))
    return (
        np.hstack([zeros, np.cumsum(np.where(observed, values, 0.0), axis=1)]),
        np.hstack([zeros, np.cumsum(observed, axis=1)]),
    )


def _window_mean(total: np.ndarray, number: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """Return the mean of observed values among the ``width`` block columns before each ``end``."""
    count = number[:, end] - number[:, end - width]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (total[:, end] - total[:, end - width]) / count, np.nan)


def _codes(values: pd.Series, known: list[str]) -> np.ndarray:
    codes = pd.Index(known).get_indexer(pd.Index(values.astype(str))).astype(np.float64)
    codes[codes < 0] = np.nan
    return codes
