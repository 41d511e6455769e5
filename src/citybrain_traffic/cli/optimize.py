"""``ctraffic optimize``: timing plans from routed demand or counts, a timing sheet, exports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pandas as pd

from ..errors import InputError
from ..optimize.demand import DEFAULT_SATURATION_VEH_H_LANE
from ._common import FINITE_FLOAT, StagedOutDir, console, demand_scale_option
from ._optimize_check import check_in_sumo, check_options, refuse, signal_demands
from ._optimize_sheet import deployment_tables
from ._optimize_schedule import ScheduleOutput, schedule_candidates
from ._optimize_flows import (
    check_sources,
    counted_flows,
    design_note,
    routed_flows,
    saturation_base,
    saturation_for,
    scenario_and_network,
)

if TYPE_CHECKING:
    from rich.console import Console

    from ..flows import DesignFlows
    from ..network import Network
    from ..optimize import SignalTiming
    from ..optimize.saturation import SaturationModel


#: The check's label of the plan designed for the window's mean flows.
MEAN_DESIGN = "the window's mean flows"

_HELP = """Optimize the signal timing of SCENARIO and write the plans.

SCENARIO is a bundled scenario name (default: corridor), a .sumocfg, or --net and --routes. The
flows (veh/h per movement) come from one of two sources:

\b
  --counts FILE --at TIME [--window MIN]
        the counts (timestamp,intersection,movement,count in bins, or UTDF) in the bins
        from TIME for MIN minutes (default 15); TIME is a bin start, e.g. '2026-01-05 08:00',
        or a time of day such as 08:00 when the counts cover one date. Intersection ids must
        be the network's signal ids; --net alone is enough here.
  --from-routes [--begin S --end S]
        the scenario's routed demand (duarouter) departing in the window, s of simulation
        time (default: the scenario's window). This is the default when --counts is not given.

Every signal gets the cycle (s), whole-second greens (s) and, when coordinated, offsets (s) of
least modelled delay (HCM uniform + incremental delay, v/c capped at 0.9 where possible), for
the --design flows (default: each signal's peak 15-min flow rate), with saturation flows adjusted
per lane group (HCM: lane width, heavy vehicles, turns, permitted lefts), greens serving a
crossing at least their pedestrian time (walk 7 s + crossing length at 1.07 m/s) and a penalty
on queues that overflow their storage. The terminal shows the timing sheet: per green phase its
NEMA number(s) and movements (e.g. 2+6 EBT/WBT; program order where the program does not fit a
dual ring), its green, the yellow + all-red after it (Y+AR), its split (green + Y+AR; splits add
up to the cycle), flow (veh/h), v/c, modelled delay (s/veh) and HCM level of service; then per
movement (NBL, EBT, ...) its flow, v/c, delay and LOS, and a warning for every lane group whose
95th-percentile queue exceeds its storage.

When the scenario has routes, the plans are checked in SUMO before they are written (--no-check
skips it): the model's plan, the `optimized` controller's plans (one per 15 min, under each
cycle floor it tries: the model's cycle, 60, 90, 120 s), with another --design than mean the
plan for the window's mean flows, and the network's own program run the scenario's demand on
seeds of their own (--check-seeds); the least mean delay is kept and the terminal shows, per
approach, modelled beside simulated delay. A 15-min schedule that wins is written as every
quarter's plan, each valid for its quarter, with plans_waut.add.xml and schedule.csv; the sheet
shows the busiest quarter. When the own program does better than every plan, nothing is written
and the command exits 1 (--allow-worse writes the best plan anyway, with a warning).

\b
--out DIR (new or empty) receives every plan, each validated against the network first:
  plans.add.xml       SUMO tlLogic programs with offsets: sumo -n NET -a plans.add.xml
  plans.json          the plans with provenance (ctraffic plans validate reads it)
  plans_utdf.csv      UTDF-style [Timeplans] and [Phases]
  timing_sheet.csv    one row per phase (s, veh/h, s/veh), timing_summary.csv one per signal
  timing_movements.csv  one row per movement (veh/h, v/c, s/veh, LOS)
  queue_storage.csv   per lane group: 95th-percentile queue (veh, m) against storage (m)
  pedestrian_timing.csv  per crossing green: walk, flashing don't walk, required green (s)
  check.csv           per approach: modelled and simulated flow (veh/h) and delay (s/veh)
  schedule.csv, plans_waut.add.xml  a 15-min schedule's periods (s, HH:MM) and SUMO WAUT
--tod (with --counts) writes a time-of-day schedule instead: tod_plans.add.xml,
tod_waut.add.xml (sumo -n NET -a tod_plans.add.xml,tod_waut.add.xml), tod.sumocfg (with a
scenario: ctraffic simulate DIR/tod.sumocfg -c fixed), tod_schedule.csv and tod_ntcip.csv
(NTCIP 1202-shaped pattern, split and time-base tables).
"""


@click.command("optimize", help=_HELP)
@click.argument("scenario", required=False)
@click.option(
    "--net", type=click.Path(dir_okay=False), help="SUMO network (.net.xml), instead of SCENARIO."
)
@click.option(
    "--routes",
    metavar="FILES",
    help="Route/trip files, comma-separated (with --net, for --from-routes).",
)
@click.option(
    "--counts",
    "counts_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Count file: long CSV/Parquet (timestamp,intersection,movement,count) or UTDF CSV.",
)
@click.option(
    "--at",
    metavar="TIME",
    help="With --counts: start of the count window, a bin start ('2026-01-05 08:00' or 08:00).",
)
@click.option(
    "--window",
    "window_min",
    metavar="MIN",
    type=int,
    help="With --counts: length of the count window, minutes; a multiple of the bin length "
    "[default: 15].",
)
@click.option(
    "--tod",
    is_flag=True,
    help="With --counts, instead of --at: a time-of-day schedule from the whole history (a plan "
    "per period; tod_plans.add.xml, tod_waut.add.xml, tod_schedule.csv, tod_ntcip.csv).",
)
@click.option(
    "--from-routes",
    is_flag=True,
    help="Flows from the scenario's routed demand (the default source).",
)
@click.option(
    "--begin",
    metavar="S",
    type=FINITE_FLOAT,
    help="With --from-routes: start of the window, s of simulation time [default: the scenario's].",
)
@click.option(
    "--end",
    metavar="S",
    type=FINITE_FLOAT,
    help="With --from-routes: end of the window, s of simulation time [default: the scenario's].",
)
@demand_scale_option("Multiply the demand (routed vehicles, or counted flows) by this factor.")
@click.option(
    "--saturation-flow",
    metavar="VEH_H_LANE|FILE",
    default=f"{DEFAULT_SATURATION_VEH_H_LANE:g}",
    show_default=True,
    help="Base saturation flow, veh/h of green per lane of through passenger cars, adjusted per "
    "lane group (HCM: lane width, heavy vehicles, turns); or the CSV of `ctraffic calibrate "
    "--out`, whose measured lanes keep their measurement.",
)
@click.option(
    "--design",
    metavar="mean|peak15|percentile:P",
    default="peak15",
    show_default=True,
    help="Design flows: the window's mean, each signal's peak 15-min flow rate (the HCM's "
    "peak-hour factor), or each movement's P-th percentile of its 15-min rates.",
)
@click.option(
    "--coordinated/--isolated",
    default=None,
    help="One common cycle with offsets for all signals, or each signal on its own, offset 0 "
    "[default: coordinated when there is more than one signal].",
)
@check_options
@click.option(
    "--out",
    metavar="DIR",
    required=True,
    type=click.Path(file_okay=False),
    help="New or empty folder for the plans and the timing sheet.",
)
def optimize_command(
    scenario: str | None,
    net: str | None,
    routes: str | None,
    counts_file: str | None,
    at: str | None,
    window_min: int | None,
    tod: bool,
    from_routes: bool,
    begin: float | None,
    end: float | None,
    demand_scale: float,
    saturation_flow: str,
    design: str,
    coordinated: bool | None,
    check_seeds: str | None,
    no_check: bool,
    allow_worse: bool,
    out: str,
) -> None:
    """Optimize the signal timing of SCENARIO and write the plans; ``--help`` shows ``_HELP``."""
    from ..flows import parse_design
    from ..optimize import optimize_network, to_plans
    from ..plans import TimingPlan
    from ..optimize.batch import DEPLOYED_SPILLBACK_WEIGHT
    from ..optimize.sheet import sheet_rich, timing_sheet, timing_summary, write_outputs

    if tod:
        from ._optimize_tod import optimize_tod

        selected = dict(at=at, window=window_min, from_routes=from_routes, begin=begin, end=end)
        tod_base = saturation_base(saturation_flow)
        if isinstance(tod_base, Path):
            raise InputError(
                "--tod takes --saturation-flow as a number of veh/h of green per lane; "
                "a calibration file is read for one window (without --tod)"
            )
        return optimize_tod(
            scenario=scenario,
            net=net,
            routes=routes,
            counts_file=counts_file,
            selected=selected,
            demand_scale=demand_scale,
            saturation_flow=tod_base,
            coordinated=coordinated,
            out=out,
            console=console(),
        )
    from_counts = counts_file is not None
    check_sources(from_counts, from_routes, at, window_min, begin, end)
    base, chosen = saturation_base(saturation_flow), parse_design(design)
    staged = StagedOutDir(out)
    terminal = console()
    sc, network = scenario_and_network(scenario, net, routes, begin, end, net_alone=from_counts)
    name = network.path.name if sc is None else sc.name
    valid: tuple[str | None, str | None] = (None, None)
    mean: DesignFlows | None = None
    periods: tuple[tuple[float, pd.DataFrame], ...] = ()  # routed flows' 15-min plan periods
    if counts_file is not None:
        assert at is not None  # check_sources: --counts comes with --at
        result, tls_ids, source, valid = counted_flows(
            Path(counts_file), network, at, window_min or 15, terminal, chosen
        )
        result.flows["flow_veh_h"] *= demand_scale
    else:
        assert sc is not None  # without --counts, scenario_and_network loads the scenario
        result, source, mean, periods = routed_flows(
            sc, network, demand_scale, explicit=from_routes, design=chosen
        )
        tls_ids = list(network.intersections)
    coordinated = len(tls_ids) > 1 if coordinated is None else coordinated
    design_text, design_info = design_note(result)
    model, saturation_text, saturation_info = saturation_for(network, base, result, tls_ids)
    terminal.print(
        f"[bold]{name}[/]: {len(tls_ids)} signal(s), flows {source}, demand x{demand_scale:g}, "
        f"{'coordinated' if coordinated else 'isolated'}\ndesign flows {design_text}\n"
        f"{saturation_text}"
    )
    optimize_for = partial(
        optimize_network,
        network,
        tls_ids=tls_ids,
        coordinated=coordinated,
        saturation_veh_h_lane=model,
        spillback_weight=DEPLOYED_SPILLBACK_WEIGHT,
    )
    solve = partial(optimize_for, result.flows)
    demand = {
        "source": source,
        "demand_scale": demand_scale,
        "saturation_veh_h_lane": model.base_veh_h_lane,
        **design_info,
        **saturation_info,
    }

    def make_plans(timings: Mapping[str, SignalTiming]) -> list[TimingPlan]:
        return [
            replace(
                p,
                valid_from=valid[0],
                valid_until=valid[1],
                provenance={**p.provenance, "demand": demand},
            )
            for p in to_plans(timings, network, program_id="ctraffic-optimize")
        ]

    checked = check_in_sumo(
        sc,
        network,
        solve(),
        solve=lambda cycle_min_s: solve(cycle_min_s=cycle_min_s),
        make_plans=make_plans,
        demand=partial(signal_demands, network, result.flows, model),
        check_seeds=check_seeds,
        no_check=no_check,
        allow_worse=allow_worse,
        demand_scale=demand_scale,
        console=terminal,
        extra=_mean_design(mean, optimize_for, network, model),
        schedules=schedule_candidates(
            network,
            periods,
            end_s=sc.end,
            demand={"source": source, "demand_scale": demand_scale},
            coordinated=coordinated,
        )
        if sc is not None and periods and not no_check
        else None,
    )
    if checked.refused:
        refuse(checked, terminal)
    timings = checked.timings
    summary = timing_summary(checked.plans, timings)
    plans, noted = checked.stamped(summary)
    flows = result.flows
    tables_model: SaturationModel | float = model
    if mean is not None and checked.provenance.get("written") == MEAN_DESIGN:
        flows = mean.flows  # the check kept the plan designed for the window's mean flows
        design_text, design_info = design_note(mean)
        plans = [
            replace(p, provenance={**p.provenance, "demand": {**demand, **design_info}})
            for p in plans
        ]
    schedule = ScheduleOutput.of(checked, sc)
    if schedule is not None:
        flows, tables_model, design_text = schedule.sheet_flows()
    sheet = timing_sheet(plans, timings, network)
    tables = deployment_tables(network, plans, timings, flows, tables_model)
    with staged as out_dir:
        written = [
            staged.final / path.name
            for path in [
                *write_outputs(
                    out_dir,
                    plans,
                    network,
                    sheet,
                    noted,
                    tables.movements,
                    schedule.plans if schedule else None,
                ),
                *checked.write(out_dir),
                *tables.write(out_dir),
                *(schedule.write(out_dir) if schedule else []),
            ]
        ]
    terminal.print(
        sheet_rich(sheet, summary, title=f"{name}: timing sheet, design flows {design_text}")
    )
    tables.print(terminal, title=name)
    _print_notes(summary, terminal)
    terminal.print(
        f"{len(schedule.plans if schedule else plans)} plan(s) validated against "
        f"{network.path.name}; written to {staged.final}/:"
    )
    for path in written:
        terminal.print(f"  {path}")


def _mean_design(
    mean: DesignFlows | None,
    optimize_for: Callable[[pd.DataFrame], Mapping[str, SignalTiming]],
    network: Network,
    model: SaturationModel,
) -> dict:
    """Return the check's candidate designed for the window's mean flows (none without them).

    The peak 15 minutes over-serve a window's lighter part; which design a fixed plan does best
    with over the whole window is the simulation's to say.
    """
    if mean is None:
        return {}
    timings = optimize_for(mean.flows)
    demand = partial(signal_demands, network, mean.flows, model)
    return {MEAN_DESIGN: (timings, demand)}


def _print_notes(summary: pd.DataFrame, console: Console) -> None:
    """Warn of every signal over capacity; note every other one not timed to optimality."""
    from ..optimize import STATUS_NO_DEMAND, STATUS_OPTIMAL

    for row in summary.to_dict("records"):
        if row["max_v_c"] > 1:
            console.print(
                f"[yellow]warning[/]: {row['intersection']} is over capacity "
                f"(v/c up to {row['max_v_c']:.2f}); {row['status']}: {row['notes']}"
            )
        elif row["status"] not in (STATUS_OPTIMAL, STATUS_NO_DEMAND):
            console.print(
                f"[yellow]note[/]: {row['intersection']}: {row['status']}: {row['notes']}"
            )
