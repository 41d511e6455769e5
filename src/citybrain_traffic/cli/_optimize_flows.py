"""Where ``ctraffic optimize`` gets its design flows and its saturation flows.

Design flows come from the routes or a count window, as the mean or a peak; saturation flows
from a base adjusted as the HCM does, or from ``ctraffic calibrate``'s measurements.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from ..flows import Design, DesignFlows
    from ..network import Network
    from ..optimize.saturation import SaturationModel
    from ..scenario import Scenario


def scenario_and_network(
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


def routed_flows(
    sc: Scenario, network: Network, demand_scale: float, *, explicit: bool, design: Design
) -> tuple[DesignFlows, str, DesignFlows | None, tuple[tuple[float, pd.DataFrame], ...]]:
    """Return the design flows of the routes in the window, and a description of their source.

    Third, the window's mean flows when the design is another (a candidate for the check);
    fourth, each 15-minute plan period's start (s) and flows, as the ``optimized`` controller
    plans them (``control.optimized.periods_from_routes``).
    """
    from ..control.optimized import periods_from_routes
    from ..flows import Design, design_flows_from_bins, route_demand, route_flow_bins

    with tempfile.TemporaryDirectory(prefix="ctraffic-") as tmp:
        routed = route_demand(sc, Path(tmp), demand_scale=demand_scale)
        bins, heavy = route_flow_bins(routed, network, begin=sc.begin, end=sc.end)
        periods = periods_from_routes(routed, network, begin=sc.begin, end=sc.end)
    window = {"begin": sc.begin, "end": sc.end}
    flows = design_flows_from_bins(bins, heavy, **window, design=design)
    mean = None
    if design.kind != "mean":
        mean = design_flows_from_bins(bins, heavy, **window, design=Design("mean"))
    how = "" if explicit else " (the default without --counts)"
    return flows, f"from the routes departing {sc.begin:g}-{sc.end:g} s{how}", mean, periods


def counted_flows(
    path: Path, network: Network, at: str, window_min: int, console: Console, design: Design
) -> tuple[DesignFlows, list[str], str, tuple[str, str]]:
    """Return the design flows of the count window and what goes with them.

    That is the signals they cover (in network order), a description and the window (ISO).
    """
    from ..counts import infer_bin, read_counts
    from ..flows import design_flows_from_counts

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
    result = design_flows_from_counts(counts, at=start, minutes=window_min, design=design)
    flows = result.flows
    tls_ids = [tls for tls in network.intersections if tls in set(flows["intersection"])]
    missing = [tls for tls in network.intersections if tls not in tls_ids]
    if missing:
        console.print(
            f"[yellow]note[/]: no counts for {', '.join(missing[:8])}: "
            "not timed (they keep their programs)"
        )
    _report_gaps(counts, network, tls_ids, start, window, step, console)
    source = f"from {path.name}, {window_min} min from {start}"
    return result, tls_ids, source, (start.isoformat(), (start + window).isoformat())


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


def design_note(result: DesignFlows) -> tuple[str, dict]:
    """Say which design flows were used and, for ``peak15``, where each signal's peak bin starts.

    Returns the sentence and the provenance entries (``design``, ``peak_bin_start`` per signal:
    s of simulation time, or an ISO timestamp).
    """
    peaks = {
        tls: start.isoformat() if isinstance(start, pd.Timestamp) else start
        for tls, start in result.peak_starts.items()
    }
    text = f"{result.design}: {result.design.describe()}"
    if peaks:
        by_start: dict[object, list[str]] = {}
        for tls, start in peaks.items():
            by_start.setdefault(start, []).append(tls)
        bins = "; ".join(
            f"{_bin_name(start)} at {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
            for start, names in by_start.items()
        )
        text += f" (peak bin from {bins})"
    info: dict = {"design": str(result.design)}
    if peaks:
        info["peak_bin_start"] = peaks
    return text, info


def _bin_name(start: object) -> str:
    return f"{start:g} s" if isinstance(start, float) else str(start).replace("T", " ")


def saturation_base(value: str) -> float | Path:
    """Read ``--saturation-flow``: veh/h/lane, or the CSV that ``ctraffic calibrate`` wrote."""
    try:
        number = float(value)
    except ValueError:
        path = Path(value)
        if path.is_file():
            return path
        raise InputError(
            f"--saturation-flow {value}: neither a number of veh/h of green per lane nor a file "
            "(`ctraffic calibrate --out FILE` writes one)"
        ) from None
    if not (math.isfinite(number) and number > 0):
        raise InputError(
            "--saturation-flow must be a positive number of veh/h of green per lane "
            f"(typically 1,500-2,000), got {value}"
        )
    return number


def saturation_for(
    network: Network, base: float | Path, result: DesignFlows, tls_ids: list[str]
) -> tuple[SaturationModel, str, dict]:
    """Build the saturation model of the timed signals and say what it holds.

    A number is the base s0, adjusted per lane group (``optimize.saturation``). A calibration
    table gives each lane it measured well (``MIN_LANE_HEADWAYS`` headways or more) its own
    value, and the base of the others is inferred from those (``base_from_measurements``).
    Returns the model, a sentence, and the provenance entries.
    """
    from ..optimize.demand import lane_group_table
    from ..optimize.saturation import base_from_measurements, saturation_model
    from ._optimize_check import signal_demands

    measured = _measured_lanes(base, network) if isinstance(base, Path) else {}
    model = saturation_model(
        network.path,
        base_veh_h_lane=base if isinstance(base, float) else 1.0,  # measured: inferred below
        heavy_share=result.heavy_share,
        measured_veh_h_lane=measured,
    )
    if measured:
        model = replace(model, base_veh_h_lane=base_from_measurements(model, measured))
    demands = signal_demands(network, result.flows, model, tls_ids)
    table = lane_group_table(demands)
    ratio = table["effective_veh_h_lane"] / table["base_veh_h_lane"]
    below = ratio < 1 - 1e-9
    origin = (
        f"base {model.base_veh_h_lane:,.0f} inferred from {len(measured)} lane(s) measured in "
        f"{base.name if isinstance(base, Path) else base}, which keep their measurement"
        if measured
        else f"base {model.base_veh_h_lane:,.0f}"
    )
    heavy = (
        f"heavy vehicles {_heavy_percent(result):.1f}% from the routes' vTypes"
        if result.heavy_share
        else "heavy vehicles unknown without routes (f_HV 1)"
    )
    text = (
        f"saturation flow {origin} veh/h/lane, HCM-adjusted per lane group (lane width, {heavy}, "
        f"turns): {int(below.sum())} of {len(table)} lane groups below the base"
        + (f", {ratio.min():.2f}-{ratio[below].max():.2f} of it" if below.any() else "")
    )
    info = {
        "saturation_model": "HCM-adjusted lane groups" + (", measured lanes" if measured else ""),
        "saturation_measured_lanes": len(measured),
    }
    return model, text, info


def _heavy_percent(result: DesignFlows) -> float:
    flows = result.flows.set_index("movement")["flow_veh_h"]
    total = float(flows.sum())
    heavy = sum(flows.get(m, 0.0) * share for m, share in result.heavy_share.items())
    return 100.0 * heavy / total if total > 0 else 0.0


def _measured_lanes(path: Path, network: Network) -> dict[str, float]:
    """Read ``ctraffic calibrate --out``'s table: the lanes with enough headways, veh/h/lane."""
    from ..experiments.calibrate import MIN_LANE_HEADWAYS, network_saturation_flow

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"--saturation-flow {path}: cannot read it as CSV: {exc}") from None
    needed = ["intersection", "lane", "headways", "saturation_veh_h_lane"]
    absent = [c for c in needed if c not in table.columns]
    if absent:
        raise InputError(
            f"--saturation-flow {path.name}: lacks column(s) {absent}; expected the table "
            f"`ctraffic calibrate --out` writes ({', '.join(needed)}, ...)"
        )
    network_saturation_flow(table)  # InputError when no lane has enough headways
    good = table[table["headways"] >= MIN_LANE_HEADWAYS]
    foreign = sorted(set(good["lane"]) - set(network.lanes))
    if foreign:
        raise InputError(
            f"--saturation-flow {path.name}: lane(s) {foreign[:5]} are not in "
            f"{network.path.name}; calibrate the same network"
        )
    return {str(lane): float(v) for lane, v in zip(good["lane"], good["saturation_veh_h_lane"])}


def check_sources(
    from_counts: bool,
    from_routes: bool,
    at: str | None,
    window_min: int | None,
    begin: float | None,
    end: float | None,
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
