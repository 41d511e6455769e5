"""The longest red a waiting vehicle saw (``harness.max_red``), on a scripted stand-in for SUMO."""

from __future__ import annotations

import pytest

from citybrain_traffic.harness.max_red import MaxRedMeter, sample_period


class _Sumo:
    """Signal ``T``: links 0 (left) and 1 (through) from the shared lane ``a``, link 2 from ``b``,
    link 3 a crossing from a walking area. Tests set the state and the vehicles."""

    def __init__(self):
        self.now = 0.0
        self.state = "rrrr"
        self.lanes: dict[str, list[str]] = {"a": [], "b": []}  # back to front
        self.stopped: dict[str, float | None] = {}  # since when each vehicle stands (s)
        self.next_link: dict[str, int] = {}
        self.calls: list[str] = []
        self.trafficlight = self.lane = self.vehicle = self

    def getControlledLinks(self, tls):
        return [[("a", "x", "")], [("a", "y", "")], [("b", "y", "")], [(":T_w0_0", ":T_c0", "")]]

    def getRedYellowGreenState(self, tls):
        return self.state

    def getLastStepHaltingNumber(self, lane):
        self.calls.append(lane)
        return sum(self.stopped[v] is not None for v in self.lanes[lane])

    def getLastStepVehicleIDs(self, lane):
        return tuple(self.lanes[lane])

    def getWaitingTime(self, vehicle):
        since = self.stopped[vehicle]
        return 0.0 if since is None else self.now - since

    def getNextTLS(self, vehicle):
        return (("T", self.next_link[vehicle], 1.0, self.state[self.next_link[vehicle]]),)

    def arrive(self, vehicle: str, lane: str, link: int, *, rolling: bool = False) -> None:
        self.lanes[lane].insert(0, vehicle)  # at the back of the queue
        self.stopped[vehicle] = None if rolling else self.now
        self.next_link[vehicle] = link

    def leave(self, vehicle: str) -> None:
        for queue in self.lanes.values():
            if vehicle in queue:
                queue.remove(vehicle)


def _play(sumo: _Sumo, script: dict[int, object], end: int) -> dict[str, float]:
    """Sample every second up to ``end``; at each second of ``script`` first run its action."""
    meter = MaxRedMeter(sumo, ["T"])
    for t in range(1, end + 1):
        sumo.now = float(t)
        action = script.get(t)
        if action is not None:
            action()
        meter.sample(float(t))
    return meter.finish(float(end))


def _set(sumo: _Sumo, state: str):
    return lambda: setattr(sumo, "state", state)


def test_a_shared_lane_counts_only_the_link_its_front_vehicle_waits_for():
    """The through vehicle in front waits behind a green it cannot take (blocked): the left turn
    beside it is red for 30 s, but no vehicle waits at the stop line for it."""
    sumo = _Sumo()
    sumo.state = "rGrr"
    sumo.arrive("through", "a", 1)
    sumo.arrive("left", "a", 0)  # behind: not at the front
    assert _play(sumo, {31: _set(sumo, "Grrr")}, 40) == {"T": 9.0}


def test_a_red_counts_from_the_first_vehicle_halting_to_the_next_green():
    """The stop lines are looked at every 5 s: a vehicle found there counts since it stopped."""
    sumo = _Sumo()
    sumo.state = "GGrr"

    def halts():
        sumo.stopped["v"] = sumo.now

    script = {
        5: lambda: sumo.arrive("v", "b", 2, rolling=True),  # rolling up: not waiting yet
        8: halts,
        40: _set(sumo, "rrGr"),
        41: lambda: sumo.leave("v"),
    }
    assert _play(sumo, script, 60) == {"T": 32.0}


def test_a_vehicle_standing_before_the_red_counts_from_the_red():
    sumo = _Sumo()
    sumo.state = "GGGr"
    sumo.arrive("v", "b", 2)  # blocked on its green
    assert _play(sumo, {10: _set(sumo, "GGyr"), 13: _set(sumo, "GGrr")}, 30) == {"T": 20.0}


def test_yellow_holds_and_a_red_still_running_at_the_end_counts_to_the_end():
    sumo = _Sumo()
    sumo.state = "yyrr"
    sumo.arrive("v", "a", 0)
    assert _play(sumo, {10: _set(sumo, "rrrr")}, 50) == {"T": 49.0}


@pytest.mark.parametrize("served", ["g", "s", "o", "O"])
def test_a_link_that_may_go_is_not_red(served):
    """Permitted green, green arrow after a stop, signal off: the vehicle yields, it may go."""
    sumo = _Sumo()
    sumo.state = "rrrr"
    sumo.arrive("v", "b", 2)
    assert _play(sumo, {5: _set(sumo, f"rr{served}r")}, 30) == {"T": 4.0}


def test_a_lane_whose_front_vehicle_waits_is_not_asked_again_until_it_is_served():
    sumo = _Sumo()
    sumo.state = "rrGr"
    sumo.arrive("v", "a", 0)
    _play(sumo, {}, 100)
    # Lane b is green: never asked; lane a once; the crossing's walking area is no vehicle's.
    assert sumo.calls == ["a"]


@pytest.mark.parametrize("step, period", [(1.0, 1.0), (0.5, 1.0), (0.3, 1.2), (2.0, 2.0)])
def test_samples_are_whole_steps_at_least_a_second_apart(step, period):
    assert sample_period(step) == pytest.approx(period)


def test_the_comparison_shows_the_worst_seed_beside_or_below_the_table():
    """A bound must hold on every run: the comparison shows the longest red over the seeds, as a
    column where the terminal has room for it, else on a line below the table."""
    import io

    import pandas as pd
    from rich.console import Console

    from citybrain_traffic.harness.stats import SUMMARY_COLUMNS, comparison
    from citybrain_traffic.report import comparison_markdown, comparison_rich
    from citybrain_traffic.sim.metrics import KPI_COLUMNS

    summary = pd.DataFrame(
        [
            {**dict.fromkeys(SUMMARY_COLUMNS, 0.0), "controller": "fixed", "seed": 1},
            {**dict.fromkeys(SUMMARY_COLUMNS, 0.0), "controller": "fixed", "seed": 2},
        ]
    ).assign(scenario="s", max_red_s=[40.0, 70.0])
    table = comparison(summary, metrics=list(KPI_COLUMNS), baseline="fixed")
    assert table.loc[0, "max_red_s"] == 70.0
    markdown = comparison_markdown(table, baseline="fixed").splitlines()
    assert markdown[0].endswith("| Max red s |") and markdown[2].endswith("| 70 |")

    def shown(width: int) -> str:
        console = Console(file=io.StringIO(), width=width)
        console.print(comparison_rich(table, baseline="fixed", title="t"))
        return console.file.getvalue()

    assert "Max red s ┃" in shown(200) and "worst seed" not in shown(200)
    assert "Max red s ┃" not in shown(100) and "Max red s (worst seed): fixed 70" in shown(100)
