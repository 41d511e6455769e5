"""The SUMO additional files we write for runs: each builder returns the file's text."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path


def write_additional(path: Path, text: str) -> Path:
    """Write an additional file's ``text`` to ``path`` and return ``path``."""
    path.write_text(text)
    return path


def measurement_xml(edges: Sequence[str], *, output: Path, begin: float, end: float) -> str:
    """Return an additional asking SUMO for time loss and counts on ``edges`` (``edgeData``).

    Parameters
    ----------
    edges
        Edge ids to measure.
    output
        The file SUMO writes the measurements to.
    begin, end
        The measured window, simulation time in s.
    """
    root = ET.Element("additional")
    ET.SubElement(
        root,
        "edgeData",
        id="ctraffic_approaches",
        file=str(output),
        begin=f"{begin:g}",
        end=f"{end:g}",
        edges=" ".join(edges),
        excludeEmpty="true",
    )
    return ET.tostring(root, encoding="unicode")


def induction_loops_xml(
    loops: Iterable[tuple[str, str]],
    *,
    period_s: float,
    begin: float | None = None,
    output: str = "/dev/null",
) -> str:
    """Return an additional with an induction loop at the start of each lane.

    Parameters
    ----------
    loops
        (loop id, lane id) pairs.
    period_s
        The loops' aggregation period, s (read live through TraCI).
    begin
        Simulation time the loops start counting, s (None: from the start).
    output
        The file SUMO writes their aggregates to (none is needed when TraCI reads them).
    """
    root = ET.Element("additional")
    for loop_id, lane in loops:
        attributes = {"id": loop_id, "lane": lane, "pos": "0", "period": f"{period_s:g}"}
        if begin is not None:
            attributes["begin"] = f"{begin:g}"
        ET.SubElement(root, "inductionLoop", attributes, file=output)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def speed_change_xml(
    lanes: Sequence[str], *, begin: float, end: float, speed_m_s: float, normal_m_s: float
) -> str:
    """Return an additional that slows ``lanes`` to ``speed_m_s`` from ``begin`` to ``end`` (s).

    A variable speed sign: an incident that slows an approach, then its normal speed again.
    """
    root = ET.Element("additional")
    sign = ET.SubElement(root, "variableSpeedSign", id="ctraffic_incident", lanes=" ".join(lanes))
    ET.SubElement(sign, "step", time=f"{begin:g}", speed=f"{speed_m_s:.2f}")
    ET.SubElement(sign, "step", time=f"{end:g}", speed=f"{normal_m_s:.2f}")
    return ET.tostring(root, encoding="unicode") + "\n"


def tls_state_output_xml(tls_ids: Sequence[str], dest: Path) -> str:
    """Return an additional asking SUMO to write each signal's state at each switch.

    Parameters
    ----------
    tls_ids
        The signals.
    dest
        The file SUMO writes the states to (``safety.read_tls_states`` reads it).
    """
    root = ET.Element("additional")
    for tls in tls_ids:
        ET.SubElement(
            root, "timedEvent", type="SaveTLSSwitchStates", source=tls, dest=str(dest.resolve())
        )
    return ET.tostring(root, encoding="unicode")
