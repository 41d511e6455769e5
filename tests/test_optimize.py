"""Optimizer core: flow ratios, Webster's plan, exact delay-optimal splits, safe plans on real
nets."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from citybrain_traffic.errors import InfeasibleError, InputError
from citybrain_traffic.network import Intersection, Lane, Link, Phase, read_network
from citybrain_traffic.plans import plans_from_network, violations
from citybrain_traffic.optimize import (
    STATUS_CLIPPED,
    STATUS_NO_DEMAND,
    STATUS_OPTIMAL,
    STATUS_OVERSATURATED,
    STATUS_RELAXED,
    STATUS_WEBSTER,
    SplitProblem,
    evaluate_program,
    intersection_demand,
    optimize_network,
    optimize_splits,
    phase_delay,
    proportional_greens,
    to_plans,
    webster_timing,
)

from conftest import ROOT, shared_dir

BUNDLED = {
    name: ROOT / "scenarios" / "sumo" / name / f"{name}.net.xml"
    for name in ("single", "corridor", "grid")
}
RESCO = ("cologne1", "cologne3", "grid4x4", "ingolstadt1", "ingolstadt7")


def _resco_nets() -> dict[str, Path]:
    shared = shared_dir()
    if shared is None:
        return {}
    paths = {name: shared / "data" / "resco" / name / f"{name}.net.xml" for name in RESCO}
    return {name: path for name, path in paths.items() if path.is_file()}


@pytest.fixture(scope="module")
def bundled():
    return {name: read_network(path) for name, path in BUNDLED.items()}


@pytest.fixture(scope="module")
def resco():
    nets = _resco_nets()
    if not nets:
        pytest.skip("RESCO nets absent (shared/data/resco/*/*.net.xml): real-city checks not run")
    return {name: read_network(path) for name, path in nets.items()}


def _two_phase() -> tuple[Intersection, dict[str, Lane]]:
    """Approach a (2 lanes, through a>x) against approach b (1 lane shared by b>y and b>z);
    each green followed by 3 s yellow and 2 s all-red, so L = 10 s."""
    phases = tuple(
        Phase(state, duration, duration, duration)
        for state, duration in [
            ("GGrr", 30),
            ("yyrr", 3),
            ("rrrr", 2),
            ("rrGG", 30),
            ("rryy", 3),
            ("rrrr", 2),
        ]
    )
    links = (
        Link(0, "a_0", "x_0"),
        Link(1, "a_1", "x_1"),
        Link(2, "b_0", "y_0"),
        Link(3, "b_0", "z_0"),
    )
    lanes = {
        lane: Lane(lane, lane[0], 200.0, 13.89)
        for lane in ("a_0", "a_1", "b_0", "x_0", "x_1", "y_0", "z_0")
    }
    intersection = Intersection(
        tls_id="T", program_id="0", phases=phases, links=links, approaches=(), upstream_lanes={}
    )
    return intersection, lanes


def _random_flows(intersection: Intersection, rng: random.Random, high: float) -> dict[str, float]:
    return {
        m: rng.uniform(0.0, high) for m in sorted({link.movement for link in intersection.links})
    }


# --- demand ---------------------------------------------------------------------------------


def test_flow_ratios_by_hand():
    intersection, lanes = _two_phase()
    demand = intersection_demand(intersection, lanes, {"a>x": 1080, "b>y": 360, "b>z": 180})
    assert [p.index for p in demand.phases] == [0, 3]
    assert [p.critical_ratio for p in demand.phases] == pytest.approx([0.3, 0.3])
    assert [p.flow_veh_h for p in demand.phases] == pytest.approx([1080, 540])
    assert [p.lanes for p in demand.phases] == [2, 1]
    assert demand.total_ratio == pytest.approx(0.6)


def test_shared_lane_flows_balance_across_lanes(bundled):
    """On single's north approach lane 0 carries right + through and lane 1 through only: the
    through traffic moves to lane 1 until both lanes carry the same flow."""
    network = bundled["single"]
    intersection = network.intersections["C"]
    flows = {"N_C_bay>C_W": 200.0, "N_C_bay>C_S": 1000.0, "N_C_bay>C_E": 150.0}
    demand = intersection_demand(intersection, network.lanes, flows)
    by_lane = {g.lanes: g.flow_veh_h for g in demand.lane_groups if g.edge == "N_C_bay"}
    assert by_lane[("N_C_bay_0",)] == pytest.approx(600.0)
    assert by_lane[("N_C_bay_1",)] == pytest.approx(600.0)
    assert by_lane[("N_C_bay_2",)] == pytest.approx(150.0)
    assert demand.flow_veh_h == pytest.approx(sum(flows.values()))


def test_a_through_movement_sharing_a_lane_with_a_permanent_right_turn_keeps_its_phase():
    """Lane b_0 carries a through movement green only in phase 3 and a right turn green in every
    phase. Counting the lane as served by every phase left phase 3 with no flow and its minimum."""
    phases = tuple(
        Phase(state, d, d, d)
        for state, d in [("GrG", 30), ("yrG", 3), ("rrG", 2), ("rGG", 30), ("ryG", 3)]
    )
    links = (Link(0, "a_0", "x_0"), Link(1, "b_0", "y_0"), Link(2, "b_0", "z_0"))
    lanes = {
        lane: Lane(lane, lane[0], 200.0, 13.89) for lane in ("a_0", "b_0", "x_0", "y_0", "z_0")
    }
    intersection = Intersection("T", "0", phases, links, (), {})
    demand = intersection_demand(intersection, lanes, {"a>x": 600.0, "b>y": 400.0, "b>z": 100.0})
    ratios = {p.index: p.critical_ratio for p in demand.phases}
    assert ratios[3] == pytest.approx(400 / 1800)
    assert ratios[0] == pytest.approx(600 / 1800)
    served = {p.index: p.flow_veh_h for p in demand.phases}
    assert served[3] >= 400 - 1e-9 and sum(served.values()) == pytest.approx(1100)
    timing = optimize_splits(intersection, demand)
    assert timing.greens_s[3] > 10 and timing.greens_s[3] > 0.5 * timing.greens_s[0]


def test_overlaps_are_not_double_counted(resco):
    """RESCO grid4x4 serves each lane in two green phases; counting a lane in both would make
    Y twice the real need."""
    network = resco["grid4x4"] if "grid4x4" in resco else pytest.skip("grid4x4 absent")
    intersection = network.intersections["A0"]
    flows = {m: 300.0 for m in {link.movement for link in intersection.links}}
    demand = intersection_demand(intersection, network.lanes, flows)
    groups = [g for g in demand.lane_groups if g.flow_veh_h > 0]
    assert all(len(g.phases) == 2 for g in groups)
    ratios = {p.index: p.critical_ratio for p in demand.phases}
    for group in groups:
        assert sum(ratios[p] for p in group.phases) >= group.flow_ratio - 1e-9
    # Four approaches with one lane each at the critical ratio is all the cycle needs.
    assert demand.total_ratio == pytest.approx(4 * max(g.flow_ratio for g in groups))
    assert demand.flow_veh_h == pytest.approx(sum(flows.values()))


@pytest.mark.parametrize(
    ("flows", "message"),
    [
        ({"nowhere>x": 10.0}, "unknown movement"),
        ({"a>x": -1.0}, "expected a finite value >= 0"),
        ({"a>x": float("nan")}, "expected a finite value >= 0"),
        ({"a>x": "lots"}, "expected a number"),
    ],
)
def test_bad_flows_are_input_errors(flows, message):
    intersection, lanes = _two_phase()
    with pytest.raises(InputError, match=message) as err:
        intersection_demand(intersection, lanes, flows)
    assert "signal T" in str(err.value)


def test_bad_saturation_and_foreign_lanes_are_input_errors():
    intersection, lanes = _two_phase()
    with pytest.raises(InputError, match="saturation flow"):
        intersection_demand(intersection, lanes, {}, saturation_veh_h_lane=0)
    with pytest.raises(InputError, match="'a_0' is not among the given lanes"):
        intersection_demand(intersection, {}, {})


def test_saturation_flow_scales_ratios():
    intersection, lanes = _two_phase()
    flows = {"a>x": 1080, "b>y": 540}
    low = intersection_demand(intersection, lanes, flows, saturation_veh_h_lane=1500)
    assert [p.critical_ratio for p in low.phases] == pytest.approx([0.36, 0.36])


# --- delay model and Webster ---------------------------------------------------------------------


def test_delay_model_by_hand():
    """C = 50 s, g = 20 s, y = 0.3: x = 0.75, d1 = 0.5·50·0.6²/0.7, d2 with c = 1800·lanes·0.4."""
    x, delay = phase_delay(50.0, 20.0, 0.3, [2, 1], 1800.0, analysis_period_h=0.25)
    assert x == pytest.approx(0.75)
    assert delay == pytest.approx([12.857142857 + 3.632697835, 12.857142857 + 7.057286311])
    x, delay = phase_delay(60.0, 20.0, 0.0, 1, 1800.0)
    assert x == 0 and delay == pytest.approx(0.5 * 60 * (2 / 3) ** 2)


def test_webster_known_answer():
    intersection, lanes = _two_phase()
    demand = intersection_demand(intersection, lanes, {"a>x": 1080, "b>y": 360, "b>z": 180})
    timing = webster_timing(intersection, demand)
    # L = 10 s, Y = 0.6: C0 = (1.5·10 + 5) / 0.4 = 50 s, and 40 s of green split 0.3 : 0.3.
    assert timing.status == STATUS_WEBSTER
    assert timing.cycle_s == 50
    assert timing.greens_s == {0: 20, 3: 20}
    assert timing.delay_s == pytest.approx(17.631370184)
    assert [p.start_s for p in timing.phases] == [0, 25]


def test_webster_uneven_split_and_startup_lost_time():
    intersection, lanes = _two_phase()
    demand = intersection_demand(intersection, lanes, {"a>x": 1440, "b>y": 360})
    assert webster_timing(intersection, demand).greens_s == {0: 27, 3: 13}  # 40 s as 2 : 1
    # Start-up loss of 2 s per phase: L = 14 s, C0 = 26 / 0.4 = 65 s.
    assert webster_timing(intersection, demand, startup_lost_s=2).cycle_s == 65


def test_webster_clips_and_reports_oversaturation():
    intersection, lanes = _two_phase()
    light = intersection_demand(intersection, lanes, {"a>x": 180, "b>y": 90})
    timing = webster_timing(intersection, light)
    assert (timing.status, timing.cycle_s, timing.greens_s) == (STATUS_CLIPPED, 30, {0: 10, 3: 10})
    heavy = intersection_demand(intersection, lanes, {"a>x": 3000, "b>y": 1200})
    timing = webster_timing(intersection, heavy, cycle_max_s=150)
    assert (timing.status, timing.cycle_s) == (STATUS_OVERSATURATED, 150)
    assert "Y = 1.500 >= 1" in timing.notes[0]


def test_proportional_greens_respect_minimums_and_total():
    assert proportional_greens([0.5, 0.01, 0.2], [5, 5, 5], 60) == [
        39,
        5,
        16,
    ]  # 55 s as 5 : 2 after the pinned 5 s
    assert proportional_greens([0, 0, 0], [5, 5, 5], 20) == [7, 7, 6]
    assert sum(proportional_greens([0.3, 0.3, 0.3], [4, 4, 4], 31)) == 31


# --- the optimizer --------------------------------------------------------------------------------


def test_infeasible_bounds_name_the_signal_and_the_bound():
    intersection, lanes = _two_phase()
    demand = intersection_demand(intersection, lanes, {"a>x": 100})
    with pytest.raises(
        InfeasibleError,
        match=r"signal T: minimum greens 5\+5 s plus change intervals 10 s "
        r"need a 20 s cycle, above the maximum cycle 18 s",
    ):
        optimize_splits(intersection, demand, cycle_min_s=10, cycle_max_s=18)
    with pytest.raises(InputError, match="cycle bounds"):
        webster_timing(intersection, demand, cycle_min_s=90, cycle_max_s=60)
    with pytest.raises(InfeasibleError, match="cycle 47.5 s is not available"):
        optimize_splits(intersection, demand, cycle_s=47.5)


def test_no_demand_gives_shortest_cycle_equal_greens():
    intersection, lanes = _two_phase()
    timing = optimize_splits(intersection, intersection_demand(intersection, lanes, {}))
    assert (timing.status, timing.cycle_s, timing.greens_s, timing.delay_s) == (
        STATUS_NO_DEMAND,
        30,
        {0: 10, 3: 10},
        0,
    )


def test_optimizer_beats_webster_on_the_hand_made_signal():
    intersection, lanes = _two_phase()
    demand = intersection_demand(intersection, lanes, {"a>x": 1080, "b>y": 360, "b>z": 180})
    best = optimize_splits(intersection, demand)
    assert best.status == STATUS_OPTIMAL
    assert best.delay_s <= webster_timing(intersection, demand).delay_s
    assert best.max_degree_of_saturation <= 0.9
    plan = best.plan(intersection)
    assert plan.kind == "static" and plan.cycle_s == best.cycle_s
    assert [p.duration for p in plan.phases] == [best.greens_s[0], 3, 2, best.greens_s[3], 3, 2]
    assert plan.provenance["status"] == STATUS_OPTIMAL
    assert plan.provenance["inputs"]["flows_veh_h"] == {"a>x": 1080.0, "b>y": 360.0, "b>z": 180.0}


def test_relaxed_cap_when_no_plan_meets_it():
    intersection, lanes = _two_phase()
    demand = intersection_demand(intersection, lanes, {"a>x": 1700, "b>y": 800})  # Y = 0.92
    timing = optimize_splits(intersection, demand)
    assert timing.status == STATUS_RELAXED
    assert "cap raised" in timing.notes[0]
    assert timing.delay_s <= webster_timing(intersection, demand).delay_s * (1 + 1e-9)


def _bundled_signals() -> list[tuple[str, str]]:
    return [
        (name, tls) for name, path in BUNDLED.items() for tls in read_network(path).intersections
    ]


_FLOW = st.one_of(
    st.just(0.0),
    st.floats(0.0, 2500.0),
    st.sampled_from([1e-9, 1800.0, 3600.0, 1e5]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    signal=st.sampled_from(_bundled_signals()),
    cycle_max=st.sampled_from([25.0, 40.0, 90.0, 180.0]),
)
def test_every_plan_is_safe_or_infeasible(bundled, data, signal, cycle_max):
    name, tls = signal
    network = bundled[name]
    intersection = network.intersections[tls]
    movements = sorted({link.movement for link in intersection.links})
    flows = {m: data.draw(_FLOW, label=m) for m in movements}
    demand = intersection_demand(intersection, network.lanes, flows)
    try:
        timing = optimize_splits(intersection, demand, cycle_min_s=20.0, cycle_max_s=cycle_max)
    except InfeasibleError as err:
        assert f"signal {tls}:" in str(err) and f"maximum cycle {cycle_max:g} s" in str(err)
        return
    plan = timing.plan(intersection)
    assert violations(plan, intersection.phases) == []
    assert 20 <= timing.cycle_s <= cycle_max
    assert math.isfinite(timing.delay_s) and timing.delay_s >= 0
    if timing.status == STATUS_OPTIMAL:
        webster = webster_timing(intersection, demand, cycle_max_s=cycle_max)
        assert timing.max_degree_of_saturation <= max(0.9, webster.max_degree_of_saturation) + 1e-9


def _check_not_worse_than_webster(network, rng, high):
    for intersection in network.intersections.values():
        demand = intersection_demand(
            intersection, network.lanes, _random_flows(intersection, rng, high)
        )
        best = optimize_splits(intersection, demand)
        webster = webster_timing(intersection, demand)
        best.plan(intersection)
        assert best.delay_s <= webster.delay_s * (1 + 1e-9), (intersection.tls_id, best.notes)


def test_optimizer_not_worse_than_webster_on_bundled_nets(bundled):
    rng = random.Random(7)
    for _ in range(3):
        for network in bundled.values():
            _check_not_worse_than_webster(network, rng, 900.0)


def test_optimizer_not_worse_than_webster_on_resco_nets(resco):
    rng = random.Random(11)
    for _ in range(3):
        for network in resco.values():
            _check_not_worse_than_webster(network, rng, 900.0)


def test_optimizer_beats_the_networks_own_programs(bundled):
    """The network's own program is in the search space whenever it keeps within the v/c cap, so
    the optimized plan has no more modelled delay."""
    rng = random.Random(3)
    compared = 0
    for network in bundled.values():
        own = {p.tls_id: p for p in plans_from_network(network)}
        for tls, intersection in network.intersections.items():
            demand = intersection_demand(
                intersection, network.lanes, _random_flows(intersection, rng, 150.0)
            )
            current = evaluate_program(intersection, demand, own[tls])
            if current.max_degree_of_saturation <= 0.9:
                compared += 1
                assert optimize_splits(intersection, demand).delay_s <= current.delay_s * (1 + 1e-9)
    assert compared >= 10


def test_branch_and_bound_matches_every_cycle_solved(bundled):
    """The cycle search is exact: it finds the least delay over all cycles, each solved exactly."""
    rng = random.Random(5)
    for network in bundled.values():
        for intersection in list(network.intersections.values())[:4]:
            for high in (150.0, 500.0, 900.0):
                demand = intersection_demand(
                    intersection, network.lanes, _random_flows(intersection, rng, high)
                )
                problem = SplitProblem(intersection, demand)
                caps = np.full(len(problem.totals), problem.cap)
                feasible = np.isfinite(problem.lower_bounds(caps))
                every = min(problem.solve_at(j, problem.cap)[0] for j in np.flatnonzero(feasible))
                assert problem.best().delay_s * demand.flow_veh_h == pytest.approx(every, rel=1e-9)


def test_splits_agree_with_cp_sat(bundled):
    """An independent solver (CP-SAT over the same delay tables) finds the same least delay at the
    chosen cycle."""
    network = bundled["corridor"]
    rng = random.Random(9)
    for intersection in network.intersections.values():
        demand = intersection_demand(
            intersection, network.lanes, _random_flows(intersection, rng, 400.0)
        )
        problem = SplitProblem(intersection, demand)
        best = problem.best()
        j = problem.cycle_index(best.cycle_s)
        low, spare, table = problem.delay_band(np.array([problem.cap]), [j])
        model = cp_model.CpModel()
        extra = [model.NewIntVar(0, int(spare[0]), f"e{p}") for p in range(len(low[0]))]
        costs = []
        for p, var in enumerate(extra):
            # Delay in 1/1000 veh·s/h: rounding is far below any difference that matters.
            row = np.rint(table[0, p, : int(spare[0]) + 1] * 1000).astype(int).tolist()
            cost = model.NewIntVar(min(row), max(row), f"c{p}")
            model.AddElement(var, row, cost)
            costs.append(cost)
        model.Add(sum(extra) == int(spare[0]))
        model.Minimize(sum(costs))
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        assert solver.Solve(model) == cp_model.OPTIMAL
        assert solver.ObjectiveValue() / 1000 == pytest.approx(
            best.delay_s * demand.flow_veh_h, rel=1e-6
        )


def test_network_plans_from_a_flows_table(bundled):
    import pandas as pd

    network = bundled["corridor"]
    rows = [
        ("J1", "W_J1_bay>J1_J2", 1200.0),
        ("J1", "N1_J1>J1_S1", 200.0),
        ("J2", "J1_J2_bay>J2_J3", 1000.0),
    ]
    flows = pd.DataFrame(rows, columns=["intersection", "movement", "flow_veh_h"])
    timings = optimize_network(network, flows)
    assert sorted(timings) == ["J1", "J2"]
    plans = to_plans(timings, network)
    assert [p.tls_id for p in plans] == ["J1", "J2"]
    with pytest.raises(InputError, match="not in network"):
        optimize_network(network, {"J9": {}})
    with pytest.raises(InputError, match="more than once"):
        optimize_network(network, pd.concat([flows, flows]))
