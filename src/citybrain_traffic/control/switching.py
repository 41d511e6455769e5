"""Install timing plans on running signals at cycle boundaries, keeping their offsets."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import UnsafePlanError
from ..network import Phase
from ..plans import TimingPlan, validate

#: Largest offset correction per cycle, as a share of the cycle: a bigger shift is spread over
#: several cycles, as controllers do when they change plans ("smooth" transition).
MAX_CORRECTION_SHARE = 0.2
#: Offsets within this many seconds count as aligned.
ALIGNED_S = 0.5
#: SUMO's tlLogic types as TraCI numbers them (``traci.constants.TRAFFICLIGHT_TYPE_*``). SUMO's
#: delay-based type is left out on purpose: installing it at run time crashed SUMO 1.28 (segfault).
_LOGIC_TYPES = {"static": 0, "actuated": 3}


#: How the adaptive controller's real-time layer treats plan offsets (``--offsets``): ``free`` and
#: ``held`` are this switcher's (``submit(..., hold_offset=...)``), ``auto`` lets the experiments
#: layer choose by simulating both. Here, not in ``adaptive``, so that the command line lists them
#: without importing the controller.
OFFSET_MODES = ("auto", "held", "free")


@dataclass
class _Pending:
    plan: TimingPlan
    hold_offset: bool = False


@dataclass(frozen=True)
class _Held:
    """What timing a held plan's coordinated phase needs, worked out once when it is installed."""

    phase: int  # index of the coordinated phase
    start_s: float  # where the plan starts it: offset + the phases before it (s, modulo the cycle)
    min_durs: tuple[float, ...]  # every phase's minimum, for the wake estimates


def coordinated_phase(plan: TimingPlan) -> int:
    """Return the index of the green a coordinated-actuated plan holds to its offset.

    Its longest green (the first of equals), which carries the heaviest critical flow, as the
    arterial's through phase does.
    """
    greens = [(-phase.duration, i) for i, phase in enumerate(plan.phases) if phase.is_green]
    return min(greens)[1]


class PlanSwitcher:
    """Runs validated timing plans on the signals of a simulation.

    A new plan takes over when its signal next enters phase 0: the plans share the network's
    phase structure, so the state does not change at that instant and no change interval or
    minimum green is cut. From then on, the first green of each cycle is lengthened (or shortened,
    never below its minimum) by at most ``MAX_CORRECTION_SHARE`` of the cycle until the cycle
    starts at the plan's offset, which is what keeps neighbouring signals coordinated.
    An actuated plan (``kind="actuated"``) is installed as SUMO's gap-actuated program with the
    plan's minDur/maxDur per green. It runs free of its offset, unless submitted with
    ``hold_offset``: then it runs coordinated-actuated, as field controllers do. Its
    :func:`coordinated_phase` is timed at each start to end where the plan puts its end in the
    cycle (taking the time the other greens' gap-outs freed, "early return to green", or giving
    back lateness down to its minimum), within its minDur/maxDur; the cycle thus keeps the plan's
    length and offset, and the other greens gap out within theirs.

    Every plan is validated against its signal's own program when it is submitted: this is the
    one place plans reach SUMO, so no caller can install a plan that cuts a clearance.

    Parameters
    ----------
    api
        The ``libsumo`` module or a ``traci`` connection.
    references
        Each signal's own program (the network's phases), which plans are validated against.
    """

    def __init__(self, api, references: Mapping[str, tuple[Phase, ...]]):
        self.api = api
        self.references = dict(references)
        self.pending: dict[str, _Pending] = {}
        self.running: dict[str, TimingPlan] = {}
        self._wake: dict[str, float] = {}
        self.held: dict[str, _Held] = {}  # signals running a held actuated plan
        self._hold_wake: dict[str, float] = {}
        self.log: list[dict] = []

    @classmethod
    def for_signals(cls, signals: Mapping) -> PlanSwitcher:
        """Return a switcher for the ``TrafficSignal`` objects of a run (at least one)."""
        api = next(iter(signals.values())).api
        return cls(api, {tls: signal.intersection.phases for tls, signal in signals.items()})

    def submit(self, plan: TimingPlan, now: float, *, hold_offset: bool = False) -> None:
        """Queue ``plan`` for its signal; it replaces any plan still waiting.

        ``hold_offset``: run an actuated plan coordinated (see the class).

        Raises
        ------
        UnsafePlanError
            When the plan is not safe for its signal's own program, or the signal is not in the run.
        """
        reference = self.references.get(plan.tls_id)
        if reference is None:
            raise UnsafePlanError(f"{plan.tls_id}: no such signal in this run; nothing installed")
        validate(plan, reference)
        self.pending[plan.tls_id] = _Pending(plan, hold_offset and plan.kind == "actuated")
        self._wake[plan.tls_id] = self._next_boundary(plan.tls_id, now)

    def step(self, now: float) -> float | None:
        """Act on every signal whose wake time has come; return the next wake time (s)."""
        for tls, wake in list(self._wake.items()):
            if wake > now + 1e-9:
                continue
            tl = self.api.trafficlight
            if tl.getPhase(tls) != 0 or tl.getSpentDuration(tls) > 1e-6 + self._step_length():
                self._wake[tls] = self._next_boundary(tls, now)
                continue
            pending = self.pending.pop(tls, None)
            if pending is not None:
                self._install(pending.plan, now, pending.hold_offset)
            self._align(tls, now)
        for tls, wake in list(self._hold_wake.items()):
            if wake <= now + 1e-9:
                self._hold(tls, now)
        wakes = [*self._wake.values(), *self._hold_wake.values()]
        return min(wakes) if wakes else None

    def _install(self, plan: TimingPlan, now: float, hold_offset: bool = False) -> None:
        tl = self.api.trafficlight
        logic = tl.Logic(
            plan.program_id,
            _LOGIC_TYPES[plan.kind],
            0,
            [tl.Phase(p.duration, p.state, p.min_dur, p.max_dur) for p in plan.phases],
        )
        tl.setProgramLogic(plan.tls_id, logic)
        tl.setProgram(plan.tls_id, plan.program_id)
        tl.setPhase(plan.tls_id, 0)
        self.running[plan.tls_id] = plan
        if hold_offset:
            k = coordinated_phase(plan)
            self.held[plan.tls_id] = _Held(
                k,
                plan.offset + sum(p.duration for p in plan.phases[:k]),
                tuple(p.min_dur for p in plan.phases),
            )
            self._hold_wake[plan.tls_id] = now
        else:
            self.held.pop(plan.tls_id, None)
            self._hold_wake.pop(plan.tls_id, None)
        self.log.append(
            {
                "time_s": now,
                "tls_id": plan.tls_id,
                "program_id": plan.program_id,
                "cycle_s": plan.cycle_s,
                "offset_s": plan.offset,
                **({"held_phase": self.held[plan.tls_id].phase} if hold_offset else {}),
            }
        )

    def _hold(self, tls: str, now: float) -> None:
        """At the start of a held plan's coordinated phase, time it to end at its planned point."""
        plan, held = self.running[tls], self.held[tls]
        k = held.phase
        tl = self.api.trafficlight
        index, spent, step = tl.getPhase(tls), tl.getSpentDuration(tls), self._step_length()
        if index == k and spent <= step + 1e-6:
            # Entered this step. SUMO counts a set duration from the next step on.
            phase, cycle = plan.phases[k], plan.cycle_s
            late = (now - held.start_s) % cycle
            wanted = phase.duration - late if late <= cycle / 2 else phase.duration + cycle - late
            duration = min(max(wanted, phase.min_dur), phase.max_dur)
            tl.setPhaseDuration(tls, duration - step)
            end = now + duration
        else:
            end = max(now - spent + held.min_durs[index], now)
        # SUMO switches phases on its steps: a wake between two steps would run on to the later one
        # and could miss the start by a step (measured on grid, seed 1: 77 starts missed).
        wake = (
            math.floor(
                _start_of(target=k, after=index, ends=end, durations=held.min_durs) / step + 1e-9
            )
            * step
        )
        self._hold_wake[tls] = max(wake, now + step)

    def _align(self, tls: str, now: float) -> None:
        """Stretch or shorten this cycle's first green toward the plan's offset."""
        plan = self.running.get(tls)
        if plan is None or plan.kind != "static":
            # An actuated plan runs free of its offset (its cycle changes with every gap-out), or
            # is held to it by its coordinated phase (``_hold``).
            self._wake.pop(tls, None)
            return
        cycle = plan.cycle_s
        late = (now - plan.offset) % cycle  # how far past its aligned start this cycle began
        if min(late, cycle - late) <= ALIGNED_S:
            self._wake.pop(tls, None)
            return
        first = plan.phases[0]
        limit = MAX_CORRECTION_SHARE * cycle
        if first.is_green:
            shorten = min(late, limit, first.duration - first.min_green)
            lengthen = min(cycle - late, limit)
            change = -shorten if late <= cycle / 2 and shorten > 0 else lengthen
            self.api.trafficlight.setPhaseDuration(tls, first.duration + change)
        self._wake[tls] = self._next_boundary(tls, now)

    def _next_boundary(self, tls: str, now: float) -> float:
        """Return the earliest time the signal can next enter phase 0 (s).

        An actuated program may end a green at its minimum, so its phases count with their
        minDur: waking early only costs another look, waking late would miss the boundary.
        """
        tl = self.api.trafficlight
        index = tl.getPhase(tls)
        program = tl.getProgram(tls)
        plan = self.running.get(tls)
        if plan is not None and plan.program_id == program:
            # The plan installed here: its phases are the program's, no need to fetch them again.
            static = plan.kind == "static"
            durations = [phase.duration if static else phase.min_dur for phase in plan.phases]
        else:
            logic = next(lg for lg in tl.getAllProgramLogics(tls) if lg.programID == program)
            static = logic.type == _LOGIC_TYPES["static"]
            durations = [phase.duration if static else phase.minDur for phase in logic.phases]
        if static:
            t = tl.getNextSwitch(tls)
        else:
            t = now + max(0.0, durations[index] - tl.getSpentDuration(tls))
        return max(
            _start_of(target=0, after=index, ends=t, durations=durations), now + self._step_length()
        )

    def _step_length(self) -> float:
        return self.api.simulation.getDeltaT()


def _start_of(*, target: int, after: int, ends: float, durations) -> float:
    """Return when phase ``target`` starts if phase ``after`` ends at ``ends`` (s).

    The phases between last ``durations`` (indexed as the program's phases, which loop).
    """
    j = (after + 1) % len(durations)
    while j != target:
        ends += durations[j]
        j = (j + 1) % len(durations)
    return ends
