"""The global LightGBM forecaster: quantile models per horizon, calibrated split-conformally."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from citybrain_traffic.counts import SERIES_KEYS
from citybrain_traffic.errors import InputError
from citybrain_traffic.forecast._forecaster import (
    DEFAULT_HORIZONS,
    PROFILE_FILE,
    QUANTILES,
    Forecaster,
)
from citybrain_traffic.forecast._panel import Panel, bin_minutes, bins_per_day
from citybrain_traffic.forecast._profile import Profile
from citybrain_traffic.forecast.features import FeatureSpec, make_features


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
        """Return the hyperparameters as given to ``__init__`` (JSON-serialisable)."""
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
        """Return the starts of the bins before origin ``at`` that :meth:`predict` reads.

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
        """Return the P10/P90 shifts (series-level units) for 10 % of held-out targets beyond each.

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
                    np.asarray(
                        self.boosters_[(horizon, q)].predict(
                            feature.matrix, num_threads=self.n_jobs
                        )
                    )
                    + shifts.get(f"p{round(q * 100)}", 0.0)
                    for q in QUANTILES
                ]
            )
            # Quantile models are fitted separately and may cross; sorting restores
            # P10 <= P50 <= P90.
            counts = feature.base[:, None] + feature.scale[:, None] * np.sort(normalised, axis=1)
            out[i] = np.clip(counts, 0.0, None).reshape(
                len(panel.keys), len(origins), len(QUANTILES)
            )
        return out

    def _save_state(self, folder: Path) -> tuple[list[str], dict[str, Any]]:
        self.profile_.save(folder / PROFILE_FILE)
        files = [PROFILE_FILE]
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
        self.profile_ = Profile.load(folder / PROFILE_FILE)
        self.spec_ = FeatureSpec(
            lags=self.lags,
            window_bins=tuple(metadata["window_bins"]),
            per_day=bins_per_day(self.bin_),
        )
        if self.spec_.names != metadata["feature_names"]:
            raise InputError(
                f"{folder} was saved with features {metadata['feature_names']}, but this version "
                f"builds {self.spec_.names}; retrain the model"
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
