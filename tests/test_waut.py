"""SUMO WAUT export: the schedule file's shape, and real SUMO switching programs at its times."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from citybrain_traffic.errors import InputError
from citybrain_traffic.optimize import DEFAULT_CYCLE_MAX_S
from citybrain_traffic.plans.waut import ProgramSwitch, waut_xml
from citybrain_traffic.safety import run_violations
from citybrain_traffic.sim.additionals import tls_state_output_xml
from citybrain_traffic.sim.session import sumo_binary

from conftest import run_cli
from test_tod import TUESDAY, corridor_flows, counts_of_days  # noqa: F401 (a fixture)

MONDAY = TUESDAY - pd.Timedelta(days=1)
DAY_S = 86_400


def test_waut_names_the_program_running_at_midnight():
    root = ET.fromstring(
        waut_xml(
            [ProgramSwitch(79200, "night"), ProgramSwitch(25200, "day")],
            ["A", "B"],
            period_s=DAY_S,
        )
    )
    waut = root.find("WAUT")
    assert waut.get("startProg") == "night" and waut.get("period") == "86400"
    assert [(s.get("time"), s.get("to")) for s in waut.findall("wautSwitch")] == [
        ("25200", "day"),
        ("79200", "night"),
    ]
    assert [j.get("junctionID") for j in root.findall("wautJunction")] == ["A", "B"]
    assert {j.get("wautID") for j in root.findall("wautJunction")} == {waut.get("id")}
    with_midnight = waut_xml(
        [ProgramSwitch(0, "a"), ProgramSwitch(600, "b")], ["A"], period_s=DAY_S
    )
    assert 'startProg="a"' in with_midnight


@pytest.mark.parametrize(
    "switches",
    [[], [ProgramSwitch(10, "a"), ProgramSwitch(10, "b")], [ProgramSwitch(DAY_S, "a")]],
)
def test_waut_refuses_bad_switches(switches):
    with pytest.raises(InputError):
        waut_xml(switches, ["A"], period_s=DAY_S)


@pytest.fixture(scope="module")
def two_weeks(corridor_flows, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    """``optimize --tod`` on 14 days from a Monday, weekends at 60% of the weekdays' flows."""
    flows, network = corridor_flows
    folder = tmp_path_factory.mktemp("tod-weeks")
    days = {MONDAY + pd.Timedelta(days=d): (0.6 if d % 7 >= 5 else 1.0) for d in range(14)}
    path = folder / "counts.csv"
    counts_of_days(flows, days).to_csv(path, index=False)
    out = folder / "out"
    proc = run_cli("optimize", "corridor", "--counts", path, "--tod", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, network, pd.read_csv(out / "tod_schedule.csv")


def _program_at(schedule: pd.DataFrame, t: int) -> str:
    """The program the schedule table puts in force at simulation time t (0 = Monday 00:00)."""
    kind = "weekday" if (t // DAY_S) % 7 < 5 else "weekend"
    second = t % DAY_S
    for _, row in schedule[schedule["day_type"] == kind].drop_duplicates("program_id").iterrows():
        start, end = (int(row[c][:2]) * 3600 + int(row[c][3:]) * 60 for c in ("start", "end"))
        if (second - start) % DAY_S < ((end - start) % DAY_S or DAY_S):
            return row["program_id"]
    raise AssertionError(f"no period covers {t}")


def _sumo_programs(out, network, tmp_path, begin: int, end: int) -> list[tuple[float, float, str]]:
    """Run SUMO on the plans and the WAUT; (begin, end, program) of every J1 green interval."""
    events = tmp_path / "events.add.xml"
    log = tmp_path / f"switches-{begin}.xml"
    events.write_text(
        f'<additional><timedEvent type="SaveTLSSwitchTimes" source="J1" dest="{log}"/></additional>'
    )
    _run_sumo(out, network, events, begin, end)
    return [
        (float(e.get("begin")), float(e.get("end")), e.get("programID"))
        for e in ET.parse(log).getroot().iter("tlsSwitch")
    ]


def test_waut_repeats_every_week(two_weeks):
    out, _, _ = two_weeks
    waut = ET.parse(out / "tod_waut.add.xml").getroot().find("WAUT")
    assert waut.get("period") == str(7 * DAY_S)
    times = [int(s.get("time")) for s in waut.findall("wautSwitch")]
    assert times == sorted(times) and 5 * DAY_S in times  # Saturday 00:00: the weekend plans


def test_sumo_switches_programs_at_the_schedules_times(two_weeks, tmp_path):
    out, network, schedule = two_weeks
    weekday = schedule[schedule["day_type"] == "weekday"].drop_duplicates("program_id")
    am = next(r for _, r in weekday.iterrows() if r["period"] == "AM peak")
    weekend_pm = schedule[(schedule["day_type"] == "weekend") & (schedule["period"] == "PM peak")]
    moments = [
        DAY_S + int(am["start"][:2]) * 3600 + int(am["start"][3:]) * 60,  # Tuesday's AM peak
        5 * DAY_S,  # Friday night -> Saturday's plans
        6 * DAY_S
        + int(weekend_pm["start"].iloc[0][:2]) * 3600
        + int(weekend_pm["start"].iloc[0][3:]) * 60,  # Sunday's PM peak
    ]
    for t in moments:
        before, after = _program_at(schedule, t - 1), _program_at(schedule, t)
        assert before != after
        greens = _sumo_programs(out, network, tmp_path, t - 300, t + 2 * DEFAULT_CYCLE_MAX_S)
        assert {p for b, e, p in greens if e <= t} == {before}, t
        # SUMO switches at the end of the running cycle (the GSP procedure): within a cycle.
        assert {p for b, e, p in greens if b >= t + DEFAULT_CYCLE_MAX_S} == {after}, t
        assert after in {p for b, e, p in greens if b <= t + DEFAULT_CYCLE_MAX_S}, t


def test_sumo_repeats_the_week(two_weeks, tmp_path):
    """Through Sunday's last switch into the next Monday: SUMO wraps to the first switch.

    (SUMO schedules a WAUT's switches from simulation time 0 on: a run must begin before the
    first period's last switch, see ``waut_xml``.)
    """
    out, network, schedule = two_weeks
    waut = ET.parse(out / "tod_waut.add.xml").getroot().find("WAUT")
    last = max(int(s.get("time")) for s in waut.findall("wautSwitch"))
    t = 7 * DAY_S
    greens = _sumo_programs(out, network, tmp_path, last - 100, t + 2 * DEFAULT_CYCLE_MAX_S)
    later = last + DEFAULT_CYCLE_MAX_S  # the switch at `last` waits for the end of a cycle
    assert {p for b, e, p in greens if later <= b and e <= t} == {_program_at(schedule, t - 1)}
    assert {p for b, e, p in greens if b >= t + DEFAULT_CYCLE_MAX_S} == {_program_at(schedule, t)}
    assert _program_at(schedule, t - 1) != _program_at(schedule, t)


def test_sumo_keeps_the_safety_envelope_through_the_switches(two_weeks, tmp_path):
    """Every program change SUMO makes by the WAUT plays the yellow and all-red and the
    minimum greens (checked on the states SUMO showed, as every run is)."""
    out, network, schedule = two_weeks
    states = tmp_path / "states.xml"
    recorder = tmp_path / "states.add.xml"
    recorder.write_text(tls_state_output_xml(list(network.intersections), states))
    switches = sorted({int(s) for s in _switch_times(out)} - {0})
    begin, end = switches[0] - 600, switches[2] + 600  # the first day's first three switches
    _run_sumo(out, network, recorder, begin, end)
    assert run_violations(states, network, [out / "tod_plans.add.xml"]) == []


def _run_sumo(out, network, extra, begin: int, end: int) -> None:
    """Run SUMO on the network with the schedule's programs, its WAUT and ``extra``."""
    files = (out / "tod_plans.add.xml", out / "tod_waut.add.xml", extra)
    command = [sumo_binary(), "-n", str(network.path), "-a", ",".join(map(str, files))]
    command += ["--begin", str(begin), "--end", str(end), "--no-step-log"]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _switch_times(out) -> list[str]:
    waut = ET.parse(out / "tod_waut.add.xml").getroot().find("WAUT")
    return [s.get("time") for s in waut.findall("wautSwitch")]


def test_ctraffic_simulate_runs_the_schedule(two_weeks, tmp_path):
    """``tod.sumocfg`` runs the scenario under the schedule, safety-checked like every run."""
    out, _, _ = two_weeks
    proc = run_cli(
        "simulate", out / "tod.sumocfg", "-c", "fixed", "--seeds", "1", "--out", tmp_path / "run"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    assert summary["safety_violations"].tolist() == [0]
    assert summary["vehicles_arrived"].iloc[0] > 0
