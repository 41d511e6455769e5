"""Where ``ctraffic optimize`` gets its flows: the scenario's routes or a count file's window."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from ..network import Network
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
    sc: Scenario, network: Network, demand_scale: float, *, explicit: bool
) -> tuple[pd.DataFrame, str]:
    """Return the flows of the routes departing in the window, and a description of them."""
    from ..flows import flows_from_routes, route_demand

    with tempfile.TemporaryDirectory(prefix="ctraffic-") as tmp:
        routed = route_demand(sc, Path(tmp), demand_scale=demand_scale)
        flows = flows_from_routes(routed, network, begin=sc.begin, end=sc.end)
    how = "" if explicit else " (the default without --counts)"
    return flows, f"from the routes departing {sc.begin:g}-{sc.end:g} s{how}"


def counted_flows(
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
