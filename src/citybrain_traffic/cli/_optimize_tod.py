"""``ctraffic optimize --counts FILE --tod``: a time-of-day schedule from a count history."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import InputError
from ._common import StagedOutDir

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..network import Network
    from ..optimize.tod import TodSchedule
    from ..scenario import Scenario

#: Files ``--tod`` writes into ``--out``, in the order it reports them.
TOD_FILES = ("tod_plans.add.xml", "tod_waut.add.xml", "tod_schedule.csv", "tod_ntcip.csv")
#: With a scenario that has routes: a SUMO configuration that runs it under the schedule.
TOD_CONFIG = "tod.sumocfg"

#: Columns of ``tod_schedule.csv``: one row per day type, period and signal (s, veh/h, s/veh).
SCHEDULE_COLUMNS = [
    "day_type",
    "days",
    "period",
    "start",
    "end",
    "program_id",
    "intersection",
    "cycle_s",
    "offset_s",
    "cycle_floor_s",
    "design_bin",
    "design_flow_veh_h",
    "max_v_c",
    "delay_s_veh",
]


def optimize_tod(
    *,
    scenario: str | None,
    net: str | None,
    routes: str | None,
    counts_file: str | None,
    selected: dict[str, Any],
    demand_scale: float,
    saturation_flow: float,
    coordinated: bool | None,
    out: str,
    console: Console,
) -> None:
    """Run ``optimize --tod``: read the history, build the schedule, write and print it.

    ``selected`` holds the options that pick one window or the routes (``at``, ``window``,
    ``from_routes``, ``begin``, ``end``); none of them goes with ``--tod``.
    """
    from ..counts import read_counts
    from ..optimize.tod import tod_schedule
    from ._optimize_flows import scenario_and_network

    if counts_file is None:
        raise InputError(
            "--tod needs --counts FILE: a count history of whole days to cut into periods"
        )
    given = [
        f"--{name.replace('_', '-')}"
        for name, value in selected.items()
        if value is not None and value is not False
    ]
    if given:
        raise InputError(f"--tod times the whole count history: leave out {', '.join(given)}")
    staged = StagedOutDir(out)
    sc, network = scenario_and_network(scenario, net, routes, None, None, net_alone=True)
    counts = read_counts(Path(counts_file))
    unknown = sorted(set(counts["intersection"]) - set(network.intersections))
    if unknown:
        raise InputError(
            f"{Path(counts_file).name}: intersection id(s) {unknown[:8]} are not signals of "
            f"{network.path.name}; its signals are {list(network.intersections)[:8]}"
        )
    tls_ids = [tls for tls in network.intersections if tls in set(counts["intersection"])]
    if not tls_ids:
        raise InputError(f"{counts_file} holds no counts")
    coordinated = len(tls_ids) > 1 if coordinated is None else coordinated
    schedule = tod_schedule(
        network,
        counts,
        tls_ids=tls_ids,
        coordinated=coordinated,
        saturation_veh_h_lane=saturation_flow,
        demand_scale=demand_scale,
    )
    console.print(
        f"[bold]{network.path.name}[/]: {len(tls_ids)} signal(s), time-of-day schedule from "
        f"{Path(counts_file).name} ({counts['timestamp'].min()} to {counts['timestamp'].max()}), "
        f"demand x{demand_scale:g}, saturation flow {saturation_flow:,.0f} veh/h/lane, "
        f"{'coordinated' if coordinated else 'isolated'}"
    )
    with staged as folder:
        files = write_tod(folder, schedule, network, tls_ids)
        if sc is not None and sc.route_files:
            files.append(write_tod_config(folder / TOD_CONFIG, sc, files[:2]))
        written = [staged.final / p.name for p in files]
    console.print(tod_rich(schedule))
    for note in (schedule.criterion, *schedule.notes):
        console.print(f"[yellow]note[/]: {note}")
    last = schedule.switches()[-1][0]
    if sc is not None and sc.begin > last:
        console.print(
            f"[yellow]note[/]: {sc.name} begins at {sc.begin:g} s, after the schedule's last "
            f"switch ({last} s after Monday 00:00): SUMO would run one program throughout; "
            "begin a run before it"
        )
    counted = set(zip(counts["intersection"], counts["movement"]))
    uncounted = sorted(
        {
            f"{tls} {link.movement}"
            for tls in tls_ids
            for link in network.intersections[tls].links
            if (tls, link.movement) not in counted
        }
    )
    if uncounted:
        more = f" and {len(uncounted) - 6} more" if len(uncounted) > 6 else ""
        console.print(
            f"[yellow]warning[/]: {len(uncounted)} movement(s) never counted in the history, "
            f"timed as carrying no traffic: {', '.join(uncounted[:6])}{more}"
        )
    missing = [tls for tls in network.intersections if tls not in tls_ids]
    if missing:
        console.print(
            f"[yellow]note[/]: no counts for {', '.join(missing[:8])}: "
            "not timed (they keep their programs)"
        )
    plans = sum(len(p.plans) for p in schedule.plans)
    console.print(
        f"{plans} plan(s) validated against {network.path.name}; written to {staged.final}/:"
    )
    for path in written:
        console.print(f"  {path}")


def write_tod_config(path: Path, sc: Scenario, programs: list[Path]) -> Path:
    """Write a SUMO configuration that runs the scenario under the schedule's programs.

    ``ctraffic simulate DIR/tod.sumocfg -c fixed`` runs it: the scenario's net, routes, window
    and additional files, then the programs and the WAUT (file names relative to the folder,
    the scenario's files absolute).
    """
    root = ET.Element("configuration")
    given = ET.SubElement(root, "input")
    ET.SubElement(given, "net-file", value=str(sc.net_file.resolve()))
    ET.SubElement(given, "route-files", value=",".join(str(r.resolve()) for r in sc.route_files))
    extra = [str(a.resolve()) for a in sc.additional_files] + [p.name for p in programs]
    ET.SubElement(given, "additional-files", value=",".join(extra))
    window = ET.SubElement(root, "time")
    ET.SubElement(window, "begin", value=f"{sc.begin:g}")
    ET.SubElement(window, "end", value=f"{sc.end:g}")
    ET.indent(root)
    path.write_text(ET.tostring(root, encoding="unicode") + "\n")
    return path


def write_tod(
    folder: Path, schedule: TodSchedule, network: Network, tls_ids: list[str]
) -> list[Path]:
    """Validate every plan, then write ``TOD_FILES`` into ``folder``."""
    from ..network import fit_network
    from ..plans import validate_all, write_tl_logics
    from ..plans.ntcip import DayPlanEvent, write_ntcip
    from ..plans.waut import GSP_PARAM, ProgramSwitch, write_waut

    programs = [plan for p in schedule.plans for plan in p.plans]
    validate_all(programs, network)
    add, waut, table, ntcip = (folder / name for name in TOD_FILES)
    write_tl_logics(add, programs, params=GSP_PARAM)
    switches = [ProgramSwitch(t, program) for t, program in schedule.switches()]
    write_waut(waut, switches, tls_ids, period_s=schedule.period_s)
    schedule_table(schedule).to_csv(table, index=False)
    number = {p.period.program_id: k for k, p in enumerate(schedule.plans, start=1)}
    kinds = list(dict.fromkeys(p.period.day_type for p in schedule.plans))
    day_plans = {
        k: next(p.period.days for p in schedule.plans if p.period.day_type == kind)
        for k, kind in enumerate(kinds, start=1)
    }
    events = []
    for day_plan, kind in enumerate(kinds, start=1):
        periods = [p.period for p in schedule.plans if p.period.day_type == kind]
        starts = {p.start_s % 86400: p.program_id for p in periods}
        starts.setdefault(0, next(p.program_id for p in periods if p.covers(0)))
        events += [
            DayPlanEvent(day_plan, s // 3600, s % 3600 // 60, number[program])
            for s, program in sorted(starts.items())
        ]
    patterns = [(number[plan.program_id], plan) for plan in programs]
    write_ntcip(ntcip, patterns, events, day_plans, nema=fit_network(network))
    return [add, waut, table, ntcip]


def schedule_table(schedule: TodSchedule) -> pd.DataFrame:
    """Tabulate the schedule: one row per period and signal, columns ``SCHEDULE_COLUMNS``."""
    from ..optimize.tod import clock

    rows = []
    for p in schedule.plans:
        period = p.period
        design = p.flows.groupby("intersection")["flow_veh_h"].sum()
        for plan in p.plans:
            timing = p.timings[plan.tls_id]
            rows.append(
                {
                    "day_type": period.day_type,
                    "days": period.days,
                    "period": period.name,
                    "start": clock(period.start_s),
                    "end": clock(period.end_s),
                    "program_id": plan.program_id,
                    "intersection": plan.tls_id,
                    "cycle_s": plan.cycle_s,
                    "offset_s": plan.offset,
                    "cycle_floor_s": p.cycle_floor_s.get(plan.tls_id, 0.0),
                    "design_bin": clock(p.design_bin_s.get(plan.tls_id, period.start_s)),
                    "design_flow_veh_h": round(float(design.get(plan.tls_id, 0.0)), 1),
                    "max_v_c": round(timing.max_degree_of_saturation, 3),
                    "delay_s_veh": round(timing.delay_s, 2),
                }
            )
    return pd.DataFrame(rows, columns=SCHEDULE_COLUMNS)


def tod_rich(schedule: TodSchedule) -> Table:
    """Lay the periods out as a rich Table: one row per period, the signals summarised."""
    from rich.table import Table

    from ..optimize.tod import clock

    out = Table(
        title="time-of-day schedule",
        title_justify="left",
        caption="Flow: mean veh/h into all timed signals over the period; design: the flow "
        "rate of each signal's peak bin, summed (veh/h); cycle in s (range over the signals; "
        "* raised by the transition rule); highest v/c; mean modelled delay in s/veh.",
        caption_justify="left",
    )
    for heading in ("Days", "Period", "From", "To", "Flow", "Design", "Cycle", "v/c", "Delay"):
        out.add_column(heading, justify="left" if heading in ("Days", "Period") else "right")
    for p in schedule.plans:
        cycles = sorted({t.cycle_s for t in p.timings.values()})
        cycle = f"{cycles[0]:.0f}" + (f"-{cycles[-1]:.0f}" if len(cycles) > 1 else "")
        delay = sum(t.delay_s * _flow(t) for t in p.timings.values()) / max(
            1e-9, sum(_flow(t) for t in p.timings.values())
        )
        out.add_row(
            p.period.days,
            p.period.name,
            clock(p.period.start_s),
            clock(p.period.end_s),
            f"{p.period.flow_veh_h:,.0f}",
            f"{p.flows['flow_veh_h'].sum():,.0f}",
            cycle + ("*" if p.cycle_floor_s else ""),
            f"{max(t.max_degree_of_saturation for t in p.timings.values()):.2f}",
            f"{delay:.1f}",
        )
    return out


def _flow(timing: Any) -> float:
    return float(sum(p.flow_veh_h for p in timing.phases))
