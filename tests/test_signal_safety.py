"""Signal safety: transitions keep the program's change intervals; unsafe programs are rejected."""

from __future__ import annotations

from dataclasses import replace

import pytest

from citybrain_traffic.control.signal import TrafficSignal
from citybrain_traffic.errors import UnsafePlanError
from citybrain_traffic.network import Intersection, Phase, read_network
from citybrain_traffic.plans import TimingPlan, validate, violations
from citybrain_traffic.scenario import load_scenario


def _phases(*spec):
    return tuple(Phase(state, d, d, d) for state, d in spec)


# Three greens; the second is followed by a yellow and an all-red interval.
PROGRAM = _phases(
    ("GGrrGGrr", 30),
    ("yyrryyrr", 4),
    ("rrGGrrrr", 10),
    ("rryyrrrr", 3),
    ("rrrrrrrr", 2),
    ("rrrrrrGG", 12),
    ("rrrrrryy", 4),
)


def _signal(phases):
    intersection = Intersection("t", "0", phases, (), (), {})
    return TrafficSignal(api=None, intersection=intersection, phases=phases)


def test_every_transition_shows_yellow_for_links_that_lose_green():
    phases = PROGRAM
    sig = _signal(phases)
    for src in sig.green_indices:
        for dst in sig.green_indices:
            steps = sig.transition(src, dst)
            if src == dst:
                assert steps == []
                continue
            before, after = phases[src].state, phases[dst].state
            own = [p for p in phases if not p.is_green]
            assert steps, (src, dst)
            first = steps[0][0]
            for k, (a, b) in enumerate(zip(before, after)):
                if a in "Gg" and b not in "Gg":
                    assert first[k] == "y", (src, dst, k, first)
                if a not in "Gg":
                    assert first[k] not in "Gg", (
                        "a link may not gain green inside a change interval"
                    )
            # lengths come from the program's own change interval after src
            durations = [d for _, d in steps]
            assert all(d in {p.duration for p in own} for d in durations)


def test_transition_to_the_next_green_is_the_programs_own():
    sig = _signal(PROGRAM)
    assert sig.transition(0, 2) == [("yyrryyrr", 4)]
    assert sig.transition(2, 5) == [("rryyrrrr", 3), ("rrrrrrrr", 2)]


def test_transitions_on_real_programs(resco):
    network = read_network(resco("grid4x4").parent / "grid4x4.net.xml")
    for intersection in network.intersections.values():
        sig = _signal(intersection.phases)
        for src in sig.green_indices:
            for dst in sig.green_indices:
                for state, duration in sig.transition(src, dst):
                    assert len(state) == len(intersection.phases[0].state)
                    assert duration > 0


@pytest.fixture
def reference():
    network = read_network(load_scenario("single").net_file)
    intersection = next(iter(network.intersections.values()))
    return intersection


def _program(intersection, phases):
    return TimingPlan(intersection.tls_id, "test", phases)


def test_the_networks_own_program_is_safe(reference):
    assert violations(_program(reference, reference.phases), reference.phases) == []


def test_changed_state_string_is_rejected(reference):
    phases = list(reference.phases)
    g = next(i for i, p in enumerate(phases) if p.is_green)
    phases[g] = replace(phases[g], state="G" * len(phases[g].state))
    with pytest.raises(UnsafePlanError, match="differs from the network"):
        validate(_program(reference, tuple(phases)), reference.phases)


def test_shortened_yellow_is_rejected(reference):
    phases = list(reference.phases)
    y = next(i for i, p in enumerate(phases) if p.kind == "yellow")
    phases[y] = replace(phases[y], duration=phases[y].duration - 1)
    with pytest.raises(UnsafePlanError, match="must stay"):
        validate(_program(reference, tuple(phases)), reference.phases)


def test_green_below_minimum_is_rejected(reference):
    phases = list(reference.phases)
    g = next(i for i, p in enumerate(phases) if p.is_green)
    phases[g] = replace(phases[g], duration=1.0, min_dur=1.0)
    with pytest.raises(UnsafePlanError, match="below its minimum"):
        validate(_program(reference, tuple(phases)), reference.phases)


def test_reordered_or_missing_phases_are_rejected(reference):
    phases = reference.phases
    assert violations(_program(reference, phases[1:] + phases[:1]), phases)
    assert violations(_program(reference, phases[:-1]), phases)
