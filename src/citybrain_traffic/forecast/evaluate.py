"""Score forecasters on the last days of a count table and plot forecasts against actual counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from citybrain_traffic.counts import SERIES_KEYS, infer_bin, validate_counts
from citybrain_traffic.errors import InputError
from citybrain_traffic.forecast.features import bin_minutes
from citybrain_traffic.forecast.models import (
    DEFAULT_HORIZONS,
    FORECAST_COLUMNS,
    Forecaster,
    HistoricalAverage,
    LightGBMForecaster,
    Persistence,
)

METRIC_COLUMNS = ["model", "horizon_min", "mae", "rmse", "wape", "n", "coverage_p10_p90"]


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes
    ----------
    metrics
        One row per model and horizon: ``mae`` and ``rmse`` of the P50 forecast (vehicles per
        bin), ``wape`` (sum of absolute errors / sum of actual counts), ``n`` scored forecasts,
        and ``coverage_p10_p90`` (share of actual counts within [P10, P90]; NaN for point
        forecasters).
    forecasts
        Every scored forecast: ``model`` plus the forecast columns of
        :meth:`Forecaster.predict` plus ``actual`` (vehicles per bin).
    test_start, test_end
        The test period ``[test_start, test_end)``.
    """

    metrics: pd.DataFrame
    forecasts: pd.DataFrame
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def default_models(*, horizons: Sequence[int] = DEFAULT_HORIZONS) -> dict[str, Forecaster]:
    """Return the three forecasters :func:`evaluate` compares, unfitted, keyed by report name."""
    return {
        "persistence": Persistence(horizons=horizons),
        "historical_average": HistoricalAverage(horizons=horizons),
        "lightgbm": LightGBMForecaster(horizons=horizons),
    }


def evaluate(
    counts: pd.DataFrame,
    *,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    test_days: float = 7,
    models: Mapping[str, Forecaster] | None = None,
    bin: str | pd.Timedelta | None = None,
) -> Evaluation:
    """Fit forecasters on all but the last days of ``counts`` and score them on those days.

    Every bin boundary of the test period is a forecast origin; each forecast uses only the
    counts before its origin. A forecast is scored only when its target bin has a count and
    every model produced a forecast for it, so all models are compared on the same targets.

    Parameters
    ----------
    counts
        Tidy count table (vehicles per bin).
    horizons
        Forecast horizons in minutes.
    test_days
        Length of the test period in days, counted back from the end of the last bin (in whole
        bins: the last bins that fit in it).
    models
        Unfitted forecasters by name; default :func:`default_models`.
    bin
        Bin length; ``None`` infers it from the timestamps (see ``Forecaster.fit``).

    Returns
    -------
    Evaluation
        Metrics, the scored forecasts and the test period.

    Raises
    ------
    InputError
        If the split leaves no training or no test counts.
    """
    counts = validate_counts(counts, bin=bin)
    if not test_days > 0:
        raise InputError(f"test_days={test_days!r} must be a positive number of days")
    step = infer_bin(counts) if bin is None else pd.Timedelta(bin)
    # Whole bins: every origin must be a bin boundary (0.3 days of 15-min bins is 28 of them).
    test_bins = pd.Timedelta(days=test_days) // step
    if test_bins < 1:
        raise InputError(
            f"test_days={test_days:g} is shorter than one {bin_minutes(step):g}-min bin; expected "
            f"at least {step / pd.Timedelta(days=1):.4g} days"
        )
    test_end = counts["timestamp"].max() + step
    test_start = test_end - test_bins * step
    train = counts[counts["timestamp"] < test_start]
    if train.empty:
        span = (test_end - counts["timestamp"].min()) / pd.Timedelta(days=1)
        raise InputError(
            f"test_days={test_days} leaves no training counts: the table covers only "
            f"{span:.2f} days; expected fewer test days than that"
        )
    models = default_models(horizons=horizons) if models is None else models
    origins = pd.date_range(test_start, test_end - step, freq=step)
    forecasts = []
    for name, model in models.items():
        model.fit(train, bin=step)
        forecasts.append(model.predict(counts, at=origins, horizons=horizons).assign(model=name))
    actual = counts.rename(columns={"count": "actual"})
    scored = pd.concat(forecasts, ignore_index=True).merge(
        actual, on=[*SERIES_KEYS, "timestamp"], how="inner"
    )
    target = [*SERIES_KEYS, "origin", "horizon_min"]
    complete = scored.groupby(target)["p50"].transform("count") == len(models)
    scored = scored[complete].reset_index(drop=True)
    scored = scored[["model", *FORECAST_COLUMNS, "actual"]]
    metrics = scored.groupby(["model", "horizon_min"], sort=False)[
        ["p10", "p50", "p90", "actual"]
    ].apply(_scores)
    metrics = metrics.reset_index()
    # Rows in the order the models and horizons were given, not in the order targets were scored.
    order = np.lexsort(
        (metrics["horizon_min"].map(list(horizons).index), metrics["model"].map(list(models).index))
    )
    return Evaluation(
        metrics=metrics.iloc[order].reset_index(drop=True).astype({"n": "int64"})[METRIC_COLUMNS],
        forecasts=scored,
        test_start=test_start,
        test_end=test_end,
    )


def _scores(group: pd.DataFrame) -> pd.Series:
    error = group["p50"] - group["actual"]
    total = group["actual"].sum()
    has_interval = group["p10"].notna().all() and group["p90"].notna().all()
    inside = (group["p10"] <= group["actual"]) & (group["actual"] <= group["p90"])
    return pd.Series(
        {
            "mae": error.abs().mean(),
            "rmse": float(np.sqrt((error**2).mean())),
            "wape": error.abs().sum() / total if total > 0 else np.nan,
            "n": len(group),
            "coverage_p10_p90": inside.mean() if has_interval else np.nan,
        }
    )


def plot_forecasts(
    evaluation: Evaluation,
    path: str | Path,
    *,
    horizon_min: int | None = None,
    n_series: int = 4,
) -> Path:
    """Write a PNG of forecast against actual counts over the test period for a few series.

    Series are picked to span the range of traffic volumes (busiest, quietest and evenly in
    between), among those with the most scored forecasts.

    Parameters
    ----------
    evaluation
        Result of :func:`evaluate`.
    path
        PNG file to write.
    horizon_min
        Horizon to show, in minutes; default the shortest one evaluated.
    n_series
        Number of series (one panel each).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    forecasts = evaluation.forecasts
    if forecasts.empty:
        raise InputError(
            "no scored forecasts to plot; the test period has no counts that every model forecast"
        )
    horizon = int(forecasts["horizon_min"].min()) if horizon_min is None else int(horizon_min)
    shown = forecasts[forecasts["horizon_min"] == horizon]
    if shown.empty:
        raise InputError(
            f"no forecasts at horizon {horizon} min; expected one of "
            f"{sorted(forecasts['horizon_min'].unique())}"
        )
    series = _pick_series(shown, n_series)
    from matplotlib.figure import Figure  # only when plotting: it costs ~0.6 s to import

    figure = Figure(figsize=(14, 2.6 * len(series)), layout="constrained")
    axes = figure.subplots(len(series), 1, squeeze=False)[:, 0]
    for ax, (intersection, movement) in zip(axes, series):
        one = shown[(shown["intersection"] == intersection) & (shown["movement"] == movement)]
        actual = one.drop_duplicates("timestamp").sort_values("timestamp")
        ax.plot(actual["timestamp"], actual["actual"], color="black", linewidth=1.2, label="actual")
        for model, rows in one.groupby("model", sort=False):
            rows = rows.sort_values("timestamp")
            line = ax.plot(rows["timestamp"], rows["p50"], linewidth=0.9, label=f"{model} P50")[0]
            if rows["p10"].notna().all():
                ax.fill_between(
                    rows["timestamp"],
                    rows["p10"],
                    rows["p90"],
                    color=line.get_color(),
                    alpha=0.2,
                    label=f"{model} P10–P90",
                )
        ax.set_title(f"intersection {intersection}, {movement}: {horizon}-min-ahead forecast")
        ax.set_ylabel("vehicles per bin")
    axes[0].legend(loc="upper left", ncols=3, fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def _pick_series(forecasts: pd.DataFrame, n_series: int) -> list[tuple[str, str]]:
    stats = forecasts.groupby(SERIES_KEYS)["actual"].agg(["size", "mean"])
    best_covered = stats[stats["size"] == stats["size"].max()].sort_values("mean", ascending=False)
    picks = np.unique(
        np.linspace(0, len(best_covered) - 1, min(n_series, len(best_covered))).round().astype(int)
    )
    return [tuple(key) for key in best_covered.index[picks]]
