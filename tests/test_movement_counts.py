"""Stop-line movement counts from the simulation, and simulated multi-day histories."""

from __future__ import annotations

import pandas as pd

from citybrain_traffic.experiments.history import collect_history, plan_days
from citybrain_traffic.network import read_network
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.experiments.simulate import simulate_scenario


def test_counts_match_the_vehicles_that_crossed(tmp_path):
    sc = load_scenario("single", end=1800)
    network = read_network(sc.net_file)
    outcome = simulate_scenario(
        sc,
        network,
        controllers=["fixed"],
        seeds=[1],
        workdir=tmp_path,
        write_files=False,
        count_bin_s=900,
    )
    result = outcome.results[0]
    counts = result.counts
    assert list(counts.columns) == ["timestamp", "intersection", "movement", "count"]
    movements = {link.movement for link in network.intersections["C"].links}
    assert set(counts["movement"]) == movements
    assert sorted(counts["timestamp"].unique()) == [
        pd.Timestamp("2026-01-05 00:00"),
        pd.Timestamp("2026-01-05 00:15"),
    ]
    # Every trip of `single` crosses its one signal: arrived vehicles crossed, none crossed twice.
    total = counts["count"].sum()
    assert result.kpis["vehicles_arrived"] <= total <= result.kpis["vehicles_inserted"]
    assert (counts["count"] >= 0).all()


def test_history_is_reproducible_and_days_differ(tmp_path):
    sc = load_scenario("single", end=900)
    network = read_network(sc.net_file)
    counts, days = collect_history(sc, network, days=2, workdir=tmp_path / "a", seed=7, jobs=2)
    again, _ = collect_history(sc, network, days=1, workdir=tmp_path / "b", seed=7, jobs=1)
    first_day = counts[counts["timestamp"] < pd.Timestamp("2026-01-06")].reset_index(drop=True)
    pd.testing.assert_frame_equal(first_day, again)
    assert list(days["date"].dt.day) == [5, 6]
    assert days["seed"].nunique() == 2
    per_day = counts.groupby(counts["timestamp"].dt.date)["count"].sum()
    assert per_day.iloc[0] != per_day.iloc[1]


def test_day_plan_has_weekends_and_incidents():
    sc = load_scenario("corridor")
    plan = plan_days(
        sc, read_network(sc.net_file), days=56, seed=3, start=pd.Timestamp("2026-01-05")
    )
    weekday = [d.demand_scale for d in plan if d.date.day_of_week < 5]
    sunday = [d.demand_scale for d in plan if d.date.day_of_week == 6]
    assert sum(sunday) / len(sunday) < 0.8 * sum(weekday) / len(weekday)
    incidents = [d for d in plan if d.incident_edge]
    assert 0 < len(incidents) < 20
    assert all(sc.begin <= d.incident_begin_s < d.incident_end_s for d in incidents)


def test_saturation_flow_from_queue_discharge(tmp_path):
    from citybrain_traffic.experiments.calibrate import calibrate, network_saturation_flow

    sc = load_scenario("single", end=3600)
    network = read_network(sc.net_file)
    table = calibrate(sc, network, workdir=tmp_path)
    assert len(table) >= 4
    well_sampled = table[table["headways"] >= 20]
    assert len(well_sampled) >= 2
    # SUMO's default car-following model discharges queues at roughly 1,600-2,200 veh/h/lane.
    assert well_sampled["saturation_veh_h_lane"].between(1400, 2400).all()
    assert 1400 < network_saturation_flow(table) < 2400
