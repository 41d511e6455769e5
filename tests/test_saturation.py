"""Saturation flow per lane group: each HCM adjustment by hand on a netconvert junction, and a
measured lane (``ctraffic calibrate``) wins over the adjusted base."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from citybrain_traffic.flows import parse_design, route_flow_bins
from citybrain_traffic.network import read_network
from citybrain_traffic.optimize import intersection_demand
from citybrain_traffic.optimize.saturation import (
    base_from_measurements,
    heavy_vehicle_factor,
    lane_width_factor,
    saturation_model,
)
from citybrain_traffic.plans import read_plans
from citybrain_traffic.scenario import load_scenario

from conftest import run_cli
from generated_junction import build_junction, write_routes

#: The junction's green phases: 0 serves north and south, 2 east and west.
NS, EW = 0, 2


@pytest.fixture(scope="module")
def junction(tmp_path_factory):
    folder = tmp_path_factory.mktemp("junction")
    net = build_junction(folder)
    return folder, net, read_network(net)


def _group(demand, edge):
    (group,) = [g for g in demand.lane_groups if g.edge == edge]
    return group


def _gap_rate(opposing_veh_h: float) -> float:
    """HCM permitted left-turn saturation flow (veh/h): t_c 4.5 s, t_f 2.5 s."""
    v = opposing_veh_h / 3600.0
    return opposing_veh_h * math.exp(-v * 4.5) / (1.0 - math.exp(-v * 2.5))


def test_width_factor_follows_the_hcm_steps():
    assert lane_width_factor(2.8) == 0.96 and lane_width_factor(3.0) == 0.96
    assert lane_width_factor(3.2) == 1.0 and lane_width_factor(3.9) == 1.0
    assert lane_width_factor(4.0) == 1.04
    assert heavy_vehicle_factor(0.0) == 1.0 and heavy_vehicle_factor(0.1) == pytest.approx(0.921)


def test_a_narrow_lane_is_derated_by_f_w(junction):
    _, net, network = junction
    model = saturation_model(net, base_veh_h_lane=1800)
    flows = {"W_C>C_E": 300.0, "E_C>C_W": 300.0}
    demand = intersection_demand(
        network.intersections["C"], network.lanes, flows, saturation_veh_h_lane=model
    )
    west, east = _group(demand, "W_C"), _group(demand, "E_C")
    assert west.saturation_veh_h_lane == pytest.approx(1800 * 0.96)
    assert dict(west.adjustments)["f_w"] == 0.96
    assert east.saturation_veh_h_lane == pytest.approx(1800)
    assert west.flow_ratio == pytest.approx(300 / 1728)
    # Through only: nothing else derates the lane.
    assert west.share(EW) == pytest.approx(1.0)


def test_a_shared_lane_with_a_permitted_left_is_derated_by_its_left_turners(junction):
    """West: 300 through + 100 left (25% yielding to the 500 veh/h east through movement).
    HCM: s = s_th / (1 + P_L (E_L - 1)) with E_L = s_th / s_lp (gap acceptance)."""
    _, net, network = junction
    model = saturation_model(net, base_veh_h_lane=1800)
    flows = {"W_C>C_E": 300.0, "W_C>C_N": 100.0, "E_C>C_W": 500.0}
    demand = intersection_demand(
        network.intersections["C"], network.lanes, flows, saturation_veh_h_lane=model
    )
    west = _group(demand, "W_C")
    s_th = 1800 * 0.96
    expected = 1.0 / (0.75 + 0.25 * s_th / _gap_rate(500.0))
    assert west.share(EW) == pytest.approx(expected)
    assert expected < 0.85  # a real derating, not rounding
    ratios = {p.index: p.critical_ratio for p in demand.phases}
    assert ratios[EW] == pytest.approx(400 / s_th / expected)
    critical = {p.index: p.saturation_veh_h_lane for p in demand.phases}
    assert critical[EW] == pytest.approx(s_th * expected)
    # Without the model (a flat saturation flow), the same lane counted as unimpeded.
    flat = intersection_demand(network.intersections["C"], network.lanes, flows)
    assert _group(flat, "W_C").share(EW) == 1.0


def test_a_right_turn_counts_as_1_18_through_cars(junction):
    _, net, network = junction
    model = saturation_model(net, base_veh_h_lane=1800)
    flows = {"N_C>C_S": 300.0, "N_C>C_W": 100.0}  # N_C>C_W is north's right turn
    demand = intersection_demand(
        network.intersections["C"], network.lanes, flows, saturation_veh_h_lane=model
    )
    assert model.turns["N_C>C_W"] == "right" and model.turns["N_C>C_E"] == "left"
    assert _group(demand, "N_C").share(NS) == pytest.approx(1.0 / (0.75 + 0.25 * 1.18))


def test_trucks_in_the_routes_derate_their_lane_group(junction):
    """One vehicle in four on north-south is a truck (vClass), and a 12 m vType without a heavy
    vClass is heavy too: P_HV 25% gives f_HV = (100 - 0.79 * 25) / 100 = 0.8025."""
    folder, net, network = junction
    vtypes = (
        '  <vType id="car"/>\n  <vType id="lorry" vClass="truck"/>\n'
        '  <vType id="long" length="12"/>\n'
    )
    vehicles = [(10.0 * k, "N_C C_S", "lorry" if k % 4 == 0 else "car") for k in range(40)]
    vehicles += [(10.0 * k + 5, "S_C C_N", "long" if k % 2 else "") for k in range(20)]
    routes = write_routes(folder / "trucks.rou.xml", vehicles, vtypes)
    _, heavy = route_flow_bins(routes, network, begin=0, end=900)
    assert heavy["N_C>C_S"] == pytest.approx(0.25) and heavy["S_C>C_N"] == pytest.approx(0.5)
    assert heavy["W_C>C_E"] == 0.0
    model = saturation_model(net, base_veh_h_lane=1800, heavy_share=heavy)
    flows = {"N_C>C_S": 160.0, "S_C>C_N": 80.0}
    demand = intersection_demand(
        network.intersections["C"], network.lanes, flows, saturation_veh_h_lane=model
    )
    north = _group(demand, "N_C")
    assert north.saturation_veh_h_lane == pytest.approx(1800 * 0.8025)
    assert dict(north.adjustments)["f_HV"] == pytest.approx(0.8025)
    assert _group(demand, "S_C").saturation_veh_h_lane == pytest.approx(1800 * (1 - 0.395))


def test_a_measured_lane_keeps_its_measurement(junction):
    """Calibrate's value replaces s0 x f_w x the protected-turn equivalents; the permitted left's
    gap acceptance (it depends on the design's opposing flow) still applies."""
    _, net, network = junction
    model = saturation_model(net, base_veh_h_lane=1800, measured_veh_h_lane={"W_C_0": 1500.0})
    flows = {"W_C>C_E": 300.0, "W_C>C_S": 100.0}  # through and right
    demand = intersection_demand(
        network.intersections["C"], network.lanes, flows, saturation_veh_h_lane=model
    )
    west = _group(demand, "W_C")
    assert west.saturation_veh_h_lane == 1500.0 and dict(west.adjustments)["measured"] == 1
    assert west.share(EW) == pytest.approx(1.0)  # no 1.18 on top of a measurement
    flows = {"W_C>C_E": 300.0, "W_C>C_N": 100.0, "E_C>C_W": 500.0}
    demand = intersection_demand(
        network.intersections["C"], network.lanes, flows, saturation_veh_h_lane=model
    )
    expected = 1.0 / (0.75 + 0.25 * 1500 / _gap_rate(500.0))
    assert _group(demand, "W_C").share(EW) == pytest.approx(expected)
    # The base of the unmeasured lanes comes from the measurements, without their width twice.
    assert base_from_measurements(model, {"W_C_0": 1440.0, "E_C_0": 1800.0}) == pytest.approx(1650)


def _calibration(folder, lanes, flow, headways=25):
    path = folder / "calibration.csv"
    pd.DataFrame(
        {
            "intersection": "C",
            "lane": lanes,
            "headways": headways,
            "mean_headway_s": 3600.0 / flow,
            "saturation_veh_h_lane": flow,
        }
    ).to_csv(path, index=False)
    return path


def test_optimize_takes_calibrate_s_table_and_its_lanes_win(tmp_path):
    network = read_network(load_scenario("single").net_file)
    lanes = list(network.intersections["C"].in_lanes)
    path = _calibration(tmp_path, lanes, 1500.0)
    proc = run_cli(
        "optimize", "single", "--no-check", "--saturation-flow", path, "--out", tmp_path / "o"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"inferred from {len(lanes)} lane(s) measured in calibration.csv" in proc.stdout
    demand = read_plans(tmp_path / "o" / "plans.json")[0].provenance["demand"]
    assert demand["saturation_measured_lanes"] == len(lanes)
    assert demand["saturation_veh_h_lane"] == pytest.approx(1500)  # single's lanes are 3.2 m
    assert demand["design"] == str(parse_design("peak15"))
    flat = run_cli(
        "optimize", "single", "--no-check", "--saturation-flow", "1500", "--out", tmp_path / "f"
    )
    assert flat.returncode == 0, flat.stderr
    # Measured lanes hold their turns: no turn equivalent, so the plan needs a shorter cycle.
    measured_cycle = read_plans(tmp_path / "o" / "plans.json")[0].cycle_s
    assert measured_cycle < read_plans(tmp_path / "f" / "plans.json")[0].cycle_s


def test_a_calibration_of_another_network_is_a_one_line_error(tmp_path):
    path = _calibration(tmp_path, ["nowhere_0"], 1500.0)
    proc = run_cli(
        "optimize", "single", "--no-check", "--saturation-flow", path, "--out", tmp_path / "o"
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "['nowhere_0']" in proc.stderr and "single.net.xml" in proc.stderr
    few = _calibration(tmp_path, ["C_N_0"], 1500.0, headways=3)
    proc = run_cli(
        "optimize", "single", "--no-check", "--saturation-flow", few, "--out", tmp_path / "o"
    )
    assert proc.returncode == 2 and "too few queue discharges" in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()
