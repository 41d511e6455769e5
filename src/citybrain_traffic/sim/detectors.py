"""Per-movement stop-line counts: a loop on each link's junction lane, binned into a tidy table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..network import Network

#: Counting interval (s): 15-minute bins, the usual traffic-count resolution.
DEFAULT_BIN_S = 900


@dataclass(frozen=True)
class MovementLoop:
    """An induction loop at the start of a link's junction (via) lane.

    Every vehicle on that lane is making this movement, so its count is the movement's stop-line
    count.
    """

    id: str
    tls_id: str
    movement: str
    lane: str


def movement_loops(network: Network) -> list[MovementLoop]:
    """Return one loop per signal-controlled link that has a junction lane."""
    loops = []
    for intersection in network.intersections.values():
        seen = set()
        for link in intersection.links:
            if not link.via_lane or link.via_lane in seen:
                continue
            seen.add(link.via_lane)
            loops.append(
                MovementLoop(
                    id=f"ctraffic_mv_{intersection.tls_id}_{link.index}_{len(seen)}",
                    tls_id=intersection.tls_id,
                    movement=link.movement,
                    lane=link.via_lane,
                )
            )
    return loops


def read_movement_counts(
    output: Path, loops: list[MovementLoop], *, origin: pd.Timestamp
) -> pd.DataFrame:
    """Read the loops' output as the tidy counts table.

    Columns: ``timestamp`` (bin start: ``origin`` + simulation time), ``intersection`` (signal
    id), ``movement`` (``<in edge>><out edge>``), ``count`` (vehicles in the bin).
    """
    by_id = {loop.id: loop for loop in loops}
    rows = []
    for _, elem in ET.iterparse(output):
        loop = by_id.get(elem.get("id", "")) if elem.tag == "interval" else None
        if loop is not None:
            rows.append(
                (
                    float(elem.attrib["begin"]),
                    loop.tls_id,
                    loop.movement,
                    int(float(elem.attrib["nVehContrib"])),
                )
            )
        elem.clear()
    table = pd.DataFrame(rows, columns=["time_s", "intersection", "movement", "count"])
    grouped = table.groupby(["time_s", "intersection", "movement"], as_index=False)
    # pandas-stubs type the sum of an as_index=False groupby as a Series; it is a DataFrame.
    table = grouped["count"].sum()  # type: ignore[assignment]
    table.insert(0, "timestamp", origin + pd.to_timedelta(table.pop("time_s"), unit="s"))
    return table.sort_values(["timestamp", "intersection", "movement"], ignore_index=True)
