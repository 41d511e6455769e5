"""The safety envelope, checked on the signal states SUMO showed: every run is checked, and the
controllers that switch live keep each link's yellow and all-red, pedestrian crossings included."""

from __future__ import annotations

from pathlib import Path

import pytest

from citybrain_traffic.harness.matrix import run_matrix
from citybrain_traffic.control.signal import TrafficSignal
from citybrain_traffic.network import Intersection, Phase, read_network
from citybrain_traffic.safety import envelope, link_foes, trace_violations
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.harness.runner import RunSpec

from network_variants import crossing_grid, random_demand

# Two conflicting streams (links 0 and 1) and a crossing (link 2) green with stream 0, cleared
# for 4 s before stream 0's yellow: green, pedestrian clearance, yellow, all-red, cross green, ...
PROGRAM = (
    Phase("GrG", 20, 20, 20),
    Phase("Grr", 4, 4, 4, clearance=True),
    Phase("yrr", 3, 3, 3),
    Phase("rrr", 2, 2, 2),
    Phase("rGr", 20, 20, 20),
    Phase("ryr", 3, 3, 3),
    Phase("rrr", 2, 2, 2),
)
FOES = {0: frozenset({1}), 1: frozenset({0, 2}), 2: frozenset({1})}


def _trace(*steps):
    t, out = 0.0, []
    for state, duration in steps:
        out.append((t, state))
        t += duration
    return out


def test_the_programs_own_cycle_is_safe():
    env = envelope("t", PROGRAM, FOES)
    assert (
        env.clearance_s[0, 1] == 5 and env.clearance_s[2, 1] == 6 and env.yellow_s == {0: 3, 1: 3}
    )
    cycle = [(p.state, p.duration) for p in PROGRAM]
    assert trace_violations(env, _trace(*cycle, *cycle, ("GrG", 1))) == []


@pytest.mark.parametrize(
    "steps, reason",
    [
        (
            (("GrG", 20), ("Grr", 4), ("yrr", 3), ("rGr", 20)),
            "the program's change interval is 5 s",
        ),
        (
            (("GrG", 20), ("yrr", 3), ("rrr", 2), ("rGr", 20)),
            "link 1 green 5 s after conflicting link 2",
        ),
        (
            (("GrG", 20), ("Grr", 4), ("yrr", 1), ("rrr", 4), ("rGr", 20)),
            "showed yellow 1 s, the program's is 3 s",
        ),
        (
            (("GrG", 20), ("Grr", 4), ("rrr", 5), ("rGr", 20)),
            "link 0 went from green to 'r' without yellow",
        ),
        (
            (
                ("rGr", 20),
                ("ryr", 3),
                ("rrr", 2),
                ("GrG", 2),
                ("Grr", 4),
                ("yrr", 3),
                ("rrr", 2),
                ("rGr", 9),
            ),
            "lasted 2 s, its minimum is 5 s",
        ),
        ((("GGr", 20), ("rrr", 9)), "greens links no phase of the program greens together"),
        # Green straight to a conflicting green, in one change: no clearance at all.
        ((("GrG", 20), ("rGr", 20)), "link 1 green 0 s after conflicting link 0 lost its green"),
    ],
)
def test_the_checker_sees_every_cut(steps, reason):
    problems = trace_violations(envelope("t", PROGRAM, FOES), _trace(*steps, ("rrr", 1)))
    assert any(reason in p for p in problems), problems


def test_a_live_transition_the_program_never_makes_gets_the_programs_all_red():
    """Green A -> green C skips B. A's own change interval is a yellow alone (the program's all-red
    comes after B), so the signal adds the all-red the program has between A's and C's streams."""
    program = (
        Phase("Grr", 20, 20, 20),
        Phase("yrr", 3, 3, 3),
        Phase("rGr", 20, 20, 20),
        Phase("ryr", 3, 3, 3),
        Phase("rrr", 2, 2, 2),
        Phase("rrG", 20, 20, 20),
        Phase("rry", 3, 3, 3),
        Phase("rrr", 2, 2, 2),
    )
    foes = {k: frozenset({0, 1, 2} - {k}) for k in range(3)}
    intersection = Intersection("t", "0", program, (), (), {})
    guarded = TrafficSignal(None, intersection, program, envelope("t", program, foes))
    assert guarded.transition(0, 5) == [("yrr", 3), ("rrr", 2)]
    assert guarded.transition(0, 2) == [("yrr", 3)]  # the program's own
    assert TrafficSignal(None, intersection, program).transition(0, 5) == [
        ("yrr", 3)
    ]  # without the envelope


def test_foes_come_from_the_junction_requests(tmp_path):
    foes = link_foes(load_scenario("single").net_file)["C"]
    assert len(foes) == 16 and 5 in foes[0] and 0 not in foes[0]
    crossings = crossing_grid(tmp_path)
    network = read_network(crossings)
    assert network.intersections["A1"].crossings == frozenset({12, 13, 14})
    assert [p.kind for p in network.intersections["A1"].phases] == [
        "green",
        "clearance",
        "yellow",
    ] * 2
    assert any(12 in js for js in link_foes(crossings)["A1"].values())


def _run(scenario, name: str, workdir: Path):
    from citybrain_traffic.experiments.registry import preparation

    network = read_network(scenario.net_file)
    controller = preparation(name).build(scenario, network, workdir, demand_scale=1.0)
    return run_matrix(
        [
            RunSpec(
                scenario=scenario, network=network, controller=controller, seed=1, workdir=workdir
            )
        ]
    )[0]


def test_max_pressure_keeps_the_all_red_it_skipped(tmp_path):
    """Max-pressure jumped from single's first green to the cross street's after the first green's
    own yellow alone: 3,376 states in 1,800 s without the all-red the program puts there."""
    result = _run(load_scenario("single", end=1800), "max-pressure", tmp_path)
    assert result.safety_violations == ()
    assert result.summary_row()["safety_violations"] == 0


def test_max_pressure_keeps_the_pedestrian_clearance(tmp_path):
    """On a grid with crossings, max-pressure gave conflicting vehicles green 3 s after a crossing
    lost its green, where the program clears it for 5 s first."""
    net = crossing_grid(tmp_path)
    scenario = load_scenario(
        net=net, routes=random_demand(tmp_path, net, pedestrians=True), end=900
    )
    result = _run(scenario, "max-pressure", tmp_path / "run")
    assert result.kpis["vehicles_arrived"] > 0
    assert result.safety_violations == ()
