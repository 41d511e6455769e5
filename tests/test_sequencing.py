"""The sequencer's decisions against readings chosen here: skips, order, maximum red, spillback.

No SUMO: the signal's API and the detectors are fakes, so each rule is tested on its own. The
safety of what SUMO then shows is tested on real runs (test_adaptive_sequencing.py).
"""

from __future__ import annotations

import pytest

from citybrain_traffic.control.sensing import QueueLayout
from citybrain_traffic.control.sequencing import GreenSequencer
from citybrain_traffic.control.signal import TrafficSignal
from citybrain_traffic.network import read_network
from citybrain_traffic.scenario import load_scenario

# The bundled `single` junction: 0 north-south through (left permitted), 2 north-south left,
# 5 east-west through (left permitted), 7 east-west left.
NS_THROUGH, NS_LEFT, EW_THROUGH, EW_LEFT = 0, 2, 5, 7


class FakeTrafficLight:
    def __init__(self):
        self.shown = []

    def setRedYellowGreenState(self, tls, state):  # noqa: N802 (TraCI's name)
        self.shown.append(state)

    def getPhase(self, tls):  # noqa: N802
        return NS_THROUGH

    def getSpentDuration(self, tls):  # noqa: N802
        return 0.0


class FakeApi:
    def __init__(self):
        self.trafficlight = FakeTrafficLight()


class Readings:
    """Vehicles and halting vehicles per lane, and vehicle positions, as the test sets them."""

    def __init__(self, first_links=None):
        self.vehicles_on, self.halting_on, self.near = {}, {}, {}
        self.first_links = first_links or {}  # lane -> (signal, link) its front vehicle wants

    def lane_counts(self, lanes):
        return (
            {lane: self.vehicles_on.get(lane, 0) for lane in lanes},
            {lane: self.halting_on.get(lane, 0) for lane in lanes},
        )

    def approaching(self, lanes):
        return {lane: self.near.get(lane, []) for lane in lanes}

    def waiting_fronts(self, lanes):
        return {
            lane: (self.first_links[lane], 0.0)
            if self.halting_on.get(lane, 0) and lane in self.first_links
            else None
            for lane in lanes
        }

    def queue(self, lane, n):
        self.vehicles_on[lane] = self.halting_on[lane] = n


@pytest.fixture(scope="module")
def network():
    return read_network(load_scenario("single").net_file)


def _sequencer(network, sequence="free", max_red_s=None):
    intersection = network.intersections["C"]
    signal = TrafficSignal(FakeApi(), intersection, intersection.phases)
    first = {}
    for link in intersection.links:
        first.setdefault(link.in_lane, ("C", link.index))
    readings = Readings(first)
    sequencer = GreenSequencer(
        {"C": signal},
        network,
        QueueLayout.of(network),
        readings,
        sequence=sequence,
        max_red_s=max_red_s,
    )
    sequencer.start(0.0)
    return sequencer, signal, readings


def _run(sequencer, signal, start, end):
    """Step the sequencer each second; return the greens it served, in order."""
    served = [signal.current]
    for now in range(start, end):
        sequencer.step(float(now))
        signal.update(float(now))
        if not signal.in_transition and signal.current != served[-1]:
            served.append(signal.current)
    return served


def test_free_sequence_skips_empty_greens_and_goes_where_vehicles_wait(network):
    sequencer, signal, readings = _sequencer(network)
    readings.queue("E_C_bay_2", 6)  # east-west left only
    served = _run(sequencer, signal, 0, 40)
    assert served[:2] == [NS_THROUGH, EW_LEFT]  # straight there, skipping 2 and 5


def test_cyclic_sequence_keeps_the_programs_order_with_skips(network):
    sequencer, signal, readings = _sequencer(network, sequence="cyclic")
    readings.queue("E_C_bay_2", 6)  # east-west left (7)
    readings.queue("S_C_bay_2", 6)  # north-south left (2)
    served = _run(sequencer, signal, 0, 60)
    # 2 before 7, as in the program; then 5, which lets the east-west left go on permitted green.
    assert served[:3] == [NS_THROUGH, NS_LEFT, EW_THROUGH]


def test_a_discharging_queue_keeps_its_green(network):
    sequencer, signal, readings = _sequencer(network)
    readings.queue("N_C_bay_0", 8)  # the running green's own queue
    readings.queue("E_C_bay_2", 1)  # one car elsewhere
    served = _run(sequencer, signal, 0, 8)
    assert served == [NS_THROUGH]


def test_a_waiting_vehicle_gets_green_by_the_maximum_red(network):
    sequencer, signal, readings = _sequencer(network, max_red_s=30.0)
    for lane in ("N_C_bay_0", "N_C_bay_1", "S_C_bay_0", "S_C_bay_1"):
        readings.queue(lane, 20)  # a running green that would never end on its own
    readings.queue("E_C_bay_1", 1)
    switched_at = None
    for now in range(0, 60):
        sequencer.step(float(now))
        signal.update(float(now))
        if signal.current == EW_THROUGH and not signal.in_transition:
            switched_at = now
            break
    assert switched_at is not None and switched_at <= 30
    assert sequencer.report()["C"]["forced_by_max_red"] >= 1


def test_a_link_into_a_full_lane_counts_nothing(network):
    sequencer, signal, readings = _sequencer(network)
    readings.queue("E_C_bay_1", 5)  # east-west through, towards C_W_1
    readings.queue("C_W_1", 1000)  # the way out is full
    readings.queue("C_W_0", 1000)
    served = _run(sequencer, signal, 0, 30)
    assert EW_THROUGH not in served


def test_a_green_is_held_while_the_queue_it_was_started_for_discharges(network):
    sequencer, signal, readings = _sequencer(network)
    readings.queue("E_C_bay_2", 6)  # 6 cars on one lane: 12 s at saturation flow
    started = None
    for now in range(0, 60):
        sequencer.step(float(now))
        signal.update(float(now))
        if started is None and signal.current == EW_LEFT and not signal.in_transition:
            started = now
            for lane in ("N_C_bay_0", "N_C_bay_1", "S_C_bay_0", "S_C_bay_1"):
                readings.queue(lane, 20)  # a far bigger queue elsewhere, from now on
        if started is not None and signal.current != EW_LEFT:
            break
    assert started is not None
    # Without the hold it would leave at its 5 s minimum green for the bigger queue.
    assert now - started >= 11
