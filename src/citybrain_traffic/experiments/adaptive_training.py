"""The adaptive controller's forecaster: a simulated history of the scenario, and its training.

The history and the model are cached per scenario and demand (:func:`cache_dir`); the model
also per version of the forecasting code, so changed code retrains on the cached history.
Training runs in a ``spawn`` process: LightGBM's OpenMP threads would make this process unsafe
to fork the simulation workers from.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..model_folder import METADATA_FILE
from ..network import Network
from ..scenario import Scenario

#: Days of simulated history collected to train a forecaster when none is given.
HISTORY_DAYS = 14

#: Seed of the history collection (its days use seeds derived from it, never the evaluation's).
HISTORY_SEED = 7_919

#: The modules whose code decides what a saved model means.
_FORECASTING_CODE = (
    "forecast",
    "counts.py",
    "_count_readers.py",
    "_count_checks.py",
    "model_folder.py",
)


@dataclass(frozen=True)
class TrainedForecaster:
    """A forecaster's model folder, the history it was trained on, and a note for the user."""

    model: Path | None
    history: Path | None
    note: str


def cache_dir() -> Path:
    """Return where trained forecasters for scenarios are kept between runs."""
    base = (
        os.environ.get("CTRAFFIC_CACHE")
        or os.environ.get("XDG_CACHE_HOME")
        or str(Path.home() / ".cache")
    )
    return Path(base) / "citybrain-traffic" / "adaptive"


def check_history_interval(interval_min: float, history_days: int) -> None:
    """Refuse an interval the forecaster cannot be trained on, before anything is simulated.

    Raises
    ------
    InputError
        With a history to train on, when the interval is not whole minutes dividing a day.
    """
    if history_days > 0 and (interval_min != int(interval_min) or 1440 % int(interval_min)):
        raise InputError(
            f"--interval {interval_min:g} min: the forecaster trains on counts in bins of the "
            "interval, which must be whole minutes that divide a day (e.g. 5, 10, 15, 20, 30 "
            "or 60); or forecast without a history (--history-days 0)"
        )


def trained_forecaster(
    scenario: Scenario,
    network: Network,
    workdir: Path,
    *,
    interval_s: float,
    history_days: int,
    demand_scale: float,
) -> TrainedForecaster:
    """Return a forecaster trained on ``history_days`` simulated days of the scenario.

    From the cache when it holds one; else the history is simulated (or taken from the cache)
    under the network's programs and the model trained now. ``history_days`` 0: no forecaster.
    """
    if history_days <= 0:
        return TrainedForecaster(
            None,
            None,
            "no forecaster: forecasting from the counts seen so far (mean of the last hour)",
        )
    key = hashlib.sha256()
    for path in [scenario.net_file, *scenario.route_files, *scenario.additional_files]:
        key.update(Path(path).read_bytes())
    key.update(
        f"{scenario.begin}|{scenario.end}|{demand_scale}|{history_days}|{HISTORY_SEED}|"
        f"{interval_s}".encode()
    )
    folder = cache_dir() / f"{scenario.name}-{key.hexdigest()[:16]}"
    history = folder / "history.csv.gz"
    model = folder / f"model-{forecaster_fingerprint()}"
    if (model / METADATA_FILE).is_file():
        return TrainedForecaster(
            model,
            history,
            f"forecaster trained on {history_days} simulated days (cached in {model})",
        )
    collected = ""
    started = time.perf_counter()
    if not history.is_file():
        from .history import collect_history

        counts, _days = collect_history(
            scenario,
            network,
            days=history_days,
            workdir=workdir / "history",
            seed=HISTORY_SEED,
            bin_s=interval_s,
            jobs=os.cpu_count() or 1,
        )
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / "history.partial.csv.gz"
        counts.to_csv(partial, index=False)
        partial.replace(history)
        collected = (
            f" ({len(counts):,} counts, collected now in {time.perf_counter() - started:.0f} s)"
        )
    trained = time.perf_counter()
    tmp = folder / f"{model.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    _train_in_spawned_process(history, tmp, minutes=int(round(interval_s / 60)))
    if model.exists():
        shutil.rmtree(tmp)
    else:
        tmp.replace(model)
    return TrainedForecaster(
        model,
        history,
        f"forecaster trained now on {history_days} simulated days under the network's "
        f"programs{collected}, in {time.perf_counter() - trained:.0f} s; cached in {model}",
    )


def forecaster_fingerprint() -> str:
    """Return a short hash of the forecasting code: another version's model may mean otherwise."""
    package = Path(__file__).resolve().parents[1]
    files: list[Path] = []
    for part in _FORECASTING_CODE:
        path = package / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def train_forecaster(history: Path, out: Path, *, minutes: int) -> None:
    """Train LightGBM on the counts in ``history`` to forecast ``minutes`` ahead; save to ``out``.

    The counts are binned in ``minutes``-long bins, the horizon is one bin.
    """
    import pandas as pd

    from ..counts import read_counts, validate_counts
    from ..forecast.models import LightGBMForecaster

    step = pd.Timedelta(minutes=minutes)
    table = validate_counts(read_counts(history, format="auto"), bin=step)
    LightGBMForecaster(horizons=(minutes,)).fit(table, bin=step).save(out)


def _train_in_spawned_process(history: Path, out: Path, *, minutes: int) -> None:
    """Run :func:`train_forecaster` in a fresh (spawned) process; its error as ours."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        try:
            pool.apply(train_forecaster, (history, out), {"minutes": minutes})
        except Exception as exc:
            raise InputError(
                f"training the adaptive controller's forecaster failed: {exc}"
            ) from None
