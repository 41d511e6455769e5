"""A movement or a bin the counts lack is a gap, reported as one: never read as zero vehicles."""

from __future__ import annotations

import pandas as pd
import pytest

from citybrain_traffic.counts import find_gaps
from citybrain_traffic.flows import flows_from_counts
from citybrain_traffic.network import read_network
from citybrain_traffic.scenario import load_scenario

from conftest import route_counts, run_cli

DAY = pd.Timestamp("2026-01-05")


@pytest.fixture(scope="module")
def single_counts(tmp_path_factory):
    """Counts of `single` in 15-minute bins over its first hour, from its routed demand, with the
    busiest movement left out and the second busiest missing its 00:15 bin."""
    folder = tmp_path_factory.mktemp("gaps")
    sc = load_scenario("single")
    network = read_network(sc.net_file)
    full, _ = route_counts(sc, network, folder, day=DAY)
    busiest = full.groupby("movement")["count"].sum().sort_values(ascending=False).index
    absent, holed = busiest[0], busiest[1]
    counts = full[
        (full["movement"] != absent)
        & ~((full["movement"] == holed) & (full["timestamp"] == DAY + pd.Timedelta(minutes=15)))
    ]
    path = folder / "counts.csv"
    counts.to_csv(path, index=False)
    return path, counts, full, network, absent, holed


def test_missing_movement_is_reported_as_gap(tmp_path, single_counts):
    """optimize --counts timed a movement the table lacked as one without traffic, silently."""
    path, _, _, _, absent, holed = single_counts
    proc = run_cli(
        "optimize",
        "single",
        "--counts",
        path,
        "--at",
        "00:00",
        "--window",
        "30",
        "--no-check",
        "--out",
        tmp_path / "o",
    )
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert (
        "warning: 1 movement(s) with no count in the window: timed as carrying no traffic: "
        f"C {absent}" in text
    )
    assert (
        "warning: 1 movement(s) with gaps in the window: flow is the mean of the bins counted: "
        f"C {holed}" in text
    )


def test_a_missing_bin_is_not_zero_vehicles(single_counts):
    """A movement's flow is the mean of the bins it has, not their sum spread over all bins."""
    _, counts, full, _, absent, holed = single_counts
    flows = flows_from_counts(counts, at=DAY, minutes=30).set_index("movement")["flow_veh_h"]
    first = full[(full["movement"] == holed) & (full["timestamp"] == DAY)]["count"].item()
    assert flows[holed] == pytest.approx(first * 4)
    assert absent not in flows.index
    complete = full[(full["movement"] != holed) & (full["movement"] != absent)]
    assert flows.drop(holed).to_dict() == pytest.approx(
        flows_from_counts(complete, at=DAY, minutes=30)
        .set_index("movement")["flow_veh_h"]
        .to_dict()
    )


def test_find_gaps_lists_expected_series_the_table_lacks(single_counts):
    _, counts, _, network, absent, holed = single_counts
    expected = pd.DataFrame(
        [("C", link.movement) for link in network.intersections["C"].links],
        columns=["intersection", "movement"],
    )
    gaps = find_gaps(counts, start=DAY, end=DAY + pd.Timedelta(hours=1), series=expected)
    assert gaps[["movement", "missing_bins"]].values.tolist() == sorted([[absent, 4], [holed, 1]])
    assert gaps.loc[gaps["movement"] == holed, "gap_start"].item() == DAY + pd.Timedelta(minutes=15)
    # Without the expected series the table alone cannot know the movement exists.
    assert find_gaps(counts, start=DAY, end=DAY + pd.Timedelta(hours=1))["movement"].tolist() == [
        holed
    ]
