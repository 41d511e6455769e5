"""A traffic signal as controllers see it: green phases, safe transitions, minimum greens."""

from __future__ import annotations

from ..network import GREEN_CHARS, Intersection, Phase, next_green, phases_between
from ..safety import Envelope

#: Yellow time (s) used only when a program has no change interval at all to copy from.
FALLBACK_YELLOW_S = 3.0


class TrafficSignal:
    """One signal in a running simulation.

    Controllers choose which green phase to serve; the signal plays the change interval in between
    (the program's own yellow/all-red phases, same lengths) and never cuts a minimum green.

    Parameters
    ----------
    api
        The ``libsumo`` module or a ``traci`` connection.
    intersection
        The intersection's links and measurement lanes from the network.
    phases
        The program running in the simulation (it may differ from the net file's when a controller
        loaded its own).
    envelope
        The program's safety envelope (``safety.envelope``): with it, a transition the program
        never makes gets the all-red the program puts between each link losing green and each
        conflicting link gaining it.
    """

    def __init__(
        self,
        api,
        intersection: Intersection,
        phases: tuple[Phase, ...],
        envelope: Envelope | None = None,
    ):
        self.api = api
        self.envelope = envelope
        self.intersection = intersection
        self.id = intersection.tls_id
        self.phases = phases
        self.green_indices = tuple(i for i, p in enumerate(phases) if p.is_green)
        if not self.green_indices:
            raise ValueError(f"signal {self.id} has no green phase")
        self.current: int = self.green_indices[0]
        self.green_start: float = 0.0
        self._pending: list[tuple[float, str, int | None]] = []

    # --- the program's structure -------------------------------------------------------------

    def min_green(self, index: int) -> float:
        """Minimum green of a green phase (s)."""
        return self.phases[index].min_green

    def next_green(self, index: int) -> int:
        """Return the green phase that follows ``index`` in program order."""
        return next_green(self.phases, index)

    def transition(self, src: int, dst: int) -> list[tuple[str, float]]:
        """Return the change interval from green ``src`` to green ``dst``: (state, s) pairs.

        To the program's next green this is the program's own phases, unchanged. To another green,
        the intervals after ``src`` keep their lengths, pedestrian clearances included; each link
        that loses its green keeps it where the program does in a pedestrian clearance, shows
        yellow in the yellow intervals and red in the all-red ones (and red from its first red
        on); a link green in both stays green.
        """
        if src == dst:
            return []
        own = phases_between(self.phases, src, self.next_green(src))
        if dst == self.next_green(src):
            return [(p.state, p.duration) for p in own]
        intervals = own or [
            Phase(
                state="y" * len(self.phases[src].state),
                duration=self._any_yellow_s(),
                min_dur=0,
                max_dur=0,
            )
        ]
        before, after = self.phases[src].state, self.phases[dst].state
        stopped: set[int] = set()  # links that lost their green and have shown red since
        result = []
        for phase in intervals:
            chars = []
            for k, (a, b) in enumerate(zip(before, after)):
                if a in GREEN_CHARS and b in GREEN_CHARS:
                    chars.append(a)
                elif a in GREEN_CHARS:
                    if k in stopped:
                        chars.append("r")
                    elif phase.kind == "clearance" and phase.state[k] in GREEN_CHARS:
                        chars.append(phase.state[k])
                    elif phase.kind == "yellow":
                        chars.append("y")
                    else:
                        chars.append("r")
                        stopped.add(k)
                else:
                    chars.append(phase.state[k] if phase.state[k] in "rs" else "r")
            result.append(("".join(chars), phase.duration))
        extra = self._missing_clearance(result, before, after)
        if extra > 0:
            result.append(
                (
                    "".join(
                        a if a in GREEN_CHARS and b in GREEN_CHARS else "r"
                        for a, b in zip(before, after)
                    ),
                    extra,
                )
            )
        return result

    def _missing_clearance(
        self, intervals: list[tuple[str, float]], before: str, after: str
    ) -> float:
        """Return the all-red (s) that ``intervals`` lack for the envelope's clearances.

        The clearance is between each link losing green and each conflicting link gaining it.
        """
        if self.envelope is None:
            return 0.0
        gaining = {
            j
            for j, (a, b) in enumerate(zip(before, after))
            if b in GREEN_CHARS and a not in GREEN_CHARS
        }
        missing = 0.0
        for k, (a, b) in enumerate(zip(before, after)):
            if a not in GREEN_CHARS or b in GREEN_CHARS:
                continue
            given = sum(duration for state, duration in intervals if state[k] not in GREEN_CHARS)
            for j in gaining & self.envelope.conflicts.get(k, frozenset()):
                missing = max(missing, self.envelope.clearance_s.get((k, j), 0.0) - given)
        return missing

    def _any_yellow_s(self) -> float:
        yellows = [p.duration for p in self.phases if p.kind == "yellow"]
        return max(yellows) if yellows else FALLBACK_YELLOW_S

    # --- running it ----------------------------------------------------------------------------

    @property
    def in_transition(self) -> bool:
        """Whether the signal is playing a change interval."""
        return bool(self._pending)

    def green_time(self, now: float) -> float:
        """How long the current green has been showing (s)."""
        return now - self.green_start

    def take_over(self, now: float) -> float | None:
        """Start controlling from the program's current state; return the next event time."""
        tl = self.api.trafficlight
        index = tl.getPhase(self.id)
        if self.phases[index].is_green:
            self.current = index
            self.green_start = now - tl.getSpentDuration(self.id)
            self._apply(self.phases[index].state)
            return None
        # Finish the change interval the program is in, then its next green.
        target = self.next_green(index)
        t = tl.getNextSwitch(self.id)
        self._pending = [(now, self.phases[index].state, None)]
        for phase in phases_between(self.phases, index, target):
            self._pending.append((t, phase.state, None))
            t += phase.duration
        self._pending.append((t, self.phases[target].state, target))
        return self.update(now)

    def switch_to(self, dst: int, now: float) -> float | None:
        """Leave the current green for green ``dst``; return the next event time (s).

        Asked before the current green has lasted its minimum, the change starts when it has.
        """
        if dst == self.current or self._pending:
            return self.next_event
        t = max(now, self.green_start + self.min_green(self.current))
        for state, duration in self.transition(self.current, dst):
            self._pending.append((t, state, None))
            t += duration
        self._pending.append((t, self.phases[dst].state, dst))
        return self.update(now)

    def update(self, now: float) -> float | None:
        """Apply the states that are due; return the time of the next pending one, if any."""
        while self._pending and self._pending[0][0] <= now + 1e-9:
            start, state, green = self._pending.pop(0)
            self._apply(state)
            if green is not None:
                self.current = green
                self.green_start = start
        return self.next_event

    @property
    def next_event(self) -> float | None:
        """The time of the next state change queued (s), or None."""
        return self._pending[0][0] if self._pending else None

    def _apply(self, state: str) -> None:
        self.api.trafficlight.setRedYellowGreenState(self.id, state)
