"""Coordination: roads between signals, one common cycle, offsets that keep platoons out of red."""

from __future__ import annotations

import random
import time

import pytest

from citybrain_traffic.errors import InputError
from citybrain_traffic.flows import flows_from_routes
from citybrain_traffic.network import read_network
from citybrain_traffic.plans import validate_all
from citybrain_traffic.optimize import (
    coordinate,
    flows_by_signal,
    intersection_demand,
    signal_links,
)

from conftest import ROOT

SCENARIOS = ROOT / "scenarios" / "sumo"


@pytest.fixture(scope="module")
def corridor():
    return read_network(SCENARIOS / "corridor" / "corridor.net.xml")


@pytest.fixture(scope="module")
def grid():
    return read_network(SCENARIOS / "grid" / "grid.net.xml")


def _demands(network, flows):
    return {
        tls: intersection_demand(network.intersections[tls], network.lanes, movement_flows)
        for tls, movement_flows in flows.items()
    }


def test_links_follow_roads_through_unsignalized_junctions(corridor, grid):
    links = {
        (link.upstream, link.downstream): link
        for link in signal_links(corridor, list(corridor.intersections))
    }
    assert sorted(links) == sorted(
        [(a, b) for a, b in zip(["J1", "J2", "J3", "J4"], ["J2", "J3", "J4", "J5"])]
        + [(b, a) for a, b in zip(["J1", "J2", "J3", "J4"], ["J2", "J3", "J4", "J5"])]
    )
    east = links["J1", "J2"]
    # The road runs over the bay split, a junction without a signal.
    assert east.edges == ("J1_J2", "J1_J2_bay")
    assert east.travel_time_s == pytest.approx(east.length_m / 13.89)
    grid_links = signal_links(grid, list(grid.intersections))
    assert len(grid_links) == 2 * (4 * 3 + 3 * 4)
    assert signal_links(corridor, ["J1", "J3"]) == []


@pytest.mark.parametrize("direction", ["east", "west"])
def test_two_signal_offset_is_the_travel_time(corridor, direction):
    """One-way through traffic J1 → J2 (or back), the same timing at both: the downstream green
    must open when the platoon arrives, so the offset difference is the travel time mod C."""
    if direction == "east":
        flows = {"J1": {"W_J1_bay>J1_J2": 900.0}, "J2": {"J1_J2_bay>J2_J3": 900.0}}
    else:
        flows = {"J1": {"J2_J1_bay>J1_W": 900.0}, "J2": {"J3_J2_bay>J2_J1": 900.0}}
    result = coordinate(corridor, _demands(corridor, flows))
    j1, j2 = result.timings["J1"], result.timings["J2"]
    assert j1.greens_s == j2.greens_s
    travel = {(link.upstream, link.downstream): link.travel_time_s for link in result.links}
    cycle = int(result.cycle_s)
    if direction == "east":
        expected = round(travel["J1", "J2"]) % cycle
    else:
        expected = -round(travel["J2", "J1"]) % cycle
    assert (j2.offset_s - j1.offset_s) % cycle == expected
    assert result.status == "OPTIMAL"
    assert result.red_arrival_delay_veh_s_h == pytest.approx(0.0)
    assert result.uncoordinated_red_arrival_delay_veh_s_h > 0


def test_grid_coordination_is_fast_safe_and_helps(grid):
    flows = flows_from_routes(SCENARIOS / "grid" / "grid.rou.xml", grid, begin=3600, end=4500)
    demands = _demands(grid, flows_by_signal(flows))
    started = time.perf_counter()
    result = coordinate(grid, demands)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0  # the benchmark holds the 2 s target; this only catches a blow-up
    assert {t.cycle_s for t in result.timings.values()} == {result.cycle_s}
    assert all(0 <= t.offset_s < result.cycle_s for t in result.timings.values())
    plans = validate_all(result.plans(grid), grid)
    assert len(plans) == 16 and all(p.offset == result.timings[p.tls_id].offset_s for p in plans)
    assert result.red_arrival_delay_veh_s_h < result.uncoordinated_red_arrival_delay_veh_s_h
    # The peak quarter's demand (Y <= 0.6 everywhere) is served: every phase below capacity.
    assert max(d.total_ratio for d in demands.values()) < 0.7
    assert all(t.max_degree_of_saturation < 1.0 for t in result.timings.values())


def test_imposed_cycle_and_signals_without_links(corridor):
    rng = random.Random(2)
    flows = {
        tls: {m: rng.uniform(0, 300) for m in {link.movement for link in i.links}}
        for tls, i in corridor.intersections.items()
    }
    result = coordinate(corridor, _demands(corridor, flows), cycle_s=80)
    assert {t.cycle_s for t in result.timings.values()} == {80}
    lonely = coordinate(corridor, _demands(corridor, {"J1": flows["J1"], "J3": flows["J3"]}))
    assert lonely.status == "no links"
    assert {t.offset_s for t in lonely.timings.values()} == {0.0}


def test_bad_groups_are_input_errors(corridor):
    with pytest.raises(InputError, match="group is empty"):
        coordinate(corridor, {})
    demand = intersection_demand(corridor.intersections["J1"], corridor.lanes, {})
    with pytest.raises(InputError, match=r"\['X'\] are not in network corridor.net.xml"):
        coordinate(corridor, {"J1": demand, "X": demand})
