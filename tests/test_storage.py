"""Queue storage: the HCM 95th-percentile back of queue against the lanes up to the next signal.

Two signals 90 m apart, from netconvert: the approach between them stores one 78.8 m lane, the
cross street at the downstream signal a 396 m one.
"""

from __future__ import annotations

import subprocess

import pytest

from citybrain_traffic.network import read_network
from citybrain_traffic.optimize import optimize_network
from citybrain_traffic.optimize.demand import intersection_demand
from citybrain_traffic.optimize.splits import optimize_splits
from citybrain_traffic.optimize.storage import (
    VEHICLE_SPACING_M,
    back_of_queue,
    lane_storage_m,
    storage_check,
)
from citybrain_traffic.plans import plans_from_network
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.sim.session import sumo_binary

NODES = """<nodes>
  <node id="W" x="-400" y="0"/>
  <node id="U" x="0" y="0" type="traffic_light"/>
  <node id="D" x="90" y="0" type="traffic_light"/>
  <node id="E" x="490" y="0"/>
  <node id="UN" x="0" y="400"/> <node id="US" x="0" y="-400"/>
  <node id="DN" x="90" y="400"/> <node id="DS" x="90" y="-400"/>
</nodes>"""
EDGES = """<edges>
  <edge id="W_U" from="W" to="U" numLanes="1" speed="13.89"/>
  <edge id="U_D" from="U" to="D" numLanes="1" speed="13.89"/>
  <edge id="D_E" from="D" to="E" numLanes="1" speed="13.89"/>
  <edge id="UN_U" from="UN" to="U" numLanes="1" speed="13.89"/>
  <edge id="U_US" from="U" to="US" numLanes="1" speed="13.89"/>
  <edge id="DN_D" from="DN" to="D" numLanes="1" speed="13.89"/>
  <edge id="D_DS" from="D" to="DS" numLanes="1" speed="13.89"/>
</edges>"""
#: Through traffic from the short link, and from the cross street (veh/h): equal.
FLOWS = {"D": {"U_D>D_E": 600.0, "DN_D>D_DS": 600.0}}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("storage")
    (folder / "p.nod.xml").write_text(NODES)
    (folder / "p.edg.xml").write_text(EDGES)
    subprocess.run(
        [sumo_binary("netconvert"), "-n", "p.nod.xml", "-e", "p.edg.xml", "--no-turnarounds"]
        + ["-o", "pair.net.xml"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return read_network(folder / "pair.net.xml")


def test_back_of_queue_by_hand():
    # C 60 s, g 30 s, 600 veh/h on a lane saturating at 1800: g/C 0.5, c 900 veh/h, X 2/3.
    mean, q95 = back_of_queue(60.0, 30.0, 600.0, 1800.0, analysis_period_h=0.25)
    q1 = (600 * 60 / 3600) * 0.5 / (1 - (2 / 3) * 0.5)  # 7.5 veh
    k_b = 0.12 * (1800 * 30 / 3600) ** 0.7  # 0.799
    q2 = 0.25 * 900 * 0.25 * (-1 / 3 + ((1 / 3) ** 2 + 8 * k_b * (2 / 3) / (900 * 0.25)) ** 0.5)
    assert q1 == pytest.approx(7.5)
    assert q2 == pytest.approx(1.535, abs=1e-3)
    assert float(mean) == pytest.approx(q1 + q2)
    assert float(q95) == pytest.approx((q1 + q2) * (1.6 + 2.718281828 ** (-(q1 + q2) / 5)))
    assert float(back_of_queue(60.0, 30.0, 0.0, 1800.0, analysis_period_h=0.25)[1]) == 0.0


def test_storage_ends_at_the_upstream_signal(pair):
    storage = lane_storage_m(pair)
    assert storage["U_D_0"] == pytest.approx(pair.lanes["U_D_0"].length_m)  # 78.8 m
    assert storage["DN_D_0"] == pytest.approx(pair.lanes["DN_D_0"].length_m)  # 396 m
    assert storage["W_U_0"] == pytest.approx(pair.lanes["W_U_0"].length_m)


def test_turn_bays_store_only_their_own_length():
    """`single`: 2 lanes widen to 3 at a 72.4 m bay; the left bay stores 72.4 m, the lanes
    going on upstream 72.4 + 356 m."""
    network = read_network(load_scenario("single").net_file)
    storage = lane_storage_m(network)
    assert storage["N_C_bay_2"] == pytest.approx(72.4)
    assert storage["N_C_bay_0"] == storage["N_C_bay_1"] == pytest.approx(72.4 + 356.0)


def test_short_link_is_flagged(pair):
    timings = optimize_network(pair, FLOWS, tls_ids=["D"], spillback_weight=0.0)
    table = storage_check(pair, timings, FLOWS).set_index("edge")
    short, long = table.loc["U_D"], table.loc["DN_D"]
    assert short["storage_m"] == pytest.approx(78.8)
    assert short["queue95_m"] == pytest.approx(short["queue95_veh"] * VEHICLE_SPACING_M)
    assert short["ratio"] == pytest.approx(short["queue95_m"] / 78.8)
    assert short["spillback_risk"] and not long["spillback_risk"]
    # The network's own 90 s program: longer reds, longer queues, the same verdict.
    own = {p.tls_id: p for p in plans_from_network(pair)}
    program = storage_check(pair, own, FLOWS).set_index("edge")
    assert program.loc["U_D", "queue95_veh"] > short["queue95_veh"]
    assert program.loc["U_D", "spillback_risk"]


def test_the_penalty_moves_green_to_the_short_link(pair):
    intersection = pair.intersections["D"]
    demand = intersection_demand(intersection, pair.lanes, FLOWS["D"])
    storage = lane_storage_m(pair)
    # Phase 0 serves the cross street, phase 2 the short link; equal flows, equal greens.
    plain = optimize_splits(intersection, demand, cycle_s=90.0)
    assert plain.greens_s[0] == plain.greens_s[2]
    penalised = optimize_splits(intersection, demand, cycle_s=90.0, storage_m=storage)
    assert penalised.greens_s[2] > plain.greens_s[2]
    assert penalised.greens_s[0] + penalised.greens_s[2] == plain.greens_s[0] + plain.greens_s[2]
    assert any("exceeds storage" in note for note in penalised.notes)
    before = storage_check(pair, {"D": plain}, FLOWS).set_index("edge").loc["U_D", "queue95_veh"]
    after = storage_check(pair, {"D": penalised}, FLOWS).set_index("edge").loc["U_D", "queue95_veh"]
    assert after < before
