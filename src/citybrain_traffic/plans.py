"""Timing plans: safety validation against the network's program; SUMO, JSON and UTDF in and out."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import InputError, UnsafePlanError
from .network import Network, Phase, next_green, phases_between

#: Version of the JSON plan format.
PLAN_FORMAT_VERSION = 1

#: Durations closer than this (s) count as equal: SUMO stores them with millisecond resolution.
_TOLERANCE_S = 1e-3


@dataclass(frozen=True)
class TimingPlan:
    """A complete timing plan for one signal, as SUMO runs it (a ``tlLogic``).

    ``phases`` keep the network's state strings and order; durations, ``offset`` and ``cycle_s``
    are in s (``cycle_s`` defaults to the sum of the durations, and ``validate`` checks they
    agree). ``kind`` is SUMO's ``type`` (``static``, ``actuated``). ``valid_from`` and
    ``valid_until`` bound when the plan applies (ISO 8601 text, or None for open). ``provenance``
    records how it was made (inputs, solver status, objective) for audit.
    """

    tls_id: str
    program_id: str
    phases: tuple[Phase, ...]
    offset: float = 0.0
    kind: str = "static"
    cycle_s: float = math.nan
    valid_from: str | None = None
    valid_until: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if math.isnan(self.cycle_s):
            object.__setattr__(self, "cycle_s", sum(p.duration for p in self.phases))

    @property
    def greens(self) -> list[tuple[int, Phase]]:
        """The green phases with their index in the program."""
        return [(i, p) for i, p in enumerate(self.phases) if p.is_green]


def violations(program: TimingPlan, reference: tuple[Phase, ...]) -> list[str]:
    """Every way ``program`` breaks the safety rules against the network's own phases.

    The rules: same number, order and state strings of phases; every yellow and all-red interval
    keeps its length; every green lasts at least its minimum (``Phase.min_green``), and an actuated
    range (minDur..maxDur) contains the duration and respects that minimum; the durations sum to
    the cycle, and the offset lies within it.
    """
    problems = []
    if len(program.phases) != len(reference):
        return [f"{program.tls_id}: {len(program.phases)} phases, the network's program has {len(reference)}"]
    for i, (new, ref) in enumerate(zip(program.phases, reference)):
        where = f"{program.tls_id} phase {i}"
        if new.state != ref.state:
            problems.append(f"{where}: state {new.state!r} differs from the network's {ref.state!r}")
        elif not ref.is_green:
            if abs(new.duration - ref.duration) > _TOLERANCE_S:
                problems.append(
                    f"{where}: {ref.kind} interval is {new.duration:g} s, it must stay {ref.duration:g} s"
                )
        else:
            floor = ref.min_green
            if new.duration < floor - _TOLERANCE_S:
                problems.append(f"{where}: green {new.duration:g} s is below its minimum {floor:g} s")
            if new.min_dur < floor - _TOLERANCE_S:
                problems.append(f"{where}: minDur {new.min_dur:g} s is below the minimum green {floor:g} s")
            if not new.min_dur - _TOLERANCE_S <= new.duration <= new.max_dur + _TOLERANCE_S:
                problems.append(
                    f"{where}: duration {new.duration:g} s outside its range {new.min_dur:g}-{new.max_dur:g} s"
                )
    total = sum(p.duration for p in program.phases)
    if not math.isfinite(program.cycle_s) or program.cycle_s <= 0:
        problems.append(f"{program.tls_id}: cycle length is {program.cycle_s:g} s")
    elif abs(total - program.cycle_s) > _TOLERANCE_S:
        problems.append(f"{program.tls_id}: durations sum to {total:g} s, the cycle is {program.cycle_s:g} s")
    elif not 0 <= program.offset < program.cycle_s + _TOLERANCE_S:
        problems.append(f"{program.tls_id}: offset {program.offset:g} s is outside the cycle 0-{program.cycle_s:g} s")
    return problems


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
        new if ref.is_green else replace(new, duration=ref.duration, min_dur=ref.duration, max_dur=ref.duration)
        for new, ref in zip(program.phases, reference)
    )
    return replace(program, phases=phases, cycle_s=sum(p.duration for p in phases))


def plans_from_network(network: Network) -> list[TimingPlan]:
    """The network's own programs as timing plans."""
    return [
        TimingPlan(tls_id=i.tls_id, program_id=i.program_id, phases=i.phases, provenance={"source": str(network.path)})
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
    """Read the ``tlLogic`` programs of a SUMO network or additional file."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"cannot read signal programs from {path}: {exc}") from exc
    programs = []
    for logic in root.iter("tlLogic"):
        phases = []
        for ph in logic.iter("phase"):
            duration = float(ph.get("duration"))
            phases.append(
                Phase(
                    state=ph.get("state"),
                    duration=duration,
                    min_dur=float(ph.get("minDur", duration)),
                    max_dur=float(ph.get("maxDur", duration)),
                )
            )
        programs.append(
            TimingPlan(
                tls_id=logic.get("id"),
                program_id=logic.get("programID", "0"),
                phases=tuple(phases),
                offset=float(logic.get("offset", 0)),
                kind=logic.get("type", "static"),
            )
        )
    return programs


def write_json(path: Path, plans: list[TimingPlan]) -> Path:
    """Plans as JSON: ``{"format": "citybrain-traffic/plans", "version": 1, "plans": [...]}``."""
    doc = {
        "format": "citybrain-traffic/plans",
        "version": PLAN_FORMAT_VERSION,
        "plans": [plan_to_dict(p) for p in plans],
    }
    path.write_text(json.dumps(doc, indent=2, default=plans_json_default) + "\n")
    return path


def plan_to_dict(p: TimingPlan) -> dict:
    """One plan as the JSON object ``write_json`` stores (JSON-ready except numpy scalars in
    the provenance; ``json.dumps(..., default=plans_json_default)`` handles those)."""
    return {
        "tls_id": p.tls_id,
        "program_id": p.program_id,
        "kind": p.kind,
        "cycle_s": p.cycle_s,
        "offset_s": p.offset,
        "valid_from": p.valid_from,
        "valid_until": p.valid_until,
        "phases": [
            {"state": ph.state, "duration_s": ph.duration, "min_s": ph.min_dur, "max_s": ph.max_dur, "kind": ph.kind}
            for ph in p.phases
        ],
        "provenance": p.provenance,
    }


def plan_from_dict(doc: dict) -> TimingPlan:
    """The inverse of ``plan_to_dict``; ``min_s``/``max_s`` default to the duration."""
    return TimingPlan(
        tls_id=str(doc["tls_id"]),
        program_id=str(doc.get("program_id", "ctraffic")),
        phases=tuple(
            Phase(
                state=str(ph["state"]),
                duration=float(ph["duration_s"]),
                min_dur=float(ph["duration_s"] if ph.get("min_s") is None else ph["min_s"]),
                max_dur=float(ph["duration_s"] if ph.get("max_s") is None else ph["max_s"]),
            )
            for ph in doc["phases"]
        ),
        offset=float(doc.get("offset_s", 0.0)),
        kind=str(doc.get("kind", "static")),
        cycle_s=float(doc["cycle_s"]),
        valid_from=doc.get("valid_from"),
        valid_until=doc.get("valid_until"),
        provenance=dict(doc.get("provenance") or {}),
    )


def read_json(path: Path) -> list[TimingPlan]:
    """Plans written by ``write_json``; a malformed file is an ``InputError`` naming the problem."""
    try:
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != "citybrain-traffic/plans":
            raise InputError(f"{path} is not a citybrain-traffic plan file (no format marker)")
        return [plan_from_dict(p) for p in doc["plans"]]
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"cannot read plans from {path}: {type(exc).__name__}: {exc}") from exc


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
    lines += ["", "[Phases]", "Phase Data", "RECORDNAME,INTID," + ",".join(f"D{k + 1}" for k in range(width))]
    records: dict[str, list[str]] = {}
    for p in plans:
        rows: dict[str, list[str]] = {name: [] for name in ("MinGreen", "MaxGreen", "Green", "Yellow", "AllRed", "Split", "Start", "End")}
        start = 0.0
        starts = {}
        for i, ph in enumerate(p.phases):
            starts[i] = start
            start += ph.duration
        for i, ph in p.greens:
            change = phases_between(p.phases, i, next_green(p.phases, i))
            yellow = sum(c.duration for c in change if c.kind == "yellow")
            red = sum(c.duration for c in change if c.kind == "red")
            values = {
                "MinGreen": ph.min_green, "MaxGreen": ph.max_dur, "Green": ph.duration, "Yellow": yellow,
                "AllRed": red, "Split": ph.duration + yellow + red, "Start": starts[i],
                "End": (starts[i] + ph.duration + yellow + red) % p.cycle_s,
            }
            for name, value in values.items():
                rows[name].append(_fmt(value))
        for name, cells in rows.items():
            records.setdefault(name, []).append(",".join([name, p.tls_id, *cells, *[""] * (width - len(cells))]))
    for name in records:
        lines += records[name]
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def plans_json_default(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
