"""``ctraffic optimize``'s schedule candidates: the ``optimized`` controller's 15-minute plans,
each valid for its period, written so that SUMO (by a WAUT) and ``adapter sumo --plans`` run
them in turn."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest

from citybrain_traffic.cli._optimize_schedule import (
    SCHEDULE_DESIGN,
    ScheduleOutput,
    schedule_candidates,
    schedule_label,
    schedule_plans,
)
from citybrain_traffic.control.optimized import (
    OptimizedController,
    cycle_floors,
    periods_from_routes,
)
from citybrain_traffic.flows import route_demand
from citybrain_traffic.network import read_network
from citybrain_traffic.optimize import DEFAULT_CYCLE_MAX_S
from citybrain_traffic.optimize.sheet import timing_sheet, timing_summary, write_outputs
from citybrain_traffic.plans import read_plans
from citybrain_traffic.safety import run_violations
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.service.adapter import schedule_from
from citybrain_traffic.sim.additionals import tls_state_output_xml
from citybrain_traffic.sim.session import sumo_binary

END_S = 3600.0


@pytest.fixture(scope="module")
def single_schedules(tmp_path_factory):
    """The schedule candidates of `single`'s first hour, with what they were made from."""
    sc = load_scenario("single")
    network = read_network(sc.net_file)
    folder = tmp_path_factory.mktemp("schedule")
    routed = route_demand(sc, folder)
    periods = periods_from_routes(routed, network, begin=0.0, end=END_S)
    found = schedule_candidates(network, periods, end_s=END_S, demand={"source": "test"})
    return sc, network, periods, found, folder


def test_the_candidates_are_the_optimized_controllers_plans(single_schedules):
    sc, network, periods, found, folder = single_schedules
    assert [start for start, _ in periods] == [0.0, 900.0, 1800.0, 2700.0]
    assert list(found) == [schedule_label(label) for label in cycle_floors()]
    for k, (floor, (periods_, shown)) in enumerate(zip(cycle_floors().values(), found.values())):
        workdir = folder / f"optimized-{k}"
        workdir.mkdir()
        controller = OptimizedController(cycle_floor_s=floor, periods=periods).fit(
            sc, network, workdir, demand_scale=1.0
        )
        runs = [(t, p.tls_id, p.phases, p.offset) for t, p in controller.setup_.schedule]
        plans = schedule_plans(periods_)
        assert [
            (p.start_s, q.tls_id, q.phases, q.offset) for p in periods_ for q in p.plans
        ] == runs
        # Each plan is valid for its own quarter: `adapter sumo --plans` starts it there.
        assert [t for t, _ in schedule_from(plans, begin=0.0, end=END_S)] == [t for t, *_ in runs]
        assert {p.provenance["demand"]["design"] for p in plans} == {SCHEDULE_DESIGN}
        busiest = max(range(4), key=lambda k: periods[k][1]["flow_veh_h"].sum())
        assert shown == busiest


def test_a_written_schedule_runs_in_sumo_by_its_waut_within_the_envelope(
    single_schedules, tmp_path
):
    sc, network, _, found, _ = single_schedules
    periods_, shown = found[schedule_label("the model's cycle")]
    output = ScheduleOutput(tuple(periods_), shown, END_S, schedule_plans(periods_))
    sheet_plans, timings = list(periods_[shown].plans), periods_[shown].timings
    written = write_outputs(
        tmp_path,
        sheet_plans,
        network,
        timing_sheet(sheet_plans, timings, network),
        timing_summary(sheet_plans, timings),
        schedule=output.plans,
    )
    written += output.write(tmp_path)
    assert {p.name for p in written} >= {"plans.add.xml", "schedule.csv", "plans_waut.add.xml"}
    assert len(read_plans(tmp_path / "plans.json")) == 4

    switches, states = tmp_path / "switches.xml", tmp_path / "states.xml"
    events = tmp_path / "events.add.xml"
    events.write_text(
        f'<additional><timedEvent type="SaveTLSSwitchTimes" source="C" dest="{switches}"/>'
        "</additional>"
    )
    recorder = tmp_path / "states.add.xml"
    recorder.write_text(tls_state_output_xml(list(network.intersections), states))
    files = [tmp_path / "plans.add.xml", tmp_path / "plans_waut.add.xml", events, recorder]
    command = [sumo_binary(), "-n", str(network.path), "-a", ",".join(map(str, files))]
    command += ["--begin", "0", "--end", f"{END_S:g}", "--no-step-log"]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    greens = [
        (float(e.get("begin")), float(e.get("end")), e.get("programID"))
        for e in ET.parse(switches).getroot().iter("tlsSwitch")
    ]
    stops = [p.start_s for p in periods_[1:]] + [END_S]
    for period, stop in zip(periods_, stops):
        (program,) = {p.program_id for p in period.plans}
        # SUMO switches at the end of the running cycle (GSP): within a cycle of the period.
        inside = {
            p for b, e, p in greens if b >= period.start_s + DEFAULT_CYCLE_MAX_S and e <= stop
        }
        assert inside == {program} and program in {p for b, _, p in greens if b < stop}
    assert run_violations(states, network, [tmp_path / "plans.add.xml"]) == []
