"""The interface every forecaster shares: fit on counts, predict from origins, save and load."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self, cast

import numpy as np
import pandas as pd

from citybrain_traffic import __version__
from citybrain_traffic.counts import infer_bin, validate_counts
from citybrain_traffic.errors import InputError
from citybrain_traffic.forecast._panel import Panel, bin_minutes, bins_per_day, build_panel
from citybrain_traffic.model_folder import (
    METADATA_FILE,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    read_metadata,
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
PROFILE_FILE = "profile.npz"


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
        """Return the hyperparameters as given to ``__init__`` (JSON-serialisable)."""
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
                f"horizon(s) {unknown} min were not fitted; expected a subset of "
                f"{list(self.horizons)} min"
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
                f"{path} holds an unknown model kind {kind!r}; expected one of "
                f"{sorted(Forecaster._registry)}"
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
        """Return the earliest bin (offset from the origin) read; ``None`` for all history."""
        raise NotImplementedError

    def _forecast(self, panel: Panel, origins: np.ndarray, steps: Sequence[int]) -> np.ndarray:
        """Return P10/P50/P90 (vehicles per bin), shape ``(n_horizons, n_series, n_origins, 3)``."""
        raise NotImplementedError

    def _save_state(self, folder: Path) -> tuple[list[str], dict[str, Any]]:
        """Write state files into ``folder``; return their names and extra metadata."""
        return [], {}

    def _load_state(self, folder: Path, metadata: dict[str, Any]) -> None:
        """Restore the state written by :meth:`_save_state`."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "bin_"):
            raise InputError(
                f"this {type(self).__name__} is not fitted yet; call fit(counts) or load a saved "
                "model"
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
        # pandas-stubs type astype() of a DatetimeIndex as a plain Index.
        return cast(pd.DatetimeIndex, origins.astype("datetime64[ns]").unique().sort_values())

    def _snap(self, timestamp: pd.Timestamp) -> pd.Timestamp:
        """Return the bin boundary of the model's grid at or before ``timestamp``."""
        return self.grid_start_ + ((timestamp - self.grid_start_) // self.bin_) * self.bin_

    @staticmethod
    def _horizon_bins(horizons: Sequence[int], step: pd.Timedelta) -> list[int]:
        minutes = bin_minutes(step)
        if not horizons:
            raise InputError("no forecast horizons given; expected e.g. 15,30,60 (minutes)")
        bad = [h for h in horizons if h <= 0 or h % minutes]
        if bad:
            raise InputError(
                f"horizon(s) {bad} min are not positive whole multiples of the {minutes:g}-min "
                f"bin; expected e.g. {int(minutes)},{int(2 * minutes)},{int(4 * minutes)}"
            )
        return [int(h // minutes) for h in horizons]


def _forecast_table(
    panel: Panel,
    origins: pd.DatetimeIndex,
    horizons: Sequence[int],
    steps: Sequence[int],
    quantiles: np.ndarray,
) -> pd.DataFrame:
    """Return the tidy forecast table of a ``(n_horizons, n_series, n_origins, 3)`` array."""
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
    """Return the files of the model in ``path`` (none if empty); InputError if it holds others."""
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
            f"refusing to write a model into {path}: the folder is not empty and holds no model "
            f"of ours ({exc}); choose a new or empty folder"
        ) from exc
    files = metadata.get("files", [])
    # Only plain names in the folder are ours to replace; never follow paths out of it.
    return [
        name
        for name in files
        if isinstance(name, str) and Path(name).name == name and name != METADATA_FILE
    ]
