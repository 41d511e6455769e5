"""Check the safety envelope on the signal states SUMO showed: program greens, clearances, minimum greens."""

from __future__ import annotations

import functools
import gzip
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .network import (
    GREEN_CHARS,
    TRANSITION_CHARS,
    Network,
    Phase,
    admissible,
    mark_pedestrian_clearances,
)
from .plans import read_tl_logics

#: Times closer than this (s) count as equal: SUMO's states change on its step grid.
_TOLERANCE_S = 1e-3


@dataclass(frozen=True)
class Envelope:
    """What a signal's program allows, as the checks on SUMO's states need it.

    ``green_sets`` are the link sets the program's phases show green (G or g); any state shown
    must green a subset of one of them. ``conflicts`` maps a link to its conflicting links: SUMO's
    foes of it that no phase of the program shows green with it. ``clearance_s`` is, for each
    conflicting pair (k losing green, j gaining it), the least clearance the program puts between
    the two: k's own yellow, then the all-red and pedestrian-clearance intervals (the other
    movements' greens and yellows in between are not counted, since a controller may skip them);
    ``yellow_s`` the least yellow a link shows when the program takes its green away, for links
    it does that to with a yellow. ``min_green_s`` is the minimum green per green state.
    """

    tls_id: str
    green_sets: tuple[frozenset[int], ...]
    conflicts: dict[int, frozenset[int]]
    clearance_s: dict[tuple[int, int], float]
    yellow_s: dict[int, float]
    min_green_s: dict[str, float]
    #: A NEMA program: SUMO shows its ring phases together, so a state may green any links
    #: but no two conflicting ones with priority (``G``).
    concurrent: bool = False


def envelope(tls_id: str, phases: tuple[Phase, ...], foes: dict[int, frozenset[int]]) -> Envelope:
    """The envelope of a program (``network.Intersection.phases``) under SUMO's ``foes`` (``link_foes``)."""
    green_sets = tuple(
        frozenset(k for k, c in enumerate(p.state) if c in GREEN_CHARS) for p in phases
    )
    together: dict[int, set[int]] = {}
    for greens in green_sets:
        for k in greens:
            together.setdefault(k, set()).update(greens)
    conflicts = {
        k: frozenset(j for j in foes.get(k, ()) if j not in together.get(k, ())) for k in foes
    }
    clearance: dict[tuple[int, int], float] = {}
    yellow: dict[int, float] = {}
    n = len(phases)
    for i in range(n):
        lost = green_sets[i] - green_sets[(i + 1) % n]
        for k in lost:
            waited, shown_yellow, in_yellow = 0.0, 0.0, True
            for step in range(1, n + 1):
                phase = phases[(i + step) % n]
                if k in green_sets[(i + step) % n]:
                    break
                for j in green_sets[(i + step) % n] & conflicts.get(k, frozenset()):
                    clearance[k, j] = min(clearance.get((k, j), math.inf), waited)
                if phase.state[k] in TRANSITION_CHARS or phase.kind in ("red", "clearance"):
                    waited += phase.duration
                in_yellow = in_yellow and phase.state[k] in TRANSITION_CHARS
                if in_yellow:
                    shown_yellow += phase.duration
            if shown_yellow > 0:
                yellow[k] = min(yellow.get(k, math.inf), shown_yellow)
    min_green: dict[str, float] = {}
    for phase in phases:
        if phase.is_green:
            min_green[phase.state] = min(min_green.get(phase.state, math.inf), phase.min_green)
    return Envelope(tls_id, green_sets, conflicts, clearance, yellow, min_green)


def nema_envelope(
    tls_id: str, phases: list[tuple[str, float, float]], foes: dict[int, frozenset[int]]
) -> Envelope:
    """The envelope of a NEMA program: ``phases`` as (state, yellow s, red s) from its phase
    attributes. Each link losing green gets its phase's yellow, then its red before a conflict.
    """
    yellow: dict[int, float] = {}
    clearance: dict[tuple[int, int], float] = {}
    for state, yellow_s, red_s in phases:
        for k, c in enumerate(state):
            if c in GREEN_CHARS:
                yellow[k] = min(yellow.get(k, math.inf), yellow_s)
                for j in foes.get(k, ()):
                    clearance[k, j] = min(clearance.get((k, j), math.inf), yellow_s + red_s)
    return Envelope(
        tls_id,
        (),
        dict(foes),
        clearance,
        {k: v for k, v in yellow.items() if v > 0},
        {},
        concurrent=True,
    )


def _nema_phases(path: Path) -> dict[str, list[tuple[str, float, float]]]:
    """The NEMA programs of a file: per signal, (state, yellow s, red s) of each phase."""
    found: dict[str, list[tuple[str, float, float]]] = {}
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag == "tlLogic":
                if elem.get("type") == "NEMA":
                    found[elem.get("id")] = [
                        (ph.get("state"), float(ph.get("yellow", 0)), float(ph.get("red", 0)))
                        for ph in elem.iter("phase")
                    ]
                elem.clear()
    return found


def link_foes(net_file: str | Path) -> dict[str, dict[int, frozenset[int]]]:
    """SUMO's conflicts between the links of each signal, from the network's junction requests.

    Each signal link (vehicle connection or pedestrian crossing) is found in its junction's
    internal lanes (a turn split at an internal junction by the last of its lanes); two links
    conflict when the junction's ``foes`` matrix says so. Links of different junctions of one
    joined signal never conflict.
    """
    path = Path(net_file)
    tls_lanes: dict[str, dict[int, str]] = {}
    onward: dict[
        str, str
    ] = {}  # internal lane -> the next one of a turn split at an internal junction
    junctions: dict[str, tuple[list[str], dict[int, str]]] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            current = None
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                if event == "start" and elem.tag == "junction" and elem.get("type") != "internal":
                    current = elem.get("id")
                    junctions[current] = (elem.get("intLanes", "").split(), {})
                elif event == "end" and elem.tag == "request" and current is not None:
                    junctions[current][1][int(elem.get("index"))] = elem.get("foes", "")
                elif event == "end" and elem.tag == "junction":
                    current = None
                    elem.clear()
                elif event == "end" and elem.tag == "connection":
                    if elem.get("tl"):
                        lane = elem.get("via") or f"{elem.get('to')}_{elem.get('toLane', '0')}"
                        tls_lanes.setdefault(elem.get("tl"), {})[int(elem.get("linkIndex"))] = lane
                    elif elem.get("from", "").startswith(":") and elem.get("via"):
                        onward[f"{elem.get('from')}_{elem.get('fromLane', '0')}"] = elem.get("via")
    except (ET.ParseError, OSError, EOFError) as exc:
        raise InputError(f"cannot read the junction requests of {path}: {exc}") from exc
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


def tls_state_output_xml(tls_ids: list[str], dest: Path) -> str:
    """Return the text of a SUMO additional file writing each signal's state at each switch.

    Parameters
    ----------
    tls_ids
        The signals.
    dest
        The file SUMO writes the states to (written out in full; ``read_tls_states`` reads it).
    """
    root = ET.Element("additional")
    for tls in tls_ids:
        ET.SubElement(
            root, "timedEvent", type="SaveTLSSwitchStates", source=tls, dest=str(dest.resolve())
        )
    return ET.tostring(root, encoding="unicode")


def tls_state_output(path: Path, tls_ids: list[str], dest: Path) -> Path:
    """Write ``tls_state_output_xml`` to ``path``; return ``path``."""
    path.write_text(tls_state_output_xml(tls_ids, dest))
    return path


def read_tls_states(path: Path) -> dict[str, list[tuple[float, str]]]:
    """SUMO's SaveTLSSwitchStates output: per signal, (time s, state) at every switch."""
    trace: dict[str, list[tuple[float, str]]] = {}
    for _, elem in ET.iterparse(path):
        if elem.tag == "tlsState":
            trace.setdefault(elem.get("id"), []).append(
                (float(elem.get("time")), elem.get("state"))
            )
        elem.clear()
    return trace


def trace_violations(env: Envelope, trace: list[tuple[float, str]]) -> list[str]:
    """Every way the states SUMO showed (``trace``: (time s, state) at each change) left ``env``.

    Checked: each state greens only links some phase of the program greens together; a link
    that loses its green shows the program's yellow for it (at least as long) before red; no
    conflicting link gets green sooner after it than the program's change interval between the
    two; a program green state, once shown, lasts its minimum green (the first and last shown,
    cut by the run's window, are not judged).
    """
    problems: list[str] = []
    tls = env.tls_id
    # SUMO also writes a state at a program switch that does not change it: one showing, not two.
    trace = [item for n, item in enumerate(trace) if n == 0 or item[1] != trace[n - 1][1]]
    lost_at: dict[int, float] = {}
    yellow_from: dict[int, float] = {}
    previous = None
    for n, (t, state) in enumerate(trace):
        greens = frozenset(k for k, c in enumerate(state) if c in GREEN_CHARS)
        if env.concurrent:
            priority = {k for k in greens if state[k] == "G"}
            clash = next(
                ((k, j) for k in priority for j in env.conflicts.get(k, ()) if j in priority), None
            )
            if clash:
                problems.append(
                    f"{tls} t={t:g} s: state {state} gives conflicting links {clash[0]} and {clash[1]} "
                    "priority green together"
                )
        elif not any(greens <= allowed for allowed in env.green_sets):
            problems.append(
                f"{tls} t={t:g} s: state {state} greens links no phase of the program greens together"
            )
        for j in greens:
            for k, since in lost_at.items():
                need = env.clearance_s.get((k, j))
                if (
                    need is not None
                    and j in env.conflicts.get(k, ())
                    and t - since < need - _TOLERANCE_S
                ):
                    problems.append(
                        f"{tls} t={t:g} s: link {j} green {t - since:g} s after conflicting link {k} lost "
                        f"its green, the program's change interval is {need:g} s"
                    )
        if previous is not None:
            for k, (a, b) in enumerate(zip(previous, state)):
                if a in GREEN_CHARS and b not in GREEN_CHARS:
                    lost_at[k] = t
                    if k in env.yellow_s and b not in TRANSITION_CHARS:
                        problems.append(
                            f"{tls} t={t:g} s: link {k} went from green to {b!r} without yellow"
                        )
                    if b in TRANSITION_CHARS:
                        yellow_from[k] = t
                elif a in TRANSITION_CHARS and b not in TRANSITION_CHARS and k in yellow_from:
                    shown = t - yellow_from.pop(k)
                    if (
                        b not in GREEN_CHARS
                        and k in env.yellow_s
                        and shown < env.yellow_s[k] - _TOLERANCE_S
                    ):
                        problems.append(
                            f"{tls} t={t:g} s: link {k} showed yellow {shown:g} s, the program's is "
                            f"{env.yellow_s[k]:g} s"
                        )
                if b in GREEN_CHARS:
                    lost_at.pop(k, None)
        if 0 < n < len(trace) - 1 and state in env.min_green_s:
            lasted = trace[n + 1][0] - t
            if lasted < env.min_green_s[state] - _TOLERANCE_S:
                problems.append(
                    f"{tls} t={t:g} s: green {state} lasted {lasted:g} s, its minimum is "
                    f"{env.min_green_s[state]:g} s"
                )
        previous = state
    return problems


def run_violations(
    states_file: Path, network: Network, program_files: list[Path], *, net_file: Path | None = None
) -> list[str]:
    """Every safety violation in the states a run showed (``tls_state_output``'s file).

    Each signal is checked against the envelope of every program SUMO had for it: the network's
    (``net_file``, by default ``network.path``; all its programs, since a WAUT may switch between
    them) and those of ``program_files`` (the scenario's and the controller's additional files).
    """
    net_file = Path(net_file or network.path)
    trace = read_tls_states(states_file)
    programs: dict[str, list[tuple[Phase, ...]]] = {}
    nema: dict[str, list[tuple[str, float, float]]] = {}
    for path in [net_file, *program_files]:
        file_programs, file_nema = _file_programs(str(path), Path(path).stat().st_mtime)
        for tls, phases in file_programs:
            programs.setdefault(tls, []).append(phases)
        nema.update(file_nema)
    foes = network_foes(net_file)
    problems = []
    for tls, shown in trace.items():
        intersection = network.intersections.get(tls)
        crossings = intersection.crossings if intersection is not None else frozenset()
        if tls in nema:
            problems += trace_violations(nema_envelope(tls, nema[tls], foes.get(tls, {})), shown)
            continue
        envelopes = [
            envelope(tls, mark_pedestrian_clearances(p, crossings), foes.get(tls, {}))
            for p in programs.get(tls, [])
        ]
        if envelopes:
            problems += trace_violations(_union(envelopes), shown)
    return problems


def _union(envelopes: list[Envelope]) -> Envelope:
    """One envelope allowing what any of several programs of a signal allows."""
    first = envelopes[0]
    if len(envelopes) == 1:
        return first
    conflicts: dict[int, frozenset[int]] = {}
    clearance: dict[tuple[int, int], float] = {}
    yellow: dict[int, float] = {}
    min_green: dict[str, float] = {}
    for env in envelopes:
        for k, js in env.conflicts.items():
            conflicts[k] = conflicts.get(k, js) & js
        for key, value in env.clearance_s.items():
            clearance[key] = min(clearance.get(key, math.inf), value)
        for k, value in env.yellow_s.items():
            yellow[k] = min(yellow.get(k, math.inf), value)
        for state, value in env.min_green_s.items():
            min_green[state] = min(min_green.get(state, math.inf), value)
    green_sets = tuple(dict.fromkeys(g for env in envelopes for g in env.green_sets))
    return Envelope(first.tls_id, green_sets, conflicts, clearance, yellow, min_green)


@functools.lru_cache(maxsize=16)
def _file_programs(
    path: str, mtime: float
) -> tuple[tuple[tuple[str, tuple[Phase, ...]], ...], dict]:
    """A file's standard programs as (signal, admissible phases), and its NEMA programs
    (``_nema_phases``); read once per process while the file is unchanged (a network is large).
    """
    standard = tuple(
        (plan.tls_id, tuple(admissible(p) for p in plan.phases))
        for plan in read_tl_logics(Path(path))
        if plan.kind != "NEMA"
    )
    return standard, _nema_phases(Path(path))


def preload(net_file: str | Path) -> None:
    """Read what the checks need of a network now, so that processes forked after it have it."""
    network_foes(net_file)
    _file_programs(str(net_file), Path(net_file).stat().st_mtime)


def network_foes(path: str | Path) -> dict[str, dict[int, frozenset[int]]]:
    """``link_foes`` of a network file, read once per process while the file is unchanged."""
    return _cached_foes(str(path), Path(path).stat().st_mtime)


@functools.lru_cache(maxsize=8)
def _cached_foes(path: str, mtime: float) -> dict[str, dict[int, frozenset[int]]]:
    return link_foes(path)
