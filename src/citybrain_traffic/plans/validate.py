"""Check timing plans against the safety rules of the network's own program."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from ..errors import UnsafePlanError
from ..network import Network, Phase
from ..network.crossings import PedestrianGreen, pedestrian_greens
from .plan import TimingPlan
from .units import is_finite

#: Durations closer than this (s) count as equal: SUMO stores them with millisecond resolution.
_TOLERANCE_S = 1e-3

#: Longest green (s) a plan may give a phase whose network program runs none longer. It bounds the
#: red every other movement of the signal can be shown; a longer green of the network's own
#: program (its duration or maxDur) stays admissible.
MAX_GREEN_S = 300.0

#: The SUMO program types a plan may have (``tlLogic type``): fixed time, and gap-actuated.
PLAN_KINDS = ("static", "actuated")

#: What a program id may look like: SUMO writes it into XML attributes and TraCI calls.
_PROGRAM_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,200}$")


def violations(
    program: TimingPlan,
    reference: tuple[Phase, ...],
    *,
    pedestrian: Mapping[int, PedestrianGreen] | None = None,
) -> list[str]:
    """Return every way ``program`` breaks the safety rules against the network's own phases.

    The rules: every number is finite; same number, order and state strings of phases; every
    yellow and all-red interval keeps its length in its duration, minDur and maxDur alike (an
    actuated SUMO program ends a change interval at its minDur); every green lasts at least its
    minimum (``Phase.min_green``), its actuated range (minDur..maxDur) contains the duration and
    respects that minimum, and its maxDur is at most the network's longest green for it or
    ``MAX_GREEN_S``; a green with a crossing green in it (``pedestrian``, by phase index, from
    ``network.crossings.pedestrian_greens``) lasts at least its pedestrian time, and so does its
    minDur unless the network's own minDur is shorter; the durations sum to the cycle, and the
    offset lies within it; the kind is one of ``PLAN_KINDS``, the program id is plain text, and
    ``valid_from``/``valid_until`` are ISO 8601 times in order. Durations and the offset are in s.
    """
    problems = _field_problems(program)
    if len(program.phases) != len(reference):
        return problems + [
            f"{program.tls_id}: {len(program.phases)} phases, "
            f"the network's program has {len(reference)}"
        ]
    for i, (new, ref) in enumerate(zip(program.phases, reference)):
        where = f"{program.tls_id} phase {i}"
        numbers = {"duration": new.duration, "minDur": new.min_dur, "maxDur": new.max_dur}
        bad = [f"{name} {value!r}" for name, value in numbers.items() if not is_finite(value)]
        if bad:
            problems.append(f"{where}: {', '.join(bad)} is not a finite number of seconds")
        elif new.state != ref.state:
            problems.append(
                f"{where}: state {new.state!r} differs from the network's {ref.state!r}"
            )
        elif not ref.is_green:
            problems += [
                f"{where}: {ref.kind} interval {'is' if name == 'duration' else name} {value:g} s, "
                f"it must stay {ref.duration:g} s"
                for name, value in numbers.items()
                if abs(value - ref.duration) > _TOLERANCE_S
            ]
        else:
            problems += _green_problems(where, new, ref)
            if pedestrian and i in pedestrian:
                problems += _pedestrian_problems(where, new, ref, pedestrian[i])
    total = sum(p.duration for p in program.phases)
    if not is_finite(program.cycle_s) or program.cycle_s <= 0:
        problems.append(
            f"{program.tls_id}: cycle length is {program.cycle_s!r} s, expected a positive number"
        )
    elif not is_finite(program.offset):
        problems.append(
            f"{program.tls_id}: offset {program.offset!r} is not a finite number of seconds"
        )
    elif math.isfinite(total) and abs(total - program.cycle_s) > _TOLERANCE_S:
        problems.append(
            f"{program.tls_id}: durations sum to {total:g} s, the cycle is {program.cycle_s:g} s"
        )
    elif not 0 <= program.offset < program.cycle_s + _TOLERANCE_S:
        problems.append(
            f"{program.tls_id}: offset {program.offset:g} s "
            f"is outside the cycle 0-{program.cycle_s:g} s"
        )
    return problems


def green_ceiling(reference: Phase) -> float:
    """Return the longest green (s) a plan may give the network's green ``reference``.

    That is ``MAX_GREEN_S``, or the network's own duration or maxDur where they are longer.
    """
    return max(MAX_GREEN_S, reference.duration, reference.max_dur)


def validity_time(text: str | datetime | None) -> datetime | None:
    """Read a plan's ``valid_from``/``valid_until`` as a time without zone.

    ``text`` is ISO 8601 text or a time; None stays None. Times without a zone are the signal's
    local time; a time with a zone is converted to this machine's local time.

    Raises
    ------
    ValueError
        For anything but ISO 8601 text, or a time that cannot be converted.
    """
    if text is None:
        return None
    if not isinstance(text, (str, datetime)):
        raise ValueError(f"{text!r} is not ISO 8601 text")
    try:
        value = text if isinstance(text, datetime) else datetime.fromisoformat(text)
        return value.astimezone().replace(tzinfo=None) if value.tzinfo is not None else value
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 time ({exc})") from None


def _green_problems(where: str, new: Phase, ref: Phase) -> list[str]:
    problems = []
    floor, ceiling = ref.min_green, green_ceiling(ref)
    if new.duration < floor - _TOLERANCE_S:
        problems.append(f"{where}: green {new.duration:g} s is below its minimum {floor:g} s")
    if new.min_dur < floor - _TOLERANCE_S:
        problems.append(f"{where}: minDur {new.min_dur:g} s is below the minimum green {floor:g} s")
    if new.max_dur > ceiling + _TOLERANCE_S:
        problems.append(
            f"{where}: maxDur {new.max_dur:g} s is above the longest green {ceiling:g} s"
        )
    if not new.min_dur - _TOLERANCE_S <= new.duration <= new.max_dur + _TOLERANCE_S:
        problems.append(
            f"{where}: duration {new.duration:g} s "
            f"outside its range {new.min_dur:g}-{new.max_dur:g} s"
        )
    return problems


def _pedestrian_problems(where: str, new: Phase, ref: Phase, walk: PedestrianGreen) -> list[str]:
    floor = walk.minimum_s
    why = f"its pedestrian time {floor:.1f} s ({walk.describe()})"
    if walk.capped:
        why = f"its pedestrian time, capped at the network's own {floor:g} s ({walk.describe()})"
    problems = []
    if new.duration < floor - _TOLERANCE_S:
        problems.append(f"{where}: green {new.duration:g} s is shorter than {why}")
    if new.min_dur < min(floor, ref.min_dur) - _TOLERANCE_S:
        problems.append(f"{where}: minDur {new.min_dur:g} s is shorter than {why}")
    return problems


def _field_problems(program: TimingPlan) -> list[str]:
    """List what is wrong with the plan's fields other than its phases and cycle."""
    problems = []
    if program.kind not in PLAN_KINDS:
        problems.append(
            f"{program.tls_id}: kind {program.kind!r} is not one of {', '.join(PLAN_KINDS)}"
        )
    if not isinstance(program.program_id, str) or not _PROGRAM_ID.match(program.program_id):
        problems.append(
            f"{program.tls_id}: program id {program.program_id!r} "
            "must be 1-200 printable characters, no spaces"
        )
    times = {}
    for name in ("valid_from", "valid_until"):
        try:
            times[name] = validity_time(getattr(program, name))
        except ValueError as exc:
            problems.append(f"{program.tls_id}: {name} {exc}")
    start, end = times.get("valid_from"), times.get("valid_until")
    if start is not None and end is not None and not start < end:
        problems.append(
            f"{program.tls_id}: valid_until {program.valid_until} "
            f"is not after valid_from {program.valid_from}"
        )
    return problems


def validate(
    program: TimingPlan,
    reference: tuple[Phase, ...],
    *,
    pedestrian: Mapping[int, PedestrianGreen] | None = None,
) -> TimingPlan:
    """Return ``program`` if it is safe against ``reference``, else raise ``UnsafePlanError``.

    ``pedestrian`` gives the pedestrian time of the greens that serve crossings (``violations``).
    """
    problems = violations(program, reference, pedestrian=pedestrian)
    if problems:
        raise UnsafePlanError("unsafe signal program: " + "; ".join(problems))
    return program


def validate_all(plans: list[TimingPlan], network: Network) -> list[TimingPlan]:
    """Validate every plan against its signal in ``network``; all problems in one error.

    Greens that serve pedestrian crossings are checked against their pedestrian time too.
    """
    problems = []
    walks = pedestrian_greens(network)
    for plan in plans:
        intersection = network.intersections.get(plan.tls_id)
        if intersection is None:
            problems.append(f"{plan.tls_id}: no such signal in {network.path.name}")
        else:
            problems += violations(plan, intersection.phases, pedestrian=walks.get(plan.tls_id))
    if problems:
        raise UnsafePlanError("unsafe timing plan: " + "; ".join(problems))
    return plans


def with_clearances_of(program: TimingPlan, reference: tuple[Phase, ...]) -> TimingPlan:
    """Return ``program`` with every yellow/all-red interval reset to the reference's length."""
    if len(program.phases) != len(reference):
        return program
    phases = tuple(
        new
        if ref.is_green
        else replace(new, duration=ref.duration, min_dur=ref.duration, max_dur=ref.duration)
        for new, ref in zip(program.phases, reference)
    )
    return replace(program, phases=phases, cycle_s=sum(p.duration for p in phases))
