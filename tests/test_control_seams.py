"""The control loop's arithmetic and failure policy, against fake sensing: no SUMO, milliseconds.

What a controller reads from SUMO goes through the ``Sensing`` protocol, so the queue sharing,
the forecast fallback and the failure policy are tested with readings chosen here.
"""

from __future__ import annotations


import pandas as pd
import pytest

from citybrain_traffic.control.adaptive import AdaptiveController
from citybrain_traffic.control.base import Controller, SimSetup
from citybrain_traffic.control.sensing import QueueLayout, Sensing
from citybrain_traffic.network import read_network
from citybrain_traffic.scenario import load_scenario


class FakeSensing:
    """Readings chosen by the test."""

    def __init__(self, counts, halting=None):
        self.counts, self.halts = counts, halting or {}

    def interval_counts(self):
        return dict(self.counts)

    def halting(self, lanes):
        return {lane: self.halts.get(lane, 0) for lane in lanes}

    def vehicles(self, lanes):
        return self.halting(lanes)

    def approaching(self, lanes):
        return {lane: [] for lane in lanes}


class FakeSwitcher:
    def __init__(self):
        self.submitted, self.log = [], []

    def submit(self, plan, now, hold_offset=False):
        self.submitted.append(plan)

    def step(self, now):
        return None


class Forecaster:
    def __init__(self, count=None, error=None):
        self.count, self.error = count, error

    def predict(self, counts, *, at, horizons):
        if self.error:
            raise self.error
        keys = counts[["intersection", "movement"]].drop_duplicates()
        return keys.assign(horizon_min=horizons[0], p10=0.0, p50=self.count, p90=0.0)


def test_a_lanes_queue_is_shared_by_its_movements_counts():
    layout = QueueLayout(
        movement_lanes={("C", "a"): ["L1"], ("C", "b"): ["L1"], ("C", "c"): ["L2"]},
        lane_movements={"L1": {("C", "a"), ("C", "b")}, "L2": {("C", "c")}},
        # L1's approach: itself and an upstream lane it shares with L2.
        queue_lanes={"L1": [("L1", 1.0), ("U", 0.5)], "L2": [("L2", 1.0), ("U", 0.5)]},
    )
    assert layout.approach_lanes == ["L1", "L2", "U"]
    halting = {"L1": 6, "L2": 1, "U": 4}
    queued = {(t, m): q for t, m, q in layout.queued({("C", "a"): 3, ("C", "b"): 1}, halting)}
    assert queued == {("C", "a"): 6.0, ("C", "b"): 2.0, ("C", "c"): 3.0}
    # Nothing counted on a lane: its queue is shared evenly.
    even = {(t, m): q for t, m, q in layout.queued({}, halting)}
    assert even[("C", "a")] == even[("C", "b")] == 4.0


def test_fake_sensing_satisfies_the_protocol():
    sensing: Sensing = FakeSensing({("C", "a"): 2})
    assert sensing.interval_counts() == {("C", "a"): 2}


@pytest.fixture(scope="module")
def network():
    return read_network(load_scenario("single").net_file)


def _running(network, forecaster, counts):
    """An adaptive controller mid-run, as ``start`` leaves it, on fakes (plans as programs)."""
    controller = AdaptiveController(sequence="plan")
    controller.sequencer = None
    controller.layout_ = QueueLayout.of(network)
    controller.begin_s_ = 0.0
    controller.blind_ = {}
    controller.hold_offsets_ = False
    controller.network = network
    controller.sensing = FakeSensing(counts)
    controller.forecaster = forecaster
    controller.switcher = FakeSwitcher()
    controller.counts_seen = []
    controller.plans_log = []
    controller.failure_count = 0
    controller.next_plan = 901.0
    return controller


def _counts(network):
    return {(tls, link.movement): 5 for tls, i in network.intersections.items() for link in i.links}


def test_a_forecast_replans_every_signal(network):
    controller = _running(network, Forecaster(count=7.0), _counts(network))
    controller.step(901.0)
    assert controller.failures() == 0
    assert {p.tls_id for p in controller.switcher.submitted} == set(network.intersections)
    assert {r["forecast"] for r in controller.report()["plans"]} == {"lightgbm"}


@pytest.mark.parametrize(
    "forecaster, stage",
    [
        (Forecaster(error=RuntimeError("model file vanished")), "forecast failed"),
        # A negative forecast reaches the optimizer, which refuses it.
        (Forecaster(count=-50.0), "optimization failed"),
    ],
)
def test_a_failed_decision_keeps_the_running_plans_and_is_logged(network, forecaster, stage):
    controller = _running(network, forecaster, _counts(network))
    wake = controller.step(901.0)
    assert controller.switcher.submitted == []  # the running plans stay
    assert controller.failures() == 1 and wake == 901.0 + 900.0
    (entry,) = controller.report()["plans"]
    assert entry["failed"].startswith(stage) and entry["kept"] == "the running plans"


def test_without_a_forecaster_the_recent_mean_is_the_forecast(network):
    controller = _running(network, None, {})
    stamp = pd.Timestamp("2026-01-05 06:00")
    counts = pd.DataFrame(
        [(stamp, "C", "a", 4), (stamp + pd.Timedelta(minutes=15), "C", "a", 8)],
        columns=["timestamp", "intersection", "movement", "count"],
    )
    forecast, source = controller.forecast(counts, stamp + pd.Timedelta(minutes=30))
    assert source == "recent mean" and forecast["count"].tolist() == [6.0]


def test_controllers_follow_the_estimator_convention():
    controller = AdaptiveController(interval_min=10.0, offsets="held")
    assert controller.get_params()["interval_min"] == 10.0
    twin = controller.clone(offsets="free")
    assert (twin.interval_min, twin.offsets, controller.offsets) == (10.0, "free", "held")
    assert not hasattr(twin, "setup_") and twin.setup == SimSetup()
    with pytest.raises(Exception, match="no option 'speed'"):
        controller.set_params(speed=3)
    assert Controller().get_params() == {}
