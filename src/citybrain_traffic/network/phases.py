"""Signal phases: their kinds, the change interval after each green, pedestrian clearances."""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Minimum green used when the network gives none (s); the usual floor for a vehicle phase.
DEFAULT_MIN_GREEN_S = 5.0

#: Signal states that give a movement green (priority ``G``, permitted ``g``).
GREEN_CHARS = frozenset("Gg")
#: Signal states that belong to a change interval (yellow, red-yellow).
TRANSITION_CHARS = frozenset("yYu")


@dataclass(frozen=True)
class Phase:
    """One phase of a signal program: its state string and durations (s).

    ``clearance`` marks a pedestrian clearance: a green phase that only takes the green away from
    crossings of the green before it (netconvert's 5 s "walk clearance"). It belongs to the change
    interval of that green, and keeps its length like a yellow (see ``mark_pedestrian_clearances``).
    """

    state: str
    duration: float
    min_dur: float
    max_dur: float
    clearance: bool = False

    @property
    def kind(self) -> str:
        """The phase's kind: ``"green"``, ``"yellow"``, ``"red"`` or ``"clearance"``.

        Green: some movement may go, no change interval. Clearance: a pedestrian clearance,
        vehicles still green.
        """
        return "clearance" if self.clearance else phase_kind(self.state)

    @property
    def is_green(self) -> bool:
        """Whether the phase is a green to serve (not a change interval or a clearance)."""
        return self.kind == "green"

    @property
    def min_green(self) -> float:
        """Shortest allowed green (s).

        The program's minDur where it sets a range, else ``DEFAULT_MIN_GREEN_S`` (or the
        phase's own duration if that is shorter).
        """
        if self.min_dur < self.max_dur:
            return self.min_dur
        return min(DEFAULT_MIN_GREEN_S, self.duration)


def phase_kind(state: str) -> str:
    """Classify a signal state string as ``"green"``, ``"yellow"`` or ``"red"`` (all-red)."""
    chars = set(state)
    if chars & TRANSITION_CHARS:
        return "yellow"
    if chars & GREEN_CHARS:
        return "green"
    return "red"


def mark_pedestrian_clearances(
    phases: tuple[Phase, ...], crossings: frozenset[int]
) -> tuple[Phase, ...]:
    """Return ``phases`` with each pedestrian clearance marked (``Phase.clearance``).

    A pedestrian clearance follows a green phase and shows the same greens less some crossings'
    (link indices ``crossings``), nothing new. Pedestrians still on the crossing need that time
    before a conflicting vehicle gets green, so it is part of the change interval, not a green to
    serve or shorten.
    """
    if not crossings:
        return phases
    out = list(phases)
    for i, phase in enumerate(phases):
        before = phases[i - 1]
        if (
            phase_kind(phase.state) != "green"
            or phase_kind(before.state) != "green"
            or i == 0
            and len(phases) < 2
        ):
            continue
        now_green, was_green = _green_links(phase.state), _green_links(before.state)
        if now_green < was_green and was_green - now_green <= crossings:
            out[i] = replace(phase, clearance=True)
    return tuple(out)


def _green_links(state: str) -> frozenset[int]:
    return frozenset(k for k, c in enumerate(state) if c in GREEN_CHARS)


def next_green(phases: tuple[Phase, ...], index: int) -> int:
    """Return the index of the green phase after ``index`` in program order (``index`` if none)."""
    n = len(phases)
    for step in range(1, n + 1):
        candidate = (index + step) % n
        if phases[candidate].is_green:
            return candidate
    return index


def phases_between(phases: tuple[Phase, ...], src: int, dst: int) -> list[Phase]:
    """List the phases strictly between ``src`` and ``dst`` in program order (a change interval)."""
    n = len(phases)
    out = []
    i = (src + 1) % n
    while i != dst and i != src:
        out.append(phases[i])
        i = (i + 1) % n
    return out


def clearance_times(phases: tuple[Phase, ...]) -> list[float]:
    """Return the length (s) of the change interval (yellow + all-red) after each green phase."""
    return [
        sum(p.duration for p in phases_between(phases, i, next_green(phases, i)))
        for i, phase in enumerate(phases)
        if phase.is_green
    ]


def admissible(phase: Phase) -> Phase:
    """Return a program's phase as the reference it is by definition.

    A green's minDur/maxDur range is widened to include its duration; a change interval is
    taken at its duration alone (s).
    """
    if phase_kind(phase.state) != "green":
        return replace(phase, min_dur=phase.duration, max_dur=phase.duration)
    return replace(
        phase,
        min_dur=min(phase.min_dur, phase.duration),
        max_dur=max(phase.max_dur, phase.duration),
    )
