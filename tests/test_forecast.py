"""Forecasters: shapes, quantile order, no look-ahead, save/load, accuracy, evaluation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from citybrain_traffic.counts import read_counts
from citybrain_traffic.errors import InputError
from citybrain_traffic.forecast import (
    Forecaster,
    HistoricalAverage,
    LightGBMForecaster,
    Persistence,
    evaluate,
)
from citybrain_traffic.forecast.features import FeatureSpec, Profile, build_panel, make_features
from citybrain_traffic.forecast.models import FORECAST_COLUMNS

from forecast_helpers import KEYS, SMALL, START, synthetic_counts


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    return synthetic_counts()


@pytest.fixture(scope="module")
def split(counts):
    """Two training weeks, one test week."""
    cut = START + pd.Timedelta(days=14)
    return counts[counts["timestamp"] < cut], cut


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    return {
        "persistence": Persistence().fit(train),
        "historical_average": HistoricalAverage().fit(train),
        "lightgbm": LightGBMForecaster(**SMALL).fit(train),
    }


@pytest.mark.parametrize("name", ["persistence", "historical_average", "lightgbm"])
def test_predict_shapes_and_columns(fitted, counts, split, name):
    model = fitted[name]
    _, cut = split
    origin = cut + pd.Timedelta(hours=7)
    one = model.predict(counts, at=origin)
    assert list(one.columns) == FORECAST_COLUMNS
    assert len(one) == len(KEYS) * 3
    assert one["horizon_min"].tolist() == [15, 30, 60] * len(KEYS)
    assert (one["origin"] == origin).all()
    assert (one["timestamp"] == origin + pd.to_timedelta(one["horizon_min"] - 15, unit="min")).all()
    assert one["p50"].notna().all() and (one["p50"] >= 0).all()
    assert set(zip(one["intersection"], one["movement"])) == set(KEYS)
    if name != "lightgbm":
        assert one["p10"].isna().all() and one["p90"].isna().all()

    origins = pd.date_range(cut, periods=10, freq="15min")
    many = model.predict(counts, at=origins, horizons=[60])
    assert len(many) == len(KEYS) * 10
    assert many["horizon_min"].eq(60).all()
    # Default origin: the end of the last bin of the history.
    history = counts[counts["timestamp"] < origin]
    assert (model.predict(history)["origin"] == origin).all()


def test_quantiles_are_ordered(fitted, counts, split):
    _, cut = split
    forecast = fitted["lightgbm"].predict(
        counts, at=pd.date_range(cut, periods=96 * 3, freq="15min")
    )
    assert forecast[["p10", "p50", "p90"]].notna().all().all()
    assert (forecast["p10"] <= forecast["p50"]).all()
    assert (forecast["p50"] <= forecast["p90"]).all()
    assert (forecast["p90"] > forecast["p10"]).mean() > 0.9
    assert (forecast["p10"] >= 0).all()


@pytest.mark.parametrize("name", ["persistence", "historical_average", "lightgbm"])
@pytest.mark.parametrize("days_in", [3, 17])  # inside the training period and after it
def test_forecast_reads_only_counts_before_the_origin(fitted, counts, name, days_in):
    model = fitted[name]
    origin = START + pd.Timedelta(days=days_in, hours=8)
    after = counts["timestamp"] >= origin
    changed = counts.assign(count=np.where(after, counts["count"] * 5 + 3, counts["count"]))
    # Drop some later bins too (not whole series: a series with no counts before the origin
    # would still be forecast, as NaN).
    changed = changed[~(after & (np.arange(len(counts)) % 3 == 0))]
    base = model.predict(counts, at=origin)
    for other in (changed, counts[~after]):
        again = model.predict(other, at=origin)
        for column in ("p10", "p50", "p90"):
            assert np.array_equal(
                base[column].to_numpy(), again[column].to_numpy(), equal_nan=True
            ), column
    if name == "lightgbm":
        # The check above means something: counts before the origin do move the forecast.
        before = counts["timestamp"].between(
            origin - pd.Timedelta(hours=2), origin, inclusive="left"
        )
        busier = counts.assign(count=np.where(before, counts["count"] * 2, counts["count"]))
        assert not np.allclose(model.predict(busier, at=origin)["p50"], base["p50"])


@pytest.mark.parametrize("days_in", [3, 17])
def test_many_origins_match_one_origin_at_a_time(fitted, counts, days_in):
    model = fitted["lightgbm"]
    origins = pd.date_range(START + pd.Timedelta(days=days_in, hours=7), periods=3, freq="45min")
    together = model.predict(counts, at=origins)
    for origin in origins:
        alone = model.predict(counts[counts["timestamp"] < origin], at=origin)
        same = together[together["origin"] == origin].reset_index(drop=True)
        pd.testing.assert_frame_equal(same, alone)


@pytest.mark.parametrize("name", ["persistence", "historical_average", "lightgbm"])
def test_save_load_gives_identical_forecasts(fitted, counts, split, tmp_path, name):
    model = fitted[name]
    _, cut = split
    origins = pd.date_range(cut, periods=40, freq="15min")
    folder = tmp_path / "model"
    model.save(folder)
    loaded = Forecaster.load(folder)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    before, after = model.predict(counts, at=origins), loaded.predict(counts, at=origins)
    for column in ("p10", "p50", "p90"):
        assert np.array_equal(
            before[column].to_numpy(), after[column].to_numpy(), equal_nan=True
        ), column
    assert before.drop(columns=["p10", "p50", "p90"]).equals(
        after.drop(columns=["p10", "p50", "p90"])
    )
    # Saving again over its own model folder is allowed; a subclass refuses another kind.
    model.save(folder)
    other = HistoricalAverage if name != "historical_average" else Persistence
    with pytest.raises(InputError, match="model, not a"):
        other.load(folder)


def test_load_and_save_refuse_foreign_folders(fitted, tmp_path):
    with pytest.raises(InputError, match="not a forecast model folder"):
        Forecaster.load(tmp_path)
    (tmp_path / "model.json").write_text('{"hello": 1}\n')
    with pytest.raises(InputError, match="not a citybrain-traffic forecast model"):
        Forecaster.load(tmp_path)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me\n")
    with pytest.raises(InputError, match="refusing to write a model"):
        fitted["lightgbm"].save(foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert (foreign / "notes.txt").read_text() == "keep me\n"
    with pytest.raises(InputError, match="not fitted"):
        LightGBMForecaster().save(tmp_path / "new")


def test_lightgbm_beats_baselines_when_days_differ(counts):
    """A day-level demand factor persists all day: recent counts reveal it, the profile cannot."""
    models = {
        "persistence": Persistence(),
        "historical_average": HistoricalAverage(),
        "lightgbm": LightGBMForecaster(**SMALL),
    }
    result = evaluate(counts, test_days=7, models=models)
    mae = result.metrics.set_index(["model", "horizon_min"])["mae"]
    for horizon in (15, 60):
        assert mae["lightgbm", horizon] <= 0.85 * mae["historical_average", horizon], mae
        assert mae["lightgbm", horizon] <= 0.85 * mae["persistence", horizon], mae
    coverage = result.metrics.set_index(["model", "horizon_min"])["coverage_p10_p90"]
    assert 0.65 <= coverage["lightgbm", 15] <= 0.92, coverage
    assert result.metrics["n"].nunique() <= 3  # every model scored on the same targets per horizon


def test_horizon_order_does_not_change_the_model(counts):
    """Each horizon's model learns from the rows of the horizons up to it, whatever order they are
    given in; each is calibrated on its own held-out rows."""
    train = counts[counts["timestamp"] < START + pd.Timedelta(days=10)]
    at = START + pd.Timedelta(days=10, hours=8)
    forward = LightGBMForecaster(horizons=(15, 30, 60), **SMALL).fit(train)
    backward = LightGBMForecaster(horizons=(60, 15, 30), **SMALL).fit(train)
    columns = ["intersection", "movement", "horizon_min", "p10", "p50", "p90"]
    tables = [model.predict(train, at=at) for model in (forward, backward)]
    ordered = [table.sort_values(columns[:3]).reset_index(drop=True)[columns] for table in tables]
    pd.testing.assert_frame_equal(*ordered)
    tail_bins = round(10 * 96 * forward.calibration_fraction)
    for horizon in forward.horizons:
        assert 0 < forward.calibration_[horizon]["rows"] <= len(KEYS) * tail_bins


def test_pooled_lag_deviations_are_group_means(counts):
    """The last bins' deviations pooled over each intersection and the network are the means of
    the series' own deviations, read before the origin only."""
    step = pd.Timedelta(minutes=15)
    train = counts[counts["timestamp"] < START + pd.Timedelta(days=14)]
    panel = build_panel(counts, bin=step, start=START, end=counts["timestamp"].max() + step)
    profile = Profile.fit(
        build_panel(train, bin=step, start=START, end=START + pd.Timedelta(days=14))
    )
    spec = FeatureSpec(lags=4, window_bins=(4, 12), per_day=96)
    categories = {
        column: sorted(counts[column].unique()) for column in ("intersection", "movement")
    }
    origins = np.arange(14 * 96, 14 * 96 + 40)
    (features,) = make_features(
        panel, profile, spec=spec, origins=origins, horizon_bins=[1], categories=categories
    )
    assert features.matrix.shape[1] == len(spec.names)
    column = {
        name: features.matrix[:, i].reshape(len(KEYS), len(origins))
        for i, name in enumerate(spec.names)
    }
    intersections = np.array([key[0] for key in KEYS])
    for lag in (1, 2):
        own = column[f"lag_dev_{lag}"]
        network = column[f"network_lag_dev_{lag}"]
        np.testing.assert_allclose(
            network, np.broadcast_to(own.mean(axis=0), own.shape), rtol=1e-5, atol=1e-6
        )
        for name in set(intersections):
            rows = intersections == name
            pooled = column[f"intersection_lag_dev_{lag}"][rows]
            np.testing.assert_allclose(
                pooled, np.broadcast_to(own[rows].mean(axis=0), pooled.shape), rtol=1e-5, atol=1e-6
            )
    # Changing the counts at and after the origins leaves the features of the first origin alone.
    later = panel.values.copy()
    later[:, origins[0] :] += 100.0
    (changed,) = make_features(
        replace(panel, values=later),
        profile,
        spec=spec,
        origins=origins[:1],
        horizon_bins=[1],
        categories=categories,
    )
    first = features.matrix.reshape(len(KEYS), len(origins), -1)[:, 0]
    names = [i for i, name in enumerate(spec.names) if "lag_dev" in name]
    np.testing.assert_array_equal(changed.matrix[:, names], first[:, names])


def test_test_period_is_whole_bins(counts):
    """A test period that is not a whole number of bins put the origins off the grid (a confusing
    "not a bin boundary"), one shorter than a bin left none ("origin ... is empty")."""
    result = evaluate(counts, test_days=0.3, models={"persistence": Persistence()})
    assert result.test_end - result.test_start == pd.Timedelta(minutes=15) * 28
    with pytest.raises(InputError, match="test_days=0.01 is shorter than one 15-min bin"):
        evaluate(counts, test_days=0.01, models={"persistence": Persistence()})


def test_bentonville_evaluates(shared):
    counts = read_counts(shared / "data" / "counts" / "bentonville_tmc_15min_2025-11-16_22.csv")
    result = evaluate(counts, test_days=2)
    metrics = result.metrics
    assert len(metrics) == 9
    assert metrics[["mae", "rmse", "wape"]].notna().all().all()
    assert (metrics["n"] > 0).all()
    assert metrics.loc[metrics["model"] == "lightgbm", "coverage_p10_p90"].between(0.0, 1.0).all()
    assert result.test_start == pd.Timestamp("2025-11-21")
