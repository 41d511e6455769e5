"""`ctraffic forecast`: train then predict, one bin a day, evaluate and plot, no overwrites."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citybrain_traffic.counts import read_counts
from citybrain_traffic.forecast import Forecaster

from conftest import run_cli
from forecast_helpers import KEYS, synthetic_counts


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    """Ten days of two series as a long CSV, small enough for CLI runs with default models."""
    path = tmp_path_factory.mktemp("cli") / "counts.csv"
    synthetic_counts(days=10, keys=KEYS[:2], seed=3).to_csv(path, index=False)
    return path


def test_cli_train_then_predict(small_file, tmp_path):
    model_dir = tmp_path / "model"
    trained = run_cli("forecast", "train", small_file, "--out", model_dir)
    assert trained.returncode == 0, trained.stderr
    assert (model_dir / "model.json").is_file()
    out = tmp_path / "forecast.csv"
    at = "2025-03-12 08:00"
    predicted = run_cli("forecast", "predict", model_dir, small_file, "--at", at, "--out", out)
    assert predicted.returncode == 0, predicted.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["intersection", "movement", "horizon_min", "p10", "p50", "p90"]
    assert len(table) == 2 * 3
    assert (table["p10"] <= table["p50"]).all() and (table["p50"] <= table["p90"]).all()
    # The saved model gives the same numbers in this process.
    here = Forecaster.load(model_dir).predict(read_counts(small_file), at=at)
    np.testing.assert_allclose(table["p50"], here["p50"], rtol=1e-6)


def test_cli_train_one_bin_a_day_needs_the_bin(tmp_path):
    """One 60-min bin a day (a 1-hour scenario's history): the spacing is a day, not the bin."""
    hourly = synthetic_counts(days=10, keys=KEYS[:2], seed=5)
    hourly = hourly.assign(timestamp=hourly["timestamp"].dt.floor("60min"))
    hourly = hourly.groupby(["timestamp", "intersection", "movement"], as_index=False)[
        "count"
    ].sum()
    path = tmp_path / "one_bin_a_day.csv"
    hourly[hourly["timestamp"].dt.hour == 8].to_csv(path, index=False)

    inferred = run_cli(
        "forecast", "train", path, "--out", tmp_path / "inferred", "--horizons", "60"
    )
    assert inferred.returncode != 0
    assert "1440-min bin" in inferred.stderr and "Traceback" not in inferred.stderr

    off_grid = run_cli(
        "forecast", "train", path, "--out", tmp_path / "off", "--horizons", "60", "--bin", "50"
    )
    assert (
        off_grid.returncode == 2
        and "off the regular 50-min grid" in off_grid.stderr
        and not off_grid.stdout
    )

    trained = run_cli(
        "forecast", "train", path, "--out", tmp_path / "model", "--horizons", "60", "--bin", "60"
    )
    assert trained.returncode == 0, trained.stderr
    model = Forecaster.load(tmp_path / "model")
    assert model.bin_ == pd.Timedelta(minutes=60)
    predicted = model.predict(read_counts(path), at="2025-03-13 08:00", horizons=[60])
    assert len(predicted) == 2 and predicted["p50"].notna().all() and (predicted["p50"] >= 0).all()

    evaluated = run_cli(
        "forecast",
        "evaluate",
        path,
        "--horizons",
        "60",
        "--bin",
        "60",
        "--test-days",
        "3",
        "--out",
        tmp_path / "eval",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = pd.read_csv(tmp_path / "eval" / "metrics.csv")
    assert set(metrics["model"]) == {"persistence", "historical_average", "lightgbm"}
    assert (metrics["n"] == 3 * 2).all()  # three test days of one bin each, two series
    assert metrics["mae"].notna().all()


def test_cli_evaluate_writes_metrics_and_plot(small_file, tmp_path):
    out = tmp_path / "eval"
    proc = run_cli("forecast", "evaluate", small_file, "--test-days", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == [
        "model",
        "horizon_min",
        "mae",
        "rmse",
        "wape",
        "n",
        "coverage_p10_p90",
    ]
    assert sorted(set(metrics["model"])) == ["historical_average", "lightgbm", "persistence"]
    assert sorted(set(metrics["horizon_min"])) == [15, 30, 60]
    assert (metrics["n"] > 0).all() and metrics["mae"].notna().all()
    png = out / "forecast_vs_actual.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_forecast_evaluate_never_overwrites(small_file, tmp_path):
    """evaluate --out wrote over the files of a folder in use, predict --out over a file; both
    now refuse before any work, and the user's files are as they were."""
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.csv").write_text("mine\n")
    proc = run_cli("forecast", "evaluate", small_file, "--test-days", "2", "--out", out)
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert not proc.stdout  # refused before reading the counts
    assert (
        sorted(p.name for p in out.iterdir()) == ["metrics.csv"]
        and (out / "metrics.csv").read_text() == "mine\n"
    )
    forecast = tmp_path / "forecast.csv"
    forecast.write_text("mine\n")
    proc = run_cli(
        "forecast",
        "predict",
        tmp_path / "no-model",
        small_file,
        "--at",
        "2025-03-12 08:00",
        "--out",
        forecast,
    )
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert forecast.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval", "forecast.csv"]
