"""Command-line group ``forecast``: evaluate forecasters, train a model, and forecast from it."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from ..counts import CountsFormat, find_gaps, infer_bin, read_counts, validate_counts
from ..errors import InputError
from ..forecast.evaluate import evaluate as evaluate_models
from ..forecast.evaluate import plot_forecasts
from ..forecast.features import bin_minutes
from ..forecast.models import Forecaster, HistoricalAverage, LightGBMForecaster, Persistence
from ._common import StagedOutDir, fresh_out_file

_MODELS: dict[str, type[Forecaster]] = {
    "lightgbm": LightGBMForecaster,
    "historical_average": HistoricalAverage,
    "persistence": Persistence,
}
_PREDICT_COLUMNS = ["intersection", "movement", "horizon_min", "p10", "p50", "p90"]


def _parse_horizons(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        horizons = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a comma-separated list of whole minutes, e.g. 15,30,60"
        ) from None
    if not horizons or min(horizons) <= 0:
        raise click.BadParameter(f"{value!r}: expected positive whole minutes, e.g. 15,30,60")
    return horizons


_counts_argument = click.argument("counts", type=click.Path(path_type=Path, dir_okay=False))
_format_option = click.option(
    "--format",
    "format_",
    type=click.Choice(["auto", "long", "utdf"]),
    default="auto",
    show_default=True,
    help="Layout of COUNTS: 'long' = timestamp,intersection,movement,count "
    "(.csv, .csv.gz, .parquet); 'utdf' = UTDF turning-movement counts "
    "(DATE,TIME,INTID,NBL,...); 'auto' detects it.",
)
_horizons_option = click.option(
    "--horizons",
    default="15,30,60",
    show_default=True,
    callback=_parse_horizons,
    help="Forecast horizons in minutes, comma-separated; each a multiple of the bin length.",
)


@click.group(name="forecast")
def forecast() -> None:
    """Forecast per-movement counts (vehicles per bin) 15, 30 and 60 minutes ahead.

    COUNTS files hold one count per intersection, movement and time bin (e.g. 15 min):
    a long table timestamp,intersection,movement,count or a UTDF turning-movement-count CSV.
    """


_bin_option = click.option(
    "--bin",
    "bin_min",
    type=click.IntRange(min=1),
    default=None,
    help="Bin length in minutes (default: the smallest spacing of a series' timestamps). "
    "Needed when COUNTS hold fewer than two bins a day, e.g. one 60-min bin from each day.",
)


def _read(
    counts: Path, format_: CountsFormat, bin_min: int | None
) -> tuple[pd.DataFrame, pd.Timedelta | None]:
    """Read COUNTS, print a line about them; return the table and the bin given (None: inferred).

    Counts off the given bin's grid fail before that line (which would describe them wrongly).
    """
    table = read_counts(counts, format=format_)
    step = None if bin_min is None else pd.Timedelta(minutes=bin_min)
    if step is not None:
        table = validate_counts(table, bin=step)
    click.echo(_describe(table, step))
    return table, step


@forecast.command(name="evaluate")
@_counts_argument
@_horizons_option
@click.option(
    "--test-days",
    type=click.FloatRange(min=0, min_open=True),
    default=7,
    show_default=True,
    help="Length of the test period in days: the last days of COUNTS; the models train on the "
    "rest.",
)
@_format_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="New or empty folder to write metrics.csv and forecast_vs_actual.png into "
    "(nothing is overwritten).",
)
@_bin_option
def evaluate_command(
    counts: Path,
    horizons: tuple[int, ...],
    test_days: float,
    format_: CountsFormat,
    out: Path | None,
    bin_min: int | None,
) -> None:
    """Compare persistence, historical average and LightGBM on the last days of COUNTS.

    Every bin of the test period is a forecast origin, and each forecast uses only the counts
    before it. MAE and RMSE are in vehicles per bin; WAPE is total absolute error over total
    count; coverage is the share of counts inside the P10-P90 interval (LightGBM only).
    """
    staged = StagedOutDir(out) if out is not None else None
    table, step = _read(counts, format_, bin_min)
    result = evaluate_models(table, horizons=horizons, test_days=test_days, bin=step)
    click.echo(
        f"test period {result.test_start} to {result.test_end} "
        f"({test_days:g} days); metrics of the P50 forecast, vehicles per bin:"
    )
    click.echo(result.metrics.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-"))
    if staged is not None:
        with staged as folder:
            result.metrics.to_csv(folder / "metrics.csv", index=False)
            plot_forecasts(result, folder / "forecast_vs_actual.png")
        click.echo(
            f"wrote {staged.final / 'metrics.csv'} and {staged.final / 'forecast_vs_actual.png'}"
        )


@forecast.command(name="train")
@_counts_argument
@click.option(
    "--out",
    "model_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Model folder to write. It must be new, empty, or a model folder written by this command.",
)
@_horizons_option
@click.option(
    "--model",
    "kind",
    type=click.Choice(sorted(_MODELS)),
    default="lightgbm",
    show_default=True,
    help="Forecaster to train.",
)
@_format_option
@_bin_option
def train_command(
    counts: Path,
    model_dir: Path,
    horizons: tuple[int, ...],
    kind: str,
    format_: CountsFormat,
    bin_min: int | None,
) -> None:
    """Train a forecaster on all of COUNTS and save it to a model folder."""
    table, step = _read(counts, format_, bin_min)
    model = _MODELS[kind](horizons=horizons).fit(table, bin=step)
    model.save(model_dir)
    click.echo(f"saved {kind} model (horizons {', '.join(map(str, horizons))} min) to {model_dir}")


@forecast.command(name="predict")
@click.argument("model_dir", type=click.Path(path_type=Path, file_okay=False))
@_counts_argument
@click.option(
    "--at",
    required=True,
    help="Forecast origin, a bin boundary such as '2025-11-22 08:00'; only counts before it are "
    "used.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="CSV file to write the forecasts to instead of printing them (must not exist).",
)
@_format_option
def predict_command(
    model_dir: Path, counts: Path, at: str, out: Path | None, format_: CountsFormat
) -> None:
    """Forecast each series in COUNTS from the origin --at with a saved model.

    Output columns: intersection, movement, horizon_min (minutes after --at at which the
    forecast bin ends), p10, p50, p90 (vehicles per bin).
    """
    target = fresh_out_file(out) if out is not None else None
    model = Forecaster.load(model_dir)
    table = read_counts(counts, format=format_)
    try:
        origin = pd.Timestamp(at)
    except ValueError as exc:
        raise InputError(
            f"--at {at!r} is not a timestamp; expected e.g. '2025-11-22 08:00'"
        ) from exc
    forecasts = model.predict(table, at=origin)[_PREDICT_COLUMNS]
    if target is None:
        click.echo(forecasts.to_string(index=False, float_format=lambda x: f"{x:.2f}", na_rep="-"))
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    forecasts.to_csv(target, index=False)
    click.echo(f"wrote {len(forecasts)} forecasts from {origin} to {target}")


def _describe(table: pd.DataFrame, step: pd.Timedelta | None = None) -> str:
    """Describe a count table in one line: size, bin length, period and gaps.

    ``step`` is the bin length, inferred when not given.
    """
    if table.empty:
        raise InputError("the count file has no counts")
    step = infer_bin(table) if step is None else step
    gaps = find_gaps(table, bin=step)
    n_series = table.groupby(["intersection", "movement"]).ngroups
    gap_text = (
        f"{int(gaps['missing_bins'].sum())} missing bins in {len(gaps)} gaps over "
        f"{gaps.groupby(['intersection', 'movement']).ngroups} series (never scored, never filled)"
        if len(gaps)
        else "no gaps"
    )
    return (
        f"{len(table)} counts, {n_series} series, {bin_minutes(step):g}-min bins, "
        f"{table['timestamp'].min()} to {table['timestamp'].max() + step}; {gap_text}"
    )
