"""Pedestrian timing: walk + flashing don't walk per crossing, kept by every plan and by validation.

The junction is netconvert's own: four legs from plain XML, sidewalks, crossings guessed.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from citybrain_traffic.errors import UnsafePlanError
from citybrain_traffic.network import read_network
from citybrain_traffic.optimize import optimize_network, to_plans
from citybrain_traffic.optimize.demand import intersection_demand
from citybrain_traffic.optimize.pedestrians import (
    pedestrian_minimums,
    pedestrian_notes,
    pedestrian_times,
)
from citybrain_traffic.optimize.splits import optimize_splits
from citybrain_traffic.plans import plans_from_network, validate_all
from citybrain_traffic.sim.session import sumo_binary

NODES = """<nodes>
  <node id="C" x="0" y="0" type="traffic_light"/>
  <node id="N" x="0" y="200"/> <node id="S" x="0" y="-200"/>
  <node id="E" x="200" y="0"/> <node id="W" x="-200" y="0"/>
</nodes>"""
#: North-south: two lanes each way; east-west: one. netconvert's lanes are 3.2 m wide.
EDGES = """<edges>
  <edge id="NC" from="N" to="C" numLanes="2" speed="13.89" sidewalkWidth="2"/>
  <edge id="CN" from="C" to="N" numLanes="2" speed="13.89" sidewalkWidth="2"/>
  <edge id="SC" from="S" to="C" numLanes="2" speed="13.89" sidewalkWidth="2"/>
  <edge id="CS" from="C" to="S" numLanes="2" speed="13.89" sidewalkWidth="2"/>
  <edge id="EC" from="E" to="C" numLanes="1" speed="13.89" sidewalkWidth="2"/>
  <edge id="CE" from="C" to="E" numLanes="1" speed="13.89" sidewalkWidth="2"/>
  <edge id="WC" from="W" to="C" numLanes="1" speed="13.89" sidewalkWidth="2"/>
  <edge id="CW" from="C" to="W" numLanes="1" speed="13.89" sidewalkWidth="2"/>
</edges>"""


def _junction(folder: Path, name: str, *options: str) -> Path:
    (folder / "j.nod.xml").write_text(NODES)
    (folder / "j.edg.xml").write_text(EDGES)
    net = folder / f"{name}.net.xml"
    subprocess.run(
        [sumo_binary("netconvert"), "-n", "j.nod.xml", "-e", "j.edg.xml", "--crossings.guess"]
        + [*options, "-o", net.name],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return net


@pytest.fixture(scope="module")
def junction(tmp_path_factory):
    """netconvert's program: 37 s green N-S (crossings of E and W green), a 5 s pedestrian
    clearance, 3 s yellow; then the same for E-W (crossings of N and S green)."""
    return read_network(_junction(tmp_path_factory.mktemp("peds"), "junction"))


@pytest.fixture(scope="module")
def short_greens(tmp_path_factory):
    """Greens of 8 s: netconvert gives the crossings an exclusive 5 s phase of their own."""
    folder = tmp_path_factory.mktemp("peds-short")
    return read_network(_junction(folder, "short", "--tls.green.time", "8"))


def test_walk_and_flashing_dont_walk_by_hand(junction):
    times = pedestrian_times(junction).set_index("crossing")
    # The N-S road is 4 lanes of 3.2 m; the E-W road 2 lanes.
    assert times.loc[":C_c0", "length_m"] == pytest.approx(12.8)
    assert times.loc[":C_c1", "length_m"] == pytest.approx(6.4)
    assert set(times["walk_s"]) == {7.0}
    assert times.loc[":C_c0", "fdw_s"] == pytest.approx(12.8 / 1.07)  # 11.96 s
    assert times.loc[":C_c1", "fdw_s"] == pytest.approx(6.4 / 1.07)  # 5.98 s
    # Crossing the N-S road (c0, c2) is green in phase 3, followed by a 5 s pedestrian clearance.
    assert times.loc[":C_c0", "phase"] == 3
    assert times.loc[":C_c0", "clearance_credit_s"] == 5.0
    assert times.loc[":C_c0", "required_green_s"] == pytest.approx(7 + 11.9626 - 5, abs=1e-3)
    assert times.loc[":C_c1", "phase"] == 0
    assert times.loc[":C_c1", "required_green_s"] == pytest.approx(7 + 5.9813 - 5, abs=1e-3)
    assert not times["capped"].any()
    assert pedestrian_minimums(junction)["C"] == pytest.approx({0: 7.9813, 3: 13.9626}, abs=1e-3)


def _flows(network, north_south: float, east_west: float) -> dict[str, dict[str, float]]:
    intersection = network.intersections["C"]
    flows = {}
    for link in intersection.links:
        heavy = link.in_edge in ("NC", "SC")
        flows[link.movement] = north_south if heavy else east_west
    return {"C": flows}


@pytest.mark.parametrize(("north_south", "east_west"), [(400, 10), (700, 0), (150, 150), (0, 0)])
def test_every_optimized_plan_keeps_the_pedestrian_minimums(junction, north_south, east_west):
    flows = _flows(junction, north_south, east_west)
    plans = validate_all(to_plans(optimize_network(junction, flows), junction), junction)
    minimums = pedestrian_minimums(junction)["C"]
    for index, phase in plans[0].greens:
        assert phase.duration >= minimums.get(index, 0.0) - 1e-9


def test_without_the_pedestrian_minimum_the_light_street_gets_less(junction):
    """The check above can fail: untimed for pedestrians, the optimizer gives E-W 5 s."""
    flows = _flows(junction, 400, 10)["C"]
    demand = intersection_demand(junction.intersections["C"], junction.lanes, flows)
    plain = optimize_splits(junction.intersections["C"], demand)
    assert plain.greens_s[3] < pedestrian_minimums(junction)["C"][3]
    walked = optimize_splits(
        junction.intersections["C"], demand, pedestrian_s=pedestrian_minimums(junction)["C"]
    )
    assert walked.greens_s[3] == 14.0
    assert any("pedestrian minimum greens" in note for note in walked.notes)


def test_validation_refuses_a_cut_and_accepts_the_networks_program(junction):
    own = plans_from_network(junction)
    assert validate_all(own, junction) == own
    plan = own[0]
    phases = list(plan.phases)
    # 10 s is above the 5 s minimum green, below the 14 s the N-S crossings need.
    phases[3] = replace(phases[3], duration=10.0, min_dur=10.0, max_dur=10.0)
    phases[0] = replace(phases[0], duration=64.0, min_dur=64.0, max_dur=64.0)
    cut = replace(plan, phases=tuple(phases))
    with pytest.raises(UnsafePlanError, match=r"phase 3: green 10 s is shorter than its pedes"):
        validate_all([cut], junction)


def test_a_program_shorter_than_its_pedestrian_time_stays_admissible(short_greens):
    """The exclusive pedestrian phase runs 5 s, less than the 19 s the 12.8 m crossings need:
    the minimum is capped at the program's 5 s, and a note says so."""
    times = pedestrian_times(short_greens)
    exclusive = times[times["crossing"] == ":C_c0"].iloc[0]
    assert exclusive["required_green_s"] == pytest.approx(7 + 12.8 / 1.07)
    assert exclusive["minimum_green_s"] == 5.0 and exclusive["capped"]
    own = plans_from_network(short_greens)
    assert validate_all(own, short_greens) == own
    assert any("widened to the program's 5 s" in note for note in pedestrian_notes(short_greens))
    flows = _flows(short_greens, 500, 100)
    timings = optimize_network(short_greens, flows)
    plans = validate_all(to_plans(timings, short_greens), short_greens)
    assert plans[0].phases[int(exclusive["phase"])].duration >= 5.0
