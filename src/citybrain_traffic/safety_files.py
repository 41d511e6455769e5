"""SUMO files of the safety check: conflicts and programs it reads, the state output it asks for."""

from __future__ import annotations

import functools
import gzip
import xml.etree.ElementTree as ET
from pathlib import Path

from .errors import InputError
from .network import Phase, admissible
from .plans import read_tl_logics

#: A NEMA program's phases as (state, yellow s, red s), from their phase attributes.
NemaPhases = list[tuple[str, float, float]]
#: A file's standard programs as (signal, admissible phases).
StandardPrograms = tuple[tuple[str, tuple[Phase, ...]], ...]


def nema_phases(path: Path) -> dict[str, NemaPhases]:
    """Return the NEMA programs of a file: per signal, (state, yellow s, red s) of each phase."""
    found: dict[str, NemaPhases] = {}
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag == "tlLogic":
                if elem.get("type") == "NEMA":
                    found[elem.get("id", "")] = [
                        (ph.get("state", ""), float(ph.get("yellow", 0)), float(ph.get("red", 0)))
                        for ph in elem.iter("phase")
                    ]
                elem.clear()
    return found


def link_foes(net_file: str | Path) -> dict[str, dict[int, frozenset[int]]]:
    """Return SUMO's conflicts between the links of each signal, from the junction requests.

    Each signal link (vehicle connection or pedestrian crossing) is found in its junction's
    internal lanes (a turn split at an internal junction by the last of its lanes); two links
    conflict when the junction's ``foes`` matrix says so. Links of different junctions of one
    joined signal never conflict.

    Raises
    ------
    InputError
        When the network file cannot be read.
    """
    tls_lanes, onward, junctions = _junction_requests(Path(net_file))
    where: dict[str, tuple[str, int]] = {}
    for junction, (lanes, _) in junctions.items():
        for index, lane in enumerate(lanes):
            where[lane] = (junction, index)
    out: dict[str, dict[int, frozenset[int]]] = {}
    for tls, links in tls_lanes.items():
        placed = {}
        for k, lane in links.items():
            seen = set()
            while lane not in where and lane in onward and lane not in seen:
                seen.add(lane)
                lane = onward[lane]
            if lane in where:
                placed[k] = where[lane]
        foes: dict[int, frozenset[int]] = {}
        for k, (junction, index) in placed.items():
            row = junctions[junction][1].get(index, "")
            foe_indices = {len(row) - 1 - b for b, bit in enumerate(row) if bit == "1"}
            foes[k] = frozenset(
                j
                for j, (other, jindex) in placed.items()
                if other == junction and jindex in foe_indices
            )
        out[tls] = foes
    return out


def _junction_requests(
    path: Path,
) -> tuple[dict[str, dict[int, str]], dict[str, str], dict[str, tuple[list[str], dict[int, str]]]]:
    """Return what ``link_foes`` reads of a network file, in one pass.

    Returns
    -------
    tls_lanes
        Per signal, the (internal) lane of each of its links, by link index.
    onward
        Internal lane -> the next one of a turn split at an internal junction.
    junctions
        Per junction, its internal lanes and the ``foes`` bits of each request, by index.
    """
    tls_lanes: dict[str, dict[int, str]] = {}
    onward: dict[str, str] = {}
    junctions: dict[str, tuple[list[str], dict[int, str]]] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            current = None
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                if event == "start" and elem.tag == "junction" and elem.get("type") != "internal":
                    current = elem.get("id", "")
                    junctions[current] = (elem.get("intLanes", "").split(), {})
                elif event == "end" and elem.tag == "request" and current is not None:
                    junctions[current][1][int(elem.attrib["index"])] = elem.get("foes", "")
                elif event == "end" and elem.tag == "junction":
                    current = None
                    elem.clear()
                elif event == "end" and elem.tag == "connection":
                    _connection(elem, tls_lanes, onward)
    except (ET.ParseError, OSError, EOFError) as exc:
        raise InputError(f"cannot read the junction requests of {path}: {exc}") from exc
    return tls_lanes, onward, junctions


def _connection(
    elem: ET.Element, tls_lanes: dict[str, dict[int, str]], onward: dict[str, str]
) -> None:
    """Note a ``<connection>``: a signal link's lane, or an internal lane's next one."""
    tl, via = elem.get("tl"), elem.get("via")
    if tl:
        lane = via or f"{elem.get('to')}_{elem.get('toLane', '0')}"
        tls_lanes.setdefault(tl, {})[int(elem.attrib["linkIndex"])] = lane
    elif elem.get("from", "").startswith(":") and via:
        onward[f"{elem.get('from')}_{elem.get('fromLane', '0')}"] = via


def read_tls_states(path: Path) -> dict[str, list[tuple[float, str]]]:
    """Read SUMO's SaveTLSSwitchStates output: per signal, (time s, state) at every switch."""
    trace: dict[str, list[tuple[float, str]]] = {}
    for _, elem in ET.iterparse(path):
        if elem.tag == "tlsState":
            trace.setdefault(elem.attrib["id"], []).append(
                (float(elem.attrib["time"]), elem.attrib["state"])
            )
        elem.clear()
    return trace


def signal_programs(path: str | Path) -> tuple[StandardPrograms, dict[str, NemaPhases]]:
    """Return a file's standard programs as (signal, admissible phases), and its NEMA programs.

    The NEMA programs as ``nema_phases`` reads them. Read once per process while the file is
    unchanged (a network is large).
    """
    return _cached_programs(str(path), Path(path).stat().st_mtime)


@functools.lru_cache(maxsize=16)
def _cached_programs(path: str, mtime: float) -> tuple[StandardPrograms, dict[str, NemaPhases]]:
    standard = tuple(
        (plan.tls_id, tuple(admissible(p) for p in plan.phases))
        for plan in read_tl_logics(Path(path))
        if plan.kind != "NEMA"
    )
    return standard, nema_phases(Path(path))


def preload(net_file: str | Path) -> None:
    """Read what the checks need of a network now, so that processes forked after it have it."""
    network_foes(net_file)
    signal_programs(net_file)


def network_foes(path: str | Path) -> dict[str, dict[int, frozenset[int]]]:
    """Return ``link_foes`` of a network file, read once per process while it is unchanged."""
    return _cached_foes(str(path), Path(path).stat().st_mtime)


@functools.lru_cache(maxsize=8)
def _cached_foes(path: str, mtime: float) -> dict[str, dict[int, frozenset[int]]]:
    return link_foes(path)
