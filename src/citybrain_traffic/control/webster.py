"""Webster baseline: static plans from SUMO's tlsCycleAdaptation.py for the scenario's demand."""

from __future__ import annotations

import statistics
from pathlib import Path

from ..errors import SimulationError
from ..network import clearance_times
from ..plans import read_tl_logics, validate, with_clearances_of, write_tl_logics
from ..flows import route_demand
from ..sim.session import run_sumo_tool, sumo_tool
from .base import Controller, SimSetup

#: tlsCycleAdaptation evaluates one hour of demand (Webster's method is defined on hourly flows).
_WEBSTER_PERIOD_S = 3600.0


class WebsterController(Controller):
    """Fixed-time plans from SUMO's ``tlsCycleAdaptation.py`` (Webster's cycle and splits).

    The demand is routed first (the tool reads only routed vehicles), scaled like the run and cut to
    the window; over a window longer than an hour the tool plans for the peak hour. The tool writes
    one yellow time for every signal and assumes 1,800 veh/h per lane (its default saturation
    headway of 2 s); each signal gets its own change intervals back, so the plan
    keeps the network's clearances, and every program is validated before it is used.
    """

    name = "webster"
    description = "static Webster plans from SUMO's tlsCycleAdaptation.py (peak hour of the demand)"

    def prepare(self, scenario, network, workdir: Path, *, demand_scale: float) -> SimSetup:
        routed = route_demand(scenario, workdir, demand_scale=demand_scale)
        # The tool takes one yellow and one lost time per phase for all signals; give it the
        # network's typical ones (lost time per phase ~ its change interval, as in the HCM).
        yellows = [p.duration for i in network.intersections.values() for p in i.phases if p.kind == "yellow"]
        clearances = [c for i in network.intersections.values() for c in clearance_times(i.phases) if c > 0]
        out = workdir / "webster-tool.add.xml"
        args = [
            str(sumo_tool("tlsCycleAdaptation.py")),
            "--net-file", str(scenario.net_file.resolve()),
            "--route-files", str(routed),
            "--output-file", str(out),
            "--program", "ctraffic-webster",
            "--yellow-time", str(round(statistics.median(yellows))) if yellows else "4",
            "--lost-time", str(round(statistics.median(clearances))) if clearances else "4",
            "--min-green", "5",
        ]
        if scenario.duration_s <= _WEBSTER_PERIOD_S:
            args += ["--begin", f"{scenario.begin:g}"]
        run_sumo_tool(args, cwd=workdir, what="computing Webster plans (tlsCycleAdaptation.py)")

        programs = []
        for program in read_tl_logics(out):
            intersection = network.intersections.get(program.tls_id)
            if intersection is None:
                continue
            program = with_clearances_of(program, intersection.phases)
            programs.append(validate(program, intersection.phases))
        if not programs:
            raise SimulationError(
                "tlsCycleAdaptation.py wrote no plan: no routed vehicle crosses a signal in the window"
            )
        path = write_tl_logics(workdir / "webster.add.xml", programs)
        kept = len(network.intersections) - len(programs)
        cycles = sorted(round(p.cycle_s) for p in programs)
        notes = [f"webster: cycles {cycles[0]}-{cycles[-1]} s over {len(programs)} signals"]
        if kept:
            notes.append(f"webster: {kept} signals without demand keep the network's program")
        return SimSetup(additional_files=(path,), notes=tuple(notes))
