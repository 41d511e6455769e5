"""Check the safety envelope on the signal states SUMO showed: greens, clearances, min greens."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .network import GREEN_CHARS, TRANSITION_CHARS, Network, Phase, mark_pedestrian_clearances
from .safety_files import (
    NemaPhases,
    link_foes,
    network_foes,
    preload,
    read_tls_states,
    signal_programs,
)

#: Imported from here by the runner, the harness and the tests.
__all__ = [
    "Envelope",
    "envelope",
    "link_foes",
    "nema_envelope",
    "network_foes",
    "preload",
    "read_tls_states",
    "run_violations",
    "trace_violations",
]

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
    """Return the envelope of a program (``network.Intersection.phases``) under SUMO's ``foes``.

    ``foes`` are the conflicts between the signal's links, as ``link_foes`` reads them.
    """
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


def nema_envelope(tls_id: str, phases: NemaPhases, foes: dict[int, frozenset[int]]) -> Envelope:
    """Return the envelope of a NEMA program, ``phases`` as (state, yellow s, red s) of each.

    Each link losing green gets its phase's yellow, then its red before a conflict.
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


def trace_violations(env: Envelope, trace: list[tuple[float, str]]) -> list[str]:
    """Return every way the states SUMO showed left ``env``.

    ``trace`` is (time s, state) at each change. Checked: each state greens only links some phase
    of the program greens together; a link that loses its green shows the program's yellow for it
    (at least as long) before red; no conflicting link gets green sooner after it than the
    program's change interval between the two; a program green state, once shown, lasts its
    minimum green (the first and last shown, cut by the run's window, are not judged).
    """
    problems: list[str] = []
    # SUMO also writes a state at a program switch that does not change it: one showing, not two.
    trace = [item for n, item in enumerate(trace) if n == 0 or item[1] != trace[n - 1][1]]
    lost_at: dict[int, float] = {}  # link -> when it lost its green (s)
    yellow_from: dict[int, float] = {}  # link -> when its yellow began (s)
    previous = None
    for n, (t, state) in enumerate(trace):
        greens = frozenset(k for k, c in enumerate(state) if c in GREEN_CHARS)
        problems += _combination_problems(env, t, state, greens)
        # The links that lose their green in this very change count first: a conflicting link
        # that gains its green at the same instant has had no clearance at all.
        if previous is not None:
            problems += _change_problems(env, t, previous, state, lost_at, yellow_from)
        problems += _clearance_problems(env, t, greens, lost_at)
        if 0 < n < len(trace) - 1 and state in env.min_green_s:
            lasted = trace[n + 1][0] - t
            if lasted < env.min_green_s[state] - _TOLERANCE_S:
                problems.append(
                    f"{env.tls_id} t={t:g} s: green {state} lasted {lasted:g} s, its minimum is "
                    f"{env.min_green_s[state]:g} s"
                )
        previous = state
    return problems


def _combination_problems(env: Envelope, t: float, state: str, greens: frozenset[int]) -> list[str]:
    """Return the problem of a state greening links no program phase greens together, if it does.

    A NEMA program (``env.concurrent``) may green any links but no two conflicting ones with
    priority (``G``).
    """
    if env.concurrent:
        priority = {k for k in greens if state[k] == "G"}
        clash = next(
            ((k, j) for k in priority for j in env.conflicts.get(k, ()) if j in priority), None
        )
        if clash:
            return [
                f"{env.tls_id} t={t:g} s: state {state} gives conflicting links {clash[0]} and "
                f"{clash[1]} priority green together"
            ]
    elif not any(greens <= allowed for allowed in env.green_sets):
        return [
            f"{env.tls_id} t={t:g} s: state {state} greens links no phase of the program greens "
            "together"
        ]
    return []


def _clearance_problems(
    env: Envelope, t: float, greens: frozenset[int], lost_at: dict[int, float]
) -> list[str]:
    """Return each link green at ``t`` s too soon after a conflicting link lost its green.

    Too soon: sooner than the program's change interval between the two (``env.clearance_s``).
    """
    problems = []
    for j in greens:
        for k, since in lost_at.items():
            need = env.clearance_s.get((k, j))
            if (
                need is not None
                and j in env.conflicts.get(k, ())
                and t - since < need - _TOLERANCE_S
            ):
                problems.append(
                    f"{env.tls_id} t={t:g} s: link {j} green {t - since:g} s after conflicting "
                    f"link {k} lost its green, the program's change interval is {need:g} s"
                )
    return problems


def _change_problems(
    env: Envelope,
    t: float,
    previous: str,
    state: str,
    lost_at: dict[int, float],
    yellow_from: dict[int, float],
) -> list[str]:
    """Return the yellows skipped or cut short in the change from ``previous`` to ``state``.

    The change is at ``t`` s. Notes in ``lost_at`` and ``yellow_from`` when links lose their
    green and begin their yellow.
    """
    problems = []
    for k, (a, b) in enumerate(zip(previous, state)):
        if a in GREEN_CHARS and b not in GREEN_CHARS:
            lost_at[k] = t
            if k in env.yellow_s and b not in TRANSITION_CHARS:
                problems.append(
                    f"{env.tls_id} t={t:g} s: link {k} went from green to {b!r} without yellow"
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
                    f"{env.tls_id} t={t:g} s: link {k} showed yellow {shown:g} s, the program's "
                    f"is {env.yellow_s[k]:g} s"
                )
        if b in GREEN_CHARS:
            lost_at.pop(k, None)
    return problems


def run_violations(
    states_file: Path, network: Network, program_files: list[Path], *, net_file: Path | None = None
) -> list[str]:
    """Return every safety violation in the states a run showed (``tls_state_output_xml``).

    Each signal is checked against the envelope of every program SUMO had for it: the network's
    (``net_file``, by default ``network.path``; all its programs, since a WAUT may switch between
    them) and those of ``program_files`` (the scenario's and the controller's additional files).
    """
    net_file = Path(net_file or network.path)
    trace = read_tls_states(states_file)
    programs: dict[str, list[tuple[Phase, ...]]] = {}
    nema: dict[str, NemaPhases] = {}
    for path in [net_file, *program_files]:
        file_programs, file_nema = signal_programs(path)
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
    """Return one envelope allowing what any of several programs of a signal allows."""
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
