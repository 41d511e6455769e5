"""Forecast per-movement counts: persistence, historical average and a global LightGBM model.

All forecasters share one interface (scikit-learn shaped): hyperparameters in ``__init__``,
``fit(counts)`` on a tidy count table, ``predict(history, at=...)`` for one or many forecast
origins, ``save(path)`` to a folder and ``Forecaster.load(path)`` back.

A forecast *origin* ``T`` is a bin boundary: only bins that start before ``T`` are history. The
forecast for horizon ``h`` minutes is the count of the bin that ends at ``T + h`` (so with 15-min
bins, ``h = 15`` is the bin ``[T, T + 15 min)`` and ``h = 60`` is ``[T + 45 min, T + 60 min)``).
Forecasts are vehicles per bin.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Self

import lightgbm as lgb
import numpy as np
import pandas as pd

from citybrain_traffic import __version__
from citybrain_traffic.counts import SERIES_KEYS, infer_bin, validate_counts
from citybrain_traffic.errors import InputError
from citybrain_traffic.model_folder import (
    METADATA_FILE,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    read_metadata,
)
from citybrain_traffic.forecast.features import (
    FeatureSpec,
    Panel,
    Profile,
    bin_minutes,
    bins_per_day,
    build_panel,
    make_features,
)

DEFAULT_HORIZONS = (15, 30, 60)
QUANTILES = (0.1, 0.5, 0.9)
FORECAST_COLUMNS = [
    "intersection",
    "movement",
    "origin",
    "horizon_min",
    "timestamp",
    "p10",
    "p50",
    "p90",
]
_PROFILE_FILE = "profile.npz"


class Forecaster:
    """Common interface of the forecasters; use a subclass.

    Parameters
    ----------
    horizons
        Forecast horizons in minutes, each a whole multiple of the bin length.
    """

    kind: ClassVar[str]
    _registry: ClassVar[dict[str, type[Forecaster]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Forecaster._registry[cls.kind] = cls

    def __init__(self, *, horizons: Sequence[int] = DEFAULT_HORIZONS) -> None:
        self.horizons = tuple(int(h) for h in horizons)

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given to ``__init__`` (JSON-serialisable)."""
        return {"horizons": list(self.horizons)}

    def fit(self, counts: pd.DataFrame, *, bin: str | pd.Timedelta | None = None) -> Self:
        """Learn from a tidy count table.

        Parameters
        ----------
        counts
            Training counts (see :mod:`citybrain_traffic.counts`), vehicles per bin; gaps are
            allowed.
        bin
            Bin length (e.g. ``"15min"``); ``None`` infers it from the timestamps (the smallest
            spacing within a series). Give it when the counts cover fewer than two bins a day,
            such as one 60-min bin from each simulated day, where the spacing is a whole day.

        Returns
        -------
        Self
            The fitted forecaster.
        """
        counts = validate_counts(counts, bin=bin)
        if counts.empty:
            raise InputError("cannot fit a forecaster on an empty count table")
        step = infer_bin(counts) if bin is None else pd.Timedelta(bin)
        bins_per_day(step)
        self._horizon_bins(self.horizons, step)
        start = counts["timestamp"].min()
        panel = build_panel(counts, bin=step, start=start, end=counts["timestamp"].max() + step)
        self.bin_ = step
        self.grid_start_ = start
        self._fit_panel(panel)
        return self

    def predict(
        self,
        history: pd.DataFrame,
        *,
        at: pd.Timestamp | str | Sequence[pd.Timestamp | str] | pd.DatetimeIndex | None = None,
        horizons: Sequence[int] | None = None,
    ) -> pd.DataFrame:
        """Forecast every series of ``history`` from one or many origins.

        Parameters
        ----------
        history
            Recent counts in the model's bins (tidy table, vehicles per bin). Each series in it
            is forecast. For each origin only the bins that start before it are read, so one
            long table serves many origins without look-ahead.
        at
            Forecast origin(s): bin boundaries on the model's grid. Default: the end of the last
            bin in ``history``.
        horizons
            Horizons in minutes, a subset of the fitted ``horizons``; default all of them.

        Returns
        -------
        pandas.DataFrame
            Columns ``intersection, movement, origin, horizon_min, timestamp`` (start of the
            forecast bin), ``p10, p50, p90`` (vehicles per bin). Point forecasters leave ``p10``
            and ``p90`` NaN. A series the model cannot forecast (e.g. never seen in training by a
            profile-based model) gets NaN.
        """
        self._check_fitted()
        wanted = self.horizons if horizons is None else tuple(int(h) for h in horizons)
        unknown = sorted(set(wanted) - set(self.horizons))
        if unknown:
            raise InputError(
                f"horizon(s) {unknown} min were not fitted; expected a subset of {list(self.horizons)} min"
            )
        history = validate_counts(history, bin=self.bin_)
        origins = self._origins(history, at)
        steps = self._horizon_bins(wanted, self.bin_)
        if history.empty:
            return pd.DataFrame({column: [] for column in FORECAST_COLUMNS})
        first = self._first_offset(steps)
        start = (
            origins.min() + first * self.bin_
            if first is not None
            else self._snap(history["timestamp"].min())
        )
        panel = build_panel(
            history, bin=self.bin_, start=min(start, origins.min()), end=origins.max()
        )
        columns = panel.columns_of(origins)
        quantiles = self._forecast(panel, columns, steps)
        return _forecast_table(panel, origins, wanted, steps, quantiles)

    def save(self, path: str | Path) -> None:
        """Write the fitted model to the folder ``path``.

        The folder is created if needed. An existing non-empty folder is only written to when it
        already holds a model of this package (its model files are then replaced and any other
        files left alone); anything else raises :class:`InputError` rather than risk user data.
        """
        self._check_fitted()
        path = Path(path)
        previous = _existing_model_files(path)
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path, prefix=".saving-") as tmp:
            staging = Path(tmp)
            files, state = self._save_state(staging)
            metadata = {
                "format": MODEL_FORMAT,
                "format_version": MODEL_FORMAT_VERSION,
                "package_version": __version__,
                "kind": self.kind,
                "params": self.get_params(),
                "horizons_min": list(self.horizons),
                "bin_minutes": bin_minutes(self.bin_),
                "grid_start": self.grid_start_.isoformat(),
                "files": files,
                **state,
            }
            (staging / METADATA_FILE).write_text(
                json.dumps(metadata, indent=2) + "\n", encoding="utf-8"
            )
            for name in files:
                os.replace(staging / name, path / name)
            for name in set(previous) - set(files):
                (path / name).unlink(missing_ok=True)
            # The metadata goes last: a folder with a complete model.json has all its files.
            os.replace(staging / METADATA_FILE, path / METADATA_FILE)

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Read a model folder written by :meth:`save`.

        ``Forecaster.load`` returns whichever kind of model the folder holds; a subclass's
        ``load`` also checks the kind.
        """
        path = Path(path)
        metadata = read_metadata(path)
        kind = metadata["kind"]
        if kind not in Forecaster._registry:
            raise InputError(
                f"{path} holds an unknown model kind {kind!r}; expected one of {sorted(Forecaster._registry)}"
            )
        model_class = Forecaster._registry[kind]
        if not issubclass(model_class, cls):
            raise InputError(f"{path} holds a {kind!r} model, not a {cls.kind!r} model")
        model = model_class(**metadata["params"])
        model.bin_ = pd.Timedelta(minutes=metadata["bin_minutes"])
        model.grid_start_ = pd.Timestamp(metadata["grid_start"])
        model._load_state(path, metadata)
        return model

    def _fit_panel(self, panel: Panel) -> None:
        """Learn the model's state from the training panel."""

    def _first_offset(self, steps: Sequence[int]) -> int | None:
        """Earliest bin (relative to the origin) the forecast reads; ``None`` for all history."""
        raise NotImplementedError

    def _forecast(self, panel: Panel, origins: np.ndarray, steps: Sequence[int]) -> np.ndarray:
        """Quantile forecasts, shape ``(n_horizons, n_series, n_origins, 3)``, vehicles per bin."""
        raise NotImplementedError

    def _save_state(self, folder: Path) -> tuple[list[str], dict[str, Any]]:
        """Write state files into ``folder``; return their names and extra metadata."""
        return [], {}

    def _load_state(self, folder: Path, metadata: dict[str, Any]) -> None:
        """Restore the state written by :meth:`_save_state`."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "bin_"):
            raise InputError(
                f"this {type(self).__name__} is not fitted yet; call fit(counts) or load a saved model"
            )

    def _origins(self, history: pd.DataFrame, at: Any) -> pd.DatetimeIndex:
        if at is None:
            if history.empty:
                raise InputError(
                    "history is empty; pass at least one count or an explicit origin `at`"
                )
            return pd.DatetimeIndex([history["timestamp"].max() + self.bin_])
        try:
            origins = pd.DatetimeIndex(pd.to_datetime([at] if np.ndim(at) == 0 else list(at)))
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"forecast origin at={at!r} is not a timestamp; expected e.g. '2025-11-22 08:00'"
            ) from exc
        if origins.empty or origins.hasnans:
            raise InputError(
                f"forecast origin at={at!r} is empty or missing; expected one or more timestamps"
            )
        origins = origins.tz_localize(None) if origins.tz is not None else origins
        off_grid = (origins - self.grid_start_) % self.bin_ != pd.Timedelta(0)
        if off_grid.any():
            bad = origins[off_grid][0]
            raise InputError(
                f"forecast origin {bad} is not a bin boundary; expected a multiple of "
                f"{bin_minutes(self.bin_):g} min from {self.grid_start_}, e.g. {self._snap(bad)}"
            )
        return origins.astype("datetime64[ns]").unique().sort_values()

    def _snap(self, timestamp: pd.Timestamp) -> pd.Timestamp:
        """The bin boundary of the model's grid at or before ``timestamp``."""
        return self.grid_start_ + ((timestamp - self.grid_start_) // self.bin_) * self.bin_

    @staticmethod
    def _horizon_bins(horizons: Sequence[int], step: pd.Timedelta) -> list[int]:
        minutes = bin_minutes(step)
        if not horizons:
            raise InputError("no forecast horizons given; expected e.g. 15,30,60 (minutes)")
        bad = [h for h in horizons if h <= 0 or h % minutes]
        if bad:
            raise InputError(
                f"horizon(s) {bad} min are not positive whole multiples of the {minutes:g}-min bin; "
                f"expected e.g. {int(minutes)},{int(2 * minutes)},{int(4 * minutes)}"
            )
        return [int(h // minutes) for h in horizons]


class Persistence(Forecaster):
    """Forecast every horizon with the last observed bin of the series.

    A series whose last bin is missing uses its most recent observed bin; one with no count
    before the origin gets NaN.

    Parameters
    ----------
    horizons
        Forecast horizons in minutes.
    """

    kind = "persistence"

    def _first_offset(self, steps: Sequence[int]) -> int | None:
        return None

    def _forecast(self, panel: Panel, origins: np.ndarray, steps: Sequence[int]) -> np.ndarray:
        n_series = len(panel.keys)
        observed = ~np.isnan(panel.values)
        latest = np.maximum.accumulate(np.where(observed, np.arange(panel.n_bins), -1), axis=1)
        # A leading column makes column o of the padded arrays "the latest observation before o".
        latest = np.hstack([np.full((n_series, 1), -1), latest])
        values = np.hstack([np.full((n_series, 1), np.nan), panel.values])
        last = values[np.arange(n_series)[:, None], latest[:, origins] + 1]
        out = np.full((len(steps), *last.shape, len(QUANTILES)), np.nan)
        out[..., 1] = last
        return out


class HistoricalAverage(Forecaster):
    """Forecast the mean count of the series at the same time of week over the training days.

    A time-of-week slot never seen in training falls back to the series' mean at that time of
    day over all days, then to its overall mean. Series not seen in training get NaN.

    Parameters
    ----------
    horizons
        Forecast horizons in minutes.
    """

    kind = "historical_average"

    def _fit_panel(self, panel: Panel) -> None:
        self.profile_ = Profile.fit(panel)

    def _first_offset(self, steps: Sequence[int]) -> int | None:
        return 0

    def _forecast(self, panel: Panel, origins: np.ndarray, steps: Sequence[int]) -> np.ndarray:
        rows = self.profile_.rows_for(panel.keys)
        out = np.full((len(steps), len(panel.keys), len(origins), len(QUANTILES)), np.nan)
        for i, k in enumerate(steps):
            out[i, :, :, 1] = self.profile_.expected(
                rows, panel, origins + k - 1, leave_out=False
            ).best
        return out

    def _save_state(self, folder: Path) -> tuple[list[str], dict[str, Any]]:
        self.profile_.save(folder / _PROFILE_FILE)
        return [_PROFILE_FILE], {}

    def _load_state(self, folder: Path, metadata: dict[str, Any]) -> None:
        self.profile_ = Profile.load(folder / _PROFILE_FILE)


class LightGBMForecaster(Forecaster):
    """One global gradient-boosted model over all series, a direct model per horizon and quantile.

    Each (series, origin, horizon) is a row. Counts are normalised by the series level (its
    training mean, at least one vehicle per bin) and the model predicts the deviation of the
    target bin from the series' historical average (time of week, falling back to time of day),
    in units of that level, from:

    - series identity: intersection and movement (categorical), log of the series level;
    - calendar of the target bin: hour of day, day of week, weekend;
    - the historical averages of the target bin (time of week, time of day);
    - recent history: the last ``lags`` bins and their deviations from the historical average,
      the last two bins' deviations pooled over the intersection and over the network, and the
      mean level and mean deviation over each window of ``windows_min``;
    - same time yesterday and a week earlier (level and deviation), when before the origin;
    - the horizon in bins.

    The model of a horizon learns from the rows of that horizon and of every shorter one (at most
    ``max_train_rows`` in all): the correction of the historical average by calendar and series
    is the same at every horizon, and a longer horizon, whose recent history says little, learns
    it better from more rows (on SCATS the 60-min MAE falls ~0.4 %; the 15-min model is unchanged).

    Missing history gives NaN features, which LightGBM routes on its own. P10, P50 and P90 are
    separate quantile models. The P50 model learns from all training rows. The P10 and P90 models
    learn from all but the last ``calibration_fraction`` of the training period and are then
    shifted so that on that held-out tail 10 % of counts fall below P10 and 10 % above P90
    (split-conformal calibration of quantile regression, per horizon).

    Parameters
    ----------
    horizons
        Forecast horizons in minutes (whole multiples of the bin length).
    lags
        Number of most recent bins used one by one as features.
    windows_min
        Lengths of the rolling windows of recent history, in minutes (rounded to whole bins).
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree
        LightGBM boosting rounds, shrinkage, leaves per tree, minimum rows per leaf, row and
        feature fractions per tree.
    max_train_rows
        Training rows per horizon are randomly subsampled to at most this many; ``None`` keeps
        all. Bounds the training time on large networks.
    max_interval_rows
        At most this many of those rows train the P10 and P90 models, with half the rounds:
        the conformal calibration sets the interval's coverage, the models only its shape.
    calibration_fraction
        Trailing fraction of the training period held out to calibrate P10/P90, in ``[0, 1)``;
        0 disables the calibration.
    n_jobs
        LightGBM threads. Two keep a shared machine responsive; raise it on dedicated hardware.
    random_state
        Seed for subsampling and LightGBM.
    """

    kind = "lightgbm"
    _MIN_CALIBRATION_ROWS = 10

    def __init__(
        self,
        *,
        horizons: Sequence[int] = DEFAULT_HORIZONS,
        lags: int = 4,
        windows_min: Sequence[float] = (60, 180),
        n_estimators: int = 150,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        max_train_rows: int | None = 200_000,
        max_interval_rows: int = 100_000,
        calibration_fraction: float = 0.2,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        super().__init__(horizons=horizons)
        self.lags = int(lags)
        self.windows_min = tuple(float(w) for w in windows_min)
        self.n_estimators = int(n_estimators)
        self.learning_rate = float(learning_rate)
        self.num_leaves = int(num_leaves)
        self.min_child_samples = int(min_child_samples)
        self.subsample = float(subsample)
        self.colsample_bytree = float(colsample_bytree)
        self.max_train_rows = None if max_train_rows is None else int(max_train_rows)
        self.max_interval_rows = int(max_interval_rows)
        self.calibration_fraction = float(calibration_fraction)
        self.n_jobs = int(n_jobs)
        self.random_state = int(random_state)

    def get_params(self) -> dict[str, Any]:
        return {
            **super().get_params(),
            "lags": self.lags,
            "windows_min": list(self.windows_min),
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "max_train_rows": self.max_train_rows,
            "max_interval_rows": self.max_interval_rows,
            "calibration_fraction": self.calibration_fraction,
            "n_jobs": self.n_jobs,
            "random_state": self.random_state,
        }

    def history_bins(self, at: pd.Timestamp | str) -> pd.DatetimeIndex:
        """Starts of the bins before origin ``at`` that :meth:`predict` reads.

        A caller that keeps a long buffer of counts can pass only these rows to ``predict`` for
        the fastest forecast; the result is the same.
        """
        self._check_fitted()
        origin = self._origins(pd.DataFrame(), at)[0]
        offsets = self.spec_.history_offsets(self._horizon_bins(self.horizons, self.bin_))
        return pd.DatetimeIndex(origin + offsets * self.bin_)

    def _fit_panel(self, panel: Panel) -> None:
        if not 0.0 <= self.calibration_fraction < 1.0:
            raise InputError(f"calibration_fraction={self.calibration_fraction} must be in [0, 1)")
        minutes = bin_minutes(panel.bin)
        self.profile_ = Profile.fit(panel).tune(panel)
        self.spec_ = FeatureSpec(
            lags=self.lags,
            window_bins=tuple(max(1, round(w / minutes)) for w in self.windows_min),
            per_day=bins_per_day(panel.bin),
        )
        self.categories_ = {
            column: sorted(panel.keys[column].astype(str).unique().tolist())
            for column in SERIES_KEYS
        }
        tail_start = panel.n_bins - round(panel.n_bins * self.calibration_fraction)
        rng = np.random.default_rng(self.random_state)
        self.boosters_: dict[tuple[int, float], lgb.Booster] = {}
        self.calibration_: dict[int, dict[str, float]] = {}
        # Rows of every horizon up to the one being fitted (matrix, target, weight, target column,
        # horizon in bins); see the class docstring.
        pool: list[tuple[np.ndarray, ...]] = []
        by_length = sorted(zip(self._horizon_bins(self.horizons, panel.bin), self.horizons))
        for k, horizon in by_length:
            origins = np.arange(0, max(panel.n_bins - k + 1, 0))
            (features,) = make_features(
                panel,
                self.profile_,
                spec=self.spec_,
                origins=origins,
                horizon_bins=[k],
                categories=self.categories_,
            )
            target = (features.actual - features.base) / features.scale
            rows = np.flatnonzero(~np.isnan(target))
            if rows.size == 0:
                raise InputError(
                    f"no training rows for the {horizon}-min horizon; the count table is too short"
                )
            if self.max_train_rows is not None and rows.size > self.max_train_rows:
                rows = np.sort(rng.choice(rows, self.max_train_rows, replace=False))
            target_column = np.tile(features.target_columns, len(panel.keys))[rows]
            pool.append(
                (
                    features.matrix[rows],
                    target[rows],
                    features.scale[rows],
                    target_column,
                    np.full(rows.size, k),
                )
            )
            del features
            matrix, label, weight, target_column, length = (
                np.concatenate(part) for part in zip(*pool)
            )
            if self.max_train_rows is not None and label.size > self.max_train_rows:
                keep = np.sort(rng.choice(label.size, self.max_train_rows, replace=False))
                matrix, label, weight, target_column, length = (
                    part[keep] for part in (matrix, label, weight, target_column, length)
                )
            # Calibration rows are this horizon's own; no horizon's tail rows train the P10/P90
            # models, since a shorter horizon's tail row shares its target count with them.
            in_tail = target_column >= tail_start
            own_tail = in_tail & (length == k)
            calibrate = own_tail.sum() >= self._MIN_CALIBRATION_ROWS and (~in_tail).sum() > 0
            dataset = lgb.Dataset(
                matrix,
                label=label,
                weight=weight,
                feature_name=self.spec_.names,
                categorical_feature=self.spec_.categorical,
                params={"verbose": -1, "num_threads": self.n_jobs},
                free_raw_data=False,
            ).construct()
            # The P10/P90 models only set the interval's shape (the conformal shifts then fix its
            # coverage), so they learn from fewer rows and rounds than the P50 model.
            interval_rows = np.flatnonzero(~in_tail) if calibrate else np.arange(label.size)
            if interval_rows.size > self.max_interval_rows:
                interval_rows = np.sort(
                    rng.choice(interval_rows, self.max_interval_rows, replace=False)
                )
            interval_data = dataset.subset(interval_rows.tolist())
            for q in QUANTILES:
                self.boosters_[(horizon, q)] = lgb.train(
                    self._lgb_params(q),
                    dataset if q == 0.5 else interval_data,
                    num_boost_round=self.n_estimators
                    if q == 0.5
                    else max(1, self.n_estimators // 2),
                )
            if calibrate:
                self.calibration_[horizon] = self._conformal_shifts(
                    matrix[own_tail], label[own_tail], horizon
                )
            else:
                self.calibration_[horizon] = {"p10": 0.0, "p90": 0.0, "rows": 0}

    def _conformal_shifts(
        self, matrix: np.ndarray, target: np.ndarray, horizon: int
    ) -> dict[str, float]:
        """Shifts (in series-level units) that put 10 % of held-out targets below P10 and above P90.

        The finite-sample quantile levels (``floor((n+1)α)/n`` and ``ceil((n+1)(1-α))/n``) make
        the shifted bounds conservative rather than optimistic.
        """
        n = len(target)
        low = target - self.boosters_[(horizon, QUANTILES[0])].predict(
            matrix, num_threads=self.n_jobs
        )
        high = target - self.boosters_[(horizon, QUANTILES[-1])].predict(
            matrix, num_threads=self.n_jobs
        )
        low_level = max(np.floor((n + 1) * QUANTILES[0]) / n, 0.0)
        high_level = min(np.ceil((n + 1) * QUANTILES[-1]) / n, 1.0)
        return {
            "p10": float(np.quantile(low, low_level, method="lower")),
            "p90": float(np.quantile(high, high_level, method="higher")),
            "rows": n,
        }

    def _lgb_params(self, quantile: float) -> dict[str, Any]:
        return {
            "objective": "quantile",
            "alpha": quantile,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1.0 else 0,
            "feature_fraction": self.colsample_bytree,
            "num_threads": self.n_jobs,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def _first_offset(self, steps: Sequence[int]) -> int | None:
        return int(self.spec_.history_offsets(steps).min())

    def _forecast(self, panel: Panel, origins: np.ndarray, steps: Sequence[int]) -> np.ndarray:
        # The historical averages leave a training bin's own count (and its kernel neighbours')
        # out, as in training; for an origin inside the training period that would read bins at
        # or after the origin once the panel runs past it (other origins). Such an origin gets a
        # panel cut at itself, exactly what it would get alone.
        train_end = (self.profile_.train_end - panel.start) // panel.bin
        in_sample = origins < train_end
        if len(origins) == 1 or not in_sample.any():
            return self._forecast_panel(panel, origins, steps)
        out = np.empty((len(steps), len(panel.keys), len(origins), len(QUANTILES)))
        for i in np.flatnonzero(in_sample):
            cut = replace(panel, values=panel.values[:, : origins[i]])
            out[:, :, i : i + 1] = self._forecast_panel(cut, origins[i : i + 1], steps)
        if (~in_sample).any():
            out[:, :, ~in_sample] = self._forecast_panel(panel, origins[~in_sample], steps)
        return out

    def _forecast_panel(
        self, panel: Panel, origins: np.ndarray, steps: Sequence[int]
    ) -> np.ndarray:
        by_step = dict(zip(self._horizon_bins(self.horizons, self.bin_), self.horizons))
        features = make_features(
            panel,
            self.profile_,
            spec=self.spec_,
            origins=origins,
            horizon_bins=steps,
            categories=self.categories_,
        )
        out = np.empty((len(steps), len(panel.keys), len(origins), len(QUANTILES)))
        for i, (k, feature) in enumerate(zip(steps, features)):
            horizon = by_step[k]
            shifts = self.calibration_[horizon]
            normalised = np.column_stack(
                [
                    self.boosters_[(horizon, q)].predict(feature.matrix, num_threads=self.n_jobs)
                    + shifts.get(f"p{round(q * 100)}", 0.0)
                    for q in QUANTILES
                ]
            )
            # Quantile models are fitted separately and may cross; sorting restores P10 <= P50 <= P90.
            counts = feature.base[:, None] + feature.scale[:, None] * np.sort(normalised, axis=1)
            out[i] = np.clip(counts, 0.0, None).reshape(
                len(panel.keys), len(origins), len(QUANTILES)
            )
        return out

    def _save_state(self, folder: Path) -> tuple[list[str], dict[str, Any]]:
        self.profile_.save(folder / _PROFILE_FILE)
        files = [_PROFILE_FILE]
        for (horizon, q), booster in self.boosters_.items():
            name = _booster_file(horizon, q)
            booster.save_model(str(folder / name))
            files.append(name)
        state = {
            "feature_names": self.spec_.names,
            "window_bins": list(self.spec_.window_bins),
            "categories": self.categories_,
            "quantiles": list(QUANTILES),
            "calibration": {str(h): shifts for h, shifts in self.calibration_.items()},
        }
        return files, state

    def _load_state(self, folder: Path, metadata: dict[str, Any]) -> None:
        self.profile_ = Profile.load(folder / _PROFILE_FILE)
        self.spec_ = FeatureSpec(
            lags=self.lags,
            window_bins=tuple(metadata["window_bins"]),
            per_day=bins_per_day(self.bin_),
        )
        if self.spec_.names != metadata["feature_names"]:
            raise InputError(
                f"{folder} was saved with features {metadata['feature_names']}, but this version builds "
                f"{self.spec_.names}; retrain the model"
            )
        self.categories_ = metadata["categories"]
        self.calibration_ = {int(h): shifts for h, shifts in metadata["calibration"].items()}
        self.boosters_ = {
            (h, q): lgb.Booster(model_file=str(folder / _booster_file(h, q)))
            for h in self.horizons
            for q in QUANTILES
        }


def _booster_file(horizon: int, quantile: float) -> str:
    return f"lightgbm_h{horizon}_p{round(quantile * 100)}.txt"


def _forecast_table(
    panel: Panel,
    origins: pd.DatetimeIndex,
    horizons: Sequence[int],
    steps: Sequence[int],
    quantiles: np.ndarray,
) -> pd.DataFrame:
    """Tidy forecast table from a ``(n_horizons, n_series, n_origins, 3)`` array."""
    n_horizons, n_series, n_origins, _ = quantiles.shape
    ordered = quantiles.transpose(1, 2, 0, 3).reshape(-1, len(QUANTILES))
    origin_values = origins.to_numpy()
    offsets = np.asarray(steps, dtype=np.int64) - 1
    table = pd.DataFrame(
        {
            "intersection": np.repeat(
                panel.keys["intersection"].to_numpy(), n_origins * n_horizons
            ),
            "movement": np.repeat(panel.keys["movement"].to_numpy(), n_origins * n_horizons),
            "origin": np.tile(np.repeat(origin_values, n_horizons), n_series),
            "horizon_min": np.tile(np.asarray(horizons, dtype=np.int64), n_series * n_origins),
            "timestamp": np.tile(
                (origin_values[:, None] + offsets[None, :] * panel.bin.to_timedelta64()).ravel(),
                n_series,
            ),
            "p10": ordered[:, 0],
            "p50": ordered[:, 1],
            "p90": ordered[:, 2],
        }
    )
    return table.astype({"intersection": "str", "movement": "str"})[FORECAST_COLUMNS]


def _existing_model_files(path: Path) -> list[str]:
    """Files of the model already in ``path`` (empty if none); raise if ``path`` holds anything else."""
    if not path.exists():
        return []
    if not path.is_dir():
        raise InputError(
            f"model path {path} exists and is not a folder; expected a new or model folder"
        )
    if not any(path.iterdir()):
        return []
    try:
        metadata = read_metadata(path)
    except InputError as exc:
        raise InputError(
            f"refusing to write a model into {path}: the folder is not empty and holds no model of ours "
            f"({exc}); choose a new or empty folder"
        ) from exc
    files = metadata.get("files", [])
    # Only plain names in the folder are ours to replace; never follow paths out of it.
    return [
        name
        for name in files
        if isinstance(name, str) and Path(name).name == name and name != METADATA_FILE
    ]
