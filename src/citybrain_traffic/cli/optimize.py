"""``ctraffic optimize``: timing plans from routed demand or counts, a timing sheet, exports."""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pandas as pd

from ..errors import InputError
from ..optimize.demand import DEFAULT_SATURATION_VEH_H_LANE
from ._common import FINITE_FLOAT, StagedOutDir, console, demand_scale_option

if TYPE_CHECKING:
    from rich.console import Console

    from ..network import Network
    from ..scenario import Scenario

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
least modelled delay (HCM uniform + incremental delay, v/c capped at 0.9 where possible).
The terminal shows the timing sheet: per green phase its green, the yellow + all-red after it
(Y+AR), its split (green + Y+AR; splits add up to the cycle), flow (veh/h), v/c, modelled delay
(s/veh) and HCM level of service, and per signal the total flow, highest v/c and flow-weighted
delay.

\b
--out DIR (new or empty) receives every plan, each validated against the network first:
  plans.add.xml       SUMO tlLogic programs with offsets: sumo -n NET -a plans.add.xml
  plans.json          the plans with provenance (ctraffic plans validate reads it)
  plans_utdf.csv      UTDF-style [Timeplans] and [Phases]
  timing_sheet.csv    one row per phase (s, veh/h, s/veh), timing_summary.csv one per signal
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
    metavar="VEH_H_LANE",
    type=float,
    default=DEFAULT_SATURATION_VEH_H_LANE,
    show_default=True,
    help="Saturation flow, veh/h of green per lane (`ctraffic calibrate` measures it).",
)
@click.option(
    "--coordinated/--isolated",
    default=None,
    help="One common cycle with offsets for all signals, or each signal on its own, offset 0 "
    "[default: coordinated when there is more than one signal].",
)
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
    from_routes: bool,
    begin: float | None,
    end: float | None,
    demand_scale: float,
    saturation_flow: float,
    coordinated: bool | None,
    out: str,
) -> None:
    """Optimize the signal timing of SCENARIO and write the plans; ``--help`` shows ``_HELP``."""
    from ..optimize import optimize_network, to_plans
    from ..optimize.sheet import sheet_rich, timing_sheet, timing_summary, write_outputs

    from_counts = counts_file is not None
    _check_options(from_counts, from_routes, at, window_min, begin, end, saturation_flow)
    staged = StagedOutDir(out)
    terminal = console()
    sc, network = _scenario_and_network(scenario, net, routes, begin, end, net_alone=from_counts)
    name = network.path.name if sc is None else sc.name
    valid: tuple[str | None, str | None] = (None, None)
    if counts_file is not None:
        assert at is not None  # _check_options: --counts comes with --at
        flows, tls_ids, source, valid = _flows_from_counts(
            Path(counts_file), network, at, window_min or 15, terminal
        )
        flows["flow_veh_h"] *= demand_scale
    else:
        assert sc is not None  # without --counts, _scenario_and_network loads the scenario
        flows, source = _flows_from_routes(sc, network, demand_scale, explicit=from_routes)
        tls_ids = list(network.intersections)
    coordinated = len(tls_ids) > 1 if coordinated is None else coordinated
    terminal.print(
        f"[bold]{name}[/]: {len(tls_ids)} signal(s), flows {source}, demand x{demand_scale:g}, "
        f"saturation flow {saturation_flow:,.0f} veh/h/lane, "
        f"{'coordinated' if coordinated else 'isolated'}"
    )
    timings = optimize_network(
        network,
        flows,
        tls_ids=tls_ids,
        coordinated=coordinated,
        saturation_veh_h_lane=saturation_flow,
    )
    demand = {
        "source": source,
        "demand_scale": demand_scale,
        "saturation_veh_h_lane": saturation_flow,
    }
    plans = [
        replace(
            p,
            valid_from=valid[0],
            valid_until=valid[1],
            provenance={**p.provenance, "demand": demand},
        )
        for p in to_plans(timings, network, program_id="ctraffic-optimize")
    ]
    sheet, summary = timing_sheet(plans, timings, network), timing_summary(plans, timings)
    with staged as out_dir:
        written = [
            staged.final / path.name
            for path in write_outputs(out_dir, plans, network, sheet, summary)
        ]
    terminal.print(sheet_rich(sheet, summary, title=f"{name}: timing sheet"))
    _print_notes(summary, terminal)
    terminal.print(
        f"{len(plans)} plan(s) validated against {network.path.name}; written to {staged.final}/:"
    )
    for path in written:
        terminal.print(f"  {path}")


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


def _check_options(
    from_counts: bool,
    from_routes: bool,
    at: str | None,
    window_min: int | None,
    begin: float | None,
    end: float | None,
    saturation_flow: float,
) -> None:
    """Refuse option combinations that mix the two flow sources or lack a value, before any work."""
    if from_counts and from_routes:
        raise InputError("give either --counts FILE --at TIME or --from-routes, not both")
    if from_counts and at is None:
        raise InputError(
            "--counts needs --at TIME: the start of the count window, e.g. '2026-01-05 08:00'"
        )
    if not from_counts and (at is not None or window_min is not None):
        raise InputError("--at and --window select counts: give them with --counts FILE")
    if from_counts and (begin is not None or end is not None):
        raise InputError(
            "--begin/--end are the --from-routes window (s); "
            "with --counts use --at and --window (min)"
        )
    if window_min is not None and window_min <= 0:
        raise InputError(f"--window must be a positive number of minutes, got {window_min}")
    if not (math.isfinite(saturation_flow) and saturation_flow > 0):
        raise InputError(
            "--saturation-flow must be a positive number of veh/h of green per lane "
            f"(typically 1,500-2,000), got {saturation_flow:g}"
        )


def _scenario_and_network(
    scenario: str | None,
    net: str | None,
    routes: str | None,
    begin: float | None,
    end: float | None,
    *,
    net_alone: bool,
) -> tuple[Scenario | None, Network]:
    """Load the scenario and its network.

    Counts need no demand: with ``net_alone``, ``--net`` alone gives (None, network).
    """
    from ..network import read_network
    from ..scenario import load_scenario

    if net_alone and net is not None and routes is None and scenario is None:
        return None, read_network(net)
    sc = load_scenario(scenario, net=net, routes=routes, begin=begin, end=end)
    return sc, read_network(sc.net_file)


def _flows_from_routes(
    sc: Scenario, network: Network, demand_scale: float, *, explicit: bool
) -> tuple[pd.DataFrame, str]:
    """Return the flows of the routes departing in the window, and a description of them."""
    from ..flows import flows_from_routes, route_demand

    with tempfile.TemporaryDirectory(prefix="ctraffic-") as tmp:
        routed = route_demand(sc, Path(tmp), demand_scale=demand_scale)
        flows = flows_from_routes(routed, network, begin=sc.begin, end=sc.end)
    how = "" if explicit else " (the default without --counts)"
    return flows, f"from the routes departing {sc.begin:g}-{sc.end:g} s{how}"


def _flows_from_counts(
    path: Path, network: Network, at: str, window_min: int, console: Console
) -> tuple[pd.DataFrame, list[str], str, tuple[str, str]]:
    """Return the flows of the count window and what goes with them.

    That is the signals they cover (in network order), a description and the window (ISO).
    """
    from ..counts import infer_bin, read_counts
    from ..flows import flows_from_counts

    counts = read_counts(path)
    if counts.empty:
        raise InputError(f"{path} holds no counts")
    unknown = sorted(set(counts["intersection"]) - set(network.intersections))
    if unknown:
        raise InputError(
            f"{path.name}: intersection id(s) {unknown[:8]} are not signals of "
            f"{network.path.name}; its signals are {list(network.intersections)[:8]}"
        )
    start = _window_start(at, counts)
    starts = counts["timestamp"].drop_duplicates().sort_values()
    step = infer_bin(counts) if len(starts) > 1 else pd.Timedelta(minutes=15)
    if start not in set(starts):
        raise InputError(
            f"--at {at}: no count bin starts at {start}; the counts have "
            f"{step.total_seconds() / 60:g}-minute bins from {starts.iloc[0]} to {starts.iloc[-1]}"
        )
    window = pd.Timedelta(minutes=window_min)
    if window % step != pd.Timedelta(0):
        raise InputError(
            f"--window {window_min} min is not a multiple of the counts' "
            f"{step.total_seconds() / 60:g}-minute bins"
        )
    flows = flows_from_counts(counts, at=start, minutes=window_min)
    tls_ids = [tls for tls in network.intersections if tls in set(flows["intersection"])]
    missing = [tls for tls in network.intersections if tls not in tls_ids]
    if missing:
        console.print(
            f"[yellow]note[/]: no counts for {', '.join(missing[:8])}: "
            "not timed (they keep their programs)"
        )
    _report_gaps(counts, network, tls_ids, start, window, step, console)
    source = f"from {path.name}, {window_min} min from {start}"
    return flows, tls_ids, source, (start.isoformat(), (start + window).isoformat())


def _report_gaps(
    counts: pd.DataFrame,
    network: Network,
    tls_ids: list[str],
    start: pd.Timestamp,
    window: pd.Timedelta,
    step: pd.Timedelta,
    console: Console,
) -> None:
    """Warn of every movement of a timed signal that lacks bins of the window.

    A movement without a count is a gap in the data, not one without traffic: it is timed as
    carrying none (there is nothing else to time it by) and said so; one with some bins gets
    the mean of those (``flows_from_counts``).
    """
    from ..counts import find_gaps

    expected = pd.DataFrame(
        [(tls, link.movement) for tls in tls_ids for link in network.intersections[tls].links],
        columns=["intersection", "movement"],
    )
    timed = counts[counts["intersection"].isin(tls_ids)]
    gaps = find_gaps(timed, bin=step, start=start, end=start + window, series=expected)
    missing = gaps.groupby(["intersection", "movement"], sort=False)["missing_bins"].sum()
    bins = window // step
    for absent, what in (
        (missing[missing == bins], "no count in the window: timed as carrying no traffic"),
        (missing[missing < bins], "gaps in the window: flow is the mean of the bins counted"),
    ):
        if len(absent):
            names = [f"{tls} {movement}" for tls, movement in absent.index]
            more = f" and {len(names) - 6} more" if len(names) > 6 else ""
            console.print(
                f"[yellow]warning[/]: {len(names)} movement(s) with {what}: "
                f"{', '.join(names[:6])}{more}"
            )


def _window_start(at: str, counts: pd.DataFrame) -> pd.Timestamp:
    """Read ``--at`` as a timestamp; a bare time of day takes the counts' date if they have one."""
    text = at.strip()
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", text):
        dates = sorted(counts["timestamp"].dt.normalize().unique())
        if len(dates) != 1:
            raise InputError(
                f"--at {at}: the counts cover {len(dates)} dates "
                f"({pd.Timestamp(dates[0]).date()} to {pd.Timestamp(dates[-1]).date()}); "
                f"give the date too, e.g. '{pd.Timestamp(dates[0]).date()} {text}'"
            )
        text = f"{pd.Timestamp(dates[0]).date()} {text}"
    try:
        return pd.Timestamp(text)
    except ValueError:
        raise InputError(
            f"--at {at!r} is not a time (expected e.g. '2026-01-05 08:00' or 08:00)"
        ) from None
