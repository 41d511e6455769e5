"""Timing plans: safety validation against the network's program; SUMO, JSON and UTDF in and out."""

from __future__ import annotations

import gzip
import json
import math
import numbers
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import InputError, UnsafePlanError
from .network import Network, Phase, next_green, phases_between

#: Version of the JSON plan format.
PLAN_FORMAT_VERSION = 1

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


@dataclass(frozen=True)
class TimingPlan:
    """A complete timing plan for one signal, as SUMO runs it (a ``tlLogic``).

    ``phases`` keep the network's state strings and order; durations, ``offset`` and ``cycle_s``
    are in s (``cycle_s`` defaults to the sum of the durations, and ``validate`` checks they
    agree; a NaN cycle stays NaN, and unsafe). ``kind`` is SUMO's ``type`` (``static``, ``actuated``). ``valid_from`` and
    ``valid_until`` bound when the plan applies (ISO 8601 text, or None for open). ``provenance``
    records how it was made (inputs, solver status, objective) for audit.
    """

    tls_id: str
    program_id: str
    phases: tuple[Phase, ...]
    offset: float = 0.0
    kind: str = "static"
    cycle_s: float = None  # type: ignore[assignment]  # None: the sum of the durations
    valid_from: str | None = None
    valid_until: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.cycle_s is None:
            object.__setattr__(self, "cycle_s", sum(p.duration for p in self.phases))

    @property
    def greens(self) -> list[tuple[int, Phase]]:
        """The green phases with their index in the program."""
        return [(i, p) for i, p in enumerate(self.phases) if p.is_green]


def violations(program: TimingPlan, reference: tuple[Phase, ...]) -> list[str]:
    """Every way ``program`` breaks the safety rules against the network's own phases.

    The rules: every number is finite; same number, order and state strings of phases; every
    yellow and all-red interval keeps its length in its duration, minDur and maxDur alike (an
    actuated SUMO program ends a change interval at its minDur); every green lasts at least its
    minimum (``Phase.min_green``), its actuated range (minDur..maxDur) contains the duration and
    respects that minimum, and its maxDur is at most the network's longest green for it or
    ``MAX_GREEN_S``; the durations sum to the cycle, and the offset lies within it; the kind is
    one of ``PLAN_KINDS``, the program id is plain text, and ``valid_from``/``valid_until`` are
    ISO 8601 times in order.
    """
    problems = _field_problems(program)
    if len(program.phases) != len(reference):
        return problems + [
            f"{program.tls_id}: {len(program.phases)} phases, the network's program has {len(reference)}"
        ]
    for i, (new, ref) in enumerate(zip(program.phases, reference)):
        where = f"{program.tls_id} phase {i}"
        numbers = {"duration": new.duration, "minDur": new.min_dur, "maxDur": new.max_dur}
        bad = [f"{name} {value!r}" for name, value in numbers.items() if not _is_finite(value)]
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
    total = sum(p.duration for p in program.phases)
    if not _is_finite(program.cycle_s) or program.cycle_s <= 0:
        problems.append(
            f"{program.tls_id}: cycle length is {program.cycle_s!r} s, expected a positive number"
        )
    elif not _is_finite(program.offset):
        problems.append(
            f"{program.tls_id}: offset {program.offset!r} is not a finite number of seconds"
        )
    elif math.isfinite(total) and abs(total - program.cycle_s) > _TOLERANCE_S:
        problems.append(
            f"{program.tls_id}: durations sum to {total:g} s, the cycle is {program.cycle_s:g} s"
        )
    elif not 0 <= program.offset < program.cycle_s + _TOLERANCE_S:
        problems.append(
            f"{program.tls_id}: offset {program.offset:g} s is outside the cycle 0-{program.cycle_s:g} s"
        )
    return problems


def green_ceiling(reference: Phase) -> float:
    """Longest green (s) a plan may give the network's green ``reference``: ``MAX_GREEN_S``, or
    the network's own duration or maxDur where they are longer.
    """
    return max(MAX_GREEN_S, reference.duration, reference.max_dur)


def validity_time(text: str | datetime | None) -> datetime | None:
    """A plan's ``valid_from``/``valid_until`` (ISO 8601 text, or a time) as a time without zone
    (None stays None).

    Times without a zone are the signal's local time; a time with a zone is converted to this
    machine's local time.

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
            f"{where}: duration {new.duration:g} s outside its range {new.min_dur:g}-{new.max_dur:g} s"
        )
    return problems


def _field_problems(program: TimingPlan) -> list[str]:
    """What is wrong with the plan's fields other than its phases and cycle."""
    problems = []
    if program.kind not in PLAN_KINDS:
        problems.append(
            f"{program.tls_id}: kind {program.kind!r} is not one of {', '.join(PLAN_KINDS)}"
        )
    if not isinstance(program.program_id, str) or not _PROGRAM_ID.match(program.program_id):
        problems.append(
            f"{program.tls_id}: program id {program.program_id!r} must be 1-200 printable characters, no spaces"
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
            f"{program.tls_id}: valid_until {program.valid_until} is not after valid_from {program.valid_from}"
        )
    return problems


def _is_finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def validate(program: TimingPlan, reference: tuple[Phase, ...]) -> TimingPlan:
    """Return ``program`` if it is safe against ``reference``, else raise ``UnsafePlanError``."""
    problems = violations(program, reference)
    if problems:
        raise UnsafePlanError("unsafe signal program: " + "; ".join(problems))
    return program


def validate_all(plans: list[TimingPlan], network: Network) -> list[TimingPlan]:
    """Validate every plan against its signal in ``network``; all problems in one error."""
    problems = []
    for plan in plans:
        intersection = network.intersections.get(plan.tls_id)
        if intersection is None:
            problems.append(f"{plan.tls_id}: no such signal in {network.path.name}")
        else:
            problems += violations(plan, intersection.phases)
    if problems:
        raise UnsafePlanError("unsafe timing plan: " + "; ".join(problems))
    return plans


def with_clearances_of(program: TimingPlan, reference: tuple[Phase, ...]) -> TimingPlan:
    """``program`` with every yellow/all-red interval reset to the reference's length."""
    if len(program.phases) != len(reference):
        return program
    phases = tuple(
        new
        if ref.is_green
        else replace(new, duration=ref.duration, min_dur=ref.duration, max_dur=ref.duration)
        for new, ref in zip(program.phases, reference)
    )
    return replace(program, phases=phases, cycle_s=sum(p.duration for p in phases))


def plans_from_network(network: Network) -> list[TimingPlan]:
    """The network's own programs as timing plans."""
    return [
        TimingPlan(
            tls_id=i.tls_id,
            program_id=i.program_id,
            phases=i.phases,
            provenance={"source": str(network.path)},
        )
        for i in network.intersections.values()
    ]


def write_tl_logics(path: Path, programs: list[TimingPlan]) -> Path:
    """Write programs as a SUMO additional file (``sumo -a FILE`` loads and runs them)."""
    root = ET.Element("additional")
    for program in programs:
        logic = ET.SubElement(
            root,
            "tlLogic",
            id=program.tls_id,
            type=program.kind,
            programID=program.program_id,
            offset=_fmt(program.offset),
        )
        for phase in program.phases:
            attrs = {"duration": _fmt(phase.duration), "state": phase.state}
            if phase.min_dur != phase.duration or phase.max_dur != phase.duration:
                attrs["minDur"] = _fmt(phase.min_dur)
                attrs["maxDur"] = _fmt(phase.max_dur)
            ET.SubElement(logic, "phase", attrs)
    ET.indent(root)
    path.write_text(ET.tostring(root, encoding="unicode") + "\n")
    return path


def read_tl_logics(path: Path) -> list[TimingPlan]:
    """Read the ``tlLogic`` programs of a SUMO network or additional file.

    Raises
    ------
    InputError
        When the file is not XML, or a program or phase lacks an id, a state or a finite number.
    """
    try:
        with (gzip.open if Path(path).suffix == ".gz" else open)(path, "rb") as fh:
            root = ET.parse(fh).getroot()
    except (ET.ParseError, OSError, EOFError, RecursionError) as exc:
        raise InputError(f"cannot read signal programs from {path}: {exc}") from exc
    programs = []
    for logic in root.iter("tlLogic"):
        tls_id = logic.get("id")
        if not tls_id:
            raise InputError(f"{path}: a <tlLogic> has no id")
        phases = []
        for k, ph in enumerate(logic.iter("phase")):
            where = f"{path}: tlLogic {tls_id!r} phase {k}"
            if not ph.get("state"):
                raise InputError(f"{where} has no state")
            duration = _xml_seconds(ph, "duration", where)
            phases.append(
                Phase(
                    state=ph.get("state"),
                    duration=duration,
                    min_dur=_xml_seconds(ph, "minDur", where, duration),
                    max_dur=_xml_seconds(ph, "maxDur", where, duration),
                )
            )
        programs.append(
            TimingPlan(
                tls_id=tls_id,
                program_id=logic.get("programID", "0"),
                phases=tuple(phases),
                offset=_xml_seconds(logic, "offset", f"{path}: tlLogic {tls_id!r}", 0.0),
                kind=logic.get("type", "static"),
            )
        )
    return programs


def _xml_seconds(elem: ET.Element, name: str, where: str, default: float | None = None) -> float:
    text = elem.get(name)
    if text is None and default is not None:
        return default
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {name} {text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {name} {text!r} is not a finite number of seconds")
    return value


def write_json(path: Path, plans: list[TimingPlan]) -> Path:
    """Plans as JSON: ``{"format": "citybrain-traffic/plans", "version": 1, "plans": [...]}``.

    The file is strict JSON: a plan field that is not a finite number is refused
    (``UnsafePlanError``), and a non-finite number in the provenance (audit data, such as the
    objective of a solve that found none) is written as ``null``.
    """
    bad = [
        f"{p.tls_id}: {name} {value!r}"
        for p in plans
        for name, value in [("cycle_s", p.cycle_s), ("offset_s", p.offset)]
        + [
            (f"phase {i} {n}", v)
            for i, ph in enumerate(p.phases)
            for n, v in (("duration_s", ph.duration), ("min_s", ph.min_dur), ("max_s", ph.max_dur))
        ]
        if not _is_finite(value)
    ]
    if bad:
        raise UnsafePlanError(
            "not written, a plan carries a number that is not finite: " + "; ".join(bad)
        )
    doc = {
        "format": "citybrain-traffic/plans",
        "version": PLAN_FORMAT_VERSION,
        "plans": [plan_to_dict(p) | {"provenance": _finite_or_null(p.provenance)} for p in plans],
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=False, default=plans_json_default) + "\n")
    return path


def plan_to_dict(p: TimingPlan) -> dict:
    """One plan as the JSON object ``write_json`` stores (JSON-ready except numpy scalars in
    the provenance; ``json.dumps(..., default=plans_json_default)`` handles those).
    """
    return {
        "tls_id": p.tls_id,
        "program_id": p.program_id,
        "kind": p.kind,
        "cycle_s": p.cycle_s,
        "offset_s": p.offset,
        "valid_from": p.valid_from,
        "valid_until": p.valid_until,
        "phases": [
            {
                "state": ph.state,
                "duration_s": ph.duration,
                "min_s": ph.min_dur,
                "max_s": ph.max_dur,
                "kind": ph.kind,
            }
            for ph in p.phases
        ],
        "provenance": p.provenance,
    }


def plan_from_dict(doc: dict) -> TimingPlan:
    """The inverse of ``plan_to_dict``; ``min_s``/``max_s`` default to the duration.

    Raises
    ------
    InputError
        When a field is missing, or a number is not a finite number (NaN, infinity, text).
    """
    if not isinstance(doc, dict):
        raise InputError(f"a plan must be a JSON object, got {type(doc).__name__}")
    tls_id = doc.get("tls_id")
    if not isinstance(tls_id, str) or not tls_id:
        raise InputError(f"a plan has no tls_id (got {tls_id!r})")
    phases = doc.get("phases")
    if not isinstance(phases, list) or not all(isinstance(ph, dict) for ph in phases):
        raise InputError(f"{tls_id}: phases must be a list of objects")
    out = []
    for k, ph in enumerate(phases):
        where = f"{tls_id} phase {k}"
        if not isinstance(ph.get("state"), str):
            raise InputError(f"{where}: state {ph.get('state')!r} is not a signal state string")
        duration = _json_seconds(ph, "duration_s", where)
        out.append(
            Phase(
                state=ph["state"],
                duration=duration,
                min_dur=_json_seconds(ph, "min_s", where, duration),
                max_dur=_json_seconds(ph, "max_s", where, duration),
                clearance=ph.get("kind") == "clearance",
            )
        )
    for name in ("valid_from", "valid_until"):
        if doc.get(name) is not None and not isinstance(doc[name], str):
            raise InputError(f"{tls_id}: {name} {doc[name]!r} is not ISO 8601 text")
    provenance = doc.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise InputError(f"{tls_id}: provenance must be a JSON object")
    return TimingPlan(
        tls_id=tls_id,
        program_id=str(doc.get("program_id", "ctraffic")),
        phases=tuple(out),
        offset=_json_seconds(doc, "offset_s", tls_id, 0.0),
        kind=str(doc.get("kind", "static")),
        cycle_s=_json_seconds(doc, "cycle_s", tls_id),
        valid_from=doc.get("valid_from"),
        valid_until=doc.get("valid_until"),
        provenance=dict(provenance),
    )


def _json_seconds(doc: dict, name: str, where: str, default: float | None = None) -> float:
    value = doc.get(name)
    if value is None and default is not None:
        return default
    if not _is_finite(value):
        raise InputError(f"{where}: {name} {value!r} is not a finite number of seconds")
    return float(value)


def read_json(path: Path) -> list[TimingPlan]:
    """Plans written by ``write_json``; a malformed file is an ``InputError`` naming the problem.

    Strict JSON: ``NaN`` and ``Infinity`` are refused, as JSON itself has no such numbers.
    """
    try:
        doc = json.loads(Path(path).read_text(), parse_constant=_refuse_constant)
        if not isinstance(doc, dict) or doc.get("format") != "citybrain-traffic/plans":
            raise InputError(f"{path} is not a citybrain-traffic plan file (no format marker)")
        if not isinstance(doc.get("plans"), list):
            raise InputError(f"{path}: 'plans' must be a list of plans")
        return [plan_from_dict(p) for p in doc["plans"]]
    except InputError as exc:
        if str(path) in str(exc):
            raise
        raise InputError(f"cannot read plans from {path}: {exc}") from exc
    except RecursionError:
        raise InputError(
            f"cannot read plans from {path}: nested too deeply to be a plan file"
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read plans from {path}: {type(exc).__name__}: {exc}") from exc


def _refuse_constant(name: str):
    raise ValueError(
        f"{name} is not a finite number (a plan's numbers must be, and JSON has no {name})"
    )


def read_plans(path: Path) -> list[TimingPlan]:
    """Plans from a JSON plan file or a SUMO additional/network file (by content)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"plan file not found: {path}")
    head = path.read_text(errors="replace")[:200].lstrip()
    return read_json(path) if head.startswith("{") else read_tl_logics(path)


def write_utdf(path: Path, plans: list[TimingPlan]) -> Path:
    """Plans as a UTDF-style CSV with ``[Timeplans]`` and ``[Phases]`` sections.

    Phase columns ``D1..Dn`` are the plan's green phases in program order (SUMO programs are not
    NEMA rings). Per phase: ``MinGreen``, ``MaxGreen``, ``Green`` (this plan's green),
    ``Yellow`` and ``AllRed`` (the change interval after it), ``Split`` (their sum), and
    ``Start``/``End`` (s into the cycle, green start and end of change interval).
    """
    width = max((len(p.greens) for p in plans), default=1)
    lines = ["[Timeplans]", "Timing Plan Settings", "RECORDNAME,INTID,DATA"]
    for p in plans:
        lines += [
            f"Control Type,{p.tls_id},{'Actuated' if p.kind == 'actuated' else 'Pretimed'}",
            f"Cycle Length,{p.tls_id},{_fmt(p.cycle_s)}",
            f"Offset,{p.tls_id},{_fmt(p.offset)}",
            f"Referenced To,{p.tls_id},Begin of Green",
            f"Reference Phase,{p.tls_id},1",
        ]
    lines += [
        "",
        "[Phases]",
        "Phase Data",
        "RECORDNAME,INTID," + ",".join(f"D{k + 1}" for k in range(width)),
    ]
    records: dict[str, list[str]] = {}
    for p in plans:
        rows: dict[str, list[str]] = {
            name: []
            for name in (
                "MinGreen",
                "MaxGreen",
                "Green",
                "Yellow",
                "AllRed",
                "Split",
                "Start",
                "End",
            )
        }
        start = 0.0
        starts = {}
        for i, ph in enumerate(p.phases):
            starts[i] = start
            start += ph.duration
        for i, ph in p.greens:
            change = phases_between(p.phases, i, next_green(p.phases, i))
            # Vehicles keep their green through a pedestrian clearance.
            green = ph.duration + sum(c.duration for c in change if c.kind == "clearance")
            yellow = sum(c.duration for c in change if c.kind == "yellow")
            red = sum(c.duration for c in change if c.kind == "red")
            values = {
                "MinGreen": ph.min_green,
                "MaxGreen": ph.max_dur,
                "Green": green,
                "Yellow": yellow,
                "AllRed": red,
                "Split": green + yellow + red,
                "Start": starts[i],
                "End": (starts[i] + green + yellow + red) % p.cycle_s,
            }
            for name, value in values.items():
                rows[name].append(_fmt(value))
        for name, cells in rows.items():
            records.setdefault(name, []).append(
                ",".join([name, p.tls_id, *cells, *[""] * (width - len(cells))])
            )
    for name in records:
        lines += records[name]
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def _finite_or_null(value: Any) -> Any:
    """``value`` (JSON-like) with its non-finite numbers as None, numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def plans_json_default(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
