"""Webster baseline: static plans from SUMO's tlsCycleAdaptation.py, or our own where it fails."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Self

import pandas as pd

from ..errors import SimulationError
from ..flows import flows_from_routes, route_demand
from ..network import clearance_times
from ..optimize.demand import flows_by_signal, intersection_demand
from ..optimize.webster import webster_timing
from ..plans import read_tl_logics, violations, with_clearances_of, write_tl_logics
from ..sim.session import run_sumo_tool, sumo_tool
from .base import Controller, SimSetup

if TYPE_CHECKING:
    from ..network import Network
    from ..scenario import Scenario

#: tlsCycleAdaptation evaluates one hour of demand (Webster's method is defined on hourly flows).
_WEBSTER_PERIOD_S = 3600.0
#: Step between the candidate peak hours of our own Webster (s): the counting interval.
_STEP_S = 900.0


class WebsterController(Controller):
    """Fixed-time Webster plans (cycle and splits), from SUMO's tool or our own.

    SUMO's ``tlsCycleAdaptation.py`` where it works, our own ``optimize.webster`` elsewhere.

    The demand is routed first (the tool reads only routed vehicles), scaled like the run and cut to
    the window; over a window longer than an hour the tool plans for the peak hour. The tool writes
    one yellow time for every signal and assumes 1,800 veh/h per lane (its default saturation
    headway of 2 s); each signal gets its own change intervals back, so the plan keeps the
    network's clearances, and every program is validated before it is used. Where the tool fails
    (it crashes on signals with unused states), writes no plan for a signal with demand, or writes
    one below a minimum green, that signal is timed by ``optimize.webster.webster_timing`` from the
    same routed demand's peak hour; the notes say which signals.
    """

    replaces_programs = True
    name = "webster"
    description = "static Webster plans from SUMO's tlsCycleAdaptation.py (peak hour of the demand)"

    def fit(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Self:
        """Write the programs the runs load; return self.

        Learns ``tool_failed_`` (SUMO's tool gave no plan at all), ``refused_`` (signal -> why
        the tool's plan was refused) and ``ours_`` (signals timed by our own Webster).
        """
        routed = route_demand(scenario, workdir, demand_scale=demand_scale)
        notes = []
        self.tool_failed_ = False
        try:
            tool_programs = self._tool_programs(scenario, network, routed, workdir)
        except SimulationError as exc:
            tool_programs = {}
            self.tool_failed_ = True
            notes.append(
                f"webster: SUMO's tool failed ({_tail(exc)}); every signal timed by our Webster"
            )
        programs, refused = {}, []
        self.refused_: dict[str, str] = {}
        for tls, program in tool_programs.items():
            problems = violations(program, network.intersections[tls].phases)
            if problems:
                self.refused_[tls] = problems[0]
                refused.append(f"{tls} ({problems[0]})")
            else:
                programs[tls] = program
        flows = _peak_hour_flows(routed, network, scenario)
        served = set(flows["intersection"])
        ours = [tls for tls in network.intersections if tls not in programs and tls in served]
        self.ours_ = ours
        for tls in ours:
            intersection = network.intersections[tls]
            demand = intersection_demand(
                intersection, network.lanes, flows_by_signal(flows).get(tls, {})
            )
            programs[tls] = webster_timing(intersection, demand).plan(
                intersection, program_id="ctraffic-webster"
            )
        if not programs:
            raise SimulationError(
                "no Webster plan: no routed vehicle crosses a signal in the window"
            )
        path = write_tl_logics(workdir / "webster.add.xml", list(programs.values()))
        cycles = sorted(round(p.cycle_s) for p in programs.values())
        notes.append(f"webster: cycles {cycles[0]}-{cycles[-1]} s over {len(programs)} signals")
        if refused:
            notes.append(
                f"webster: SUMO's tool plan refused for {len(refused)} signal(s): "
                + "; ".join(refused[:3])
            )
        if ours and tool_programs:
            notes.append(
                f"webster: {len(ours)} signal(s) timed by our Webster instead of SUMO's tool: "
                + ", ".join(ours[:8])
            )
        kept = len(network.intersections) - len(programs)
        if kept:
            notes.append(f"webster: {kept} signals without demand keep the network's program")
        self.setup_ = SimSetup(additional_files=(path,), notes=tuple(notes))
        return self

    @staticmethod
    def _tool_programs(scenario, network, routed: Path, workdir: Path) -> dict:
        """SUMO's tlsCycleAdaptation.py plans, with the network's change intervals, per signal."""
        # The tool takes one yellow and one lost time per phase for all signals; give it the
        # network's typical ones (lost time per phase ~ its change interval, as in the HCM).
        yellows = [
            p.duration
            for i in network.intersections.values()
            for p in i.phases
            if p.kind == "yellow"
        ]
        clearances = [
            c for i in network.intersections.values() for c in clearance_times(i.phases) if c > 0
        ]
        out = workdir / "webster-tool.add.xml"
        args = [
            str(sumo_tool("tlsCycleAdaptation.py")),
            "--net-file",
            str(scenario.net_file.resolve()),
            "--route-files",
            str(routed),
            "--output-file",
            str(out),
            "--program",
            "ctraffic-webster",
            "--yellow-time",
            str(round(statistics.median(yellows))) if yellows else "4",
            "--lost-time",
            str(round(statistics.median(clearances))) if clearances else "4",
            "--min-green",
            "5",
        ]
        if scenario.duration_s <= _WEBSTER_PERIOD_S:
            args += ["--begin", f"{scenario.begin:g}"]
        run_sumo_tool(args, cwd=workdir, what="computing Webster plans (tlsCycleAdaptation.py)")
        if not out.is_file():
            return {}
        return {
            program.tls_id: with_clearances_of(
                program, network.intersections[program.tls_id].phases
            )
            for program in read_tl_logics(out)
            if program.tls_id in network.intersections
        }


def _peak_hour_flows(routed: Path, network, scenario) -> pd.DataFrame:
    """Return the hourly movement flows of the window's busiest hour.

    Hours start every 15 minutes; a window shorter than an hour is taken whole.
    """
    end = min(scenario.end, scenario.begin + _WEBSTER_PERIOD_S)
    best = flows_from_routes(routed, network, begin=scenario.begin, end=end)
    start = scenario.begin + _STEP_S
    while start + _WEBSTER_PERIOD_S <= scenario.end + 1e-9:
        flows = flows_from_routes(routed, network, begin=start, end=start + _WEBSTER_PERIOD_S)
        if flows["flow_veh_h"].sum() > best["flow_veh_h"].sum():
            best = flows
        start += _STEP_S
    return best


def _tail(exc: Exception, size: int = 120) -> str:
    """Return the end of an error message, where a Python tool's exception stands."""
    text = " ".join(str(exc).split())
    return text if len(text) <= size else "..." + text[-size:]
