"""Baseline forecasters: the last observed bin (persistence) and the historical average."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from citybrain_traffic.forecast._forecaster import PROFILE_FILE, QUANTILES, Forecaster
from citybrain_traffic.forecast._panel import Panel
from citybrain_traffic.forecast._profile import Profile


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
        self.profile_.save(folder / PROFILE_FILE)
        return [PROFILE_FILE], {}

    def _load_state(self, folder: Path, metadata: dict[str, Any]) -> None:
        self.profile_ = Profile.load(folder / PROFILE_FILE)
