"""Signal programs: safety validation against the network's program, SUMO tlLogic files in and out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import InputError, UnsafePlanError
from .network import Phase

#: Durations closer than this (s) count as equal: SUMO stores them with millisecond resolution.
_TOLERANCE_S = 1e-3


@dataclass(frozen=True)
class SignalProgram:
    """A complete program for one signal, as SUMO runs it (``tlLogic``).

    ``kind`` is SUMO's ``type`` (``static``, ``actuated``...); durations and offset in s.
    """

    tls_id: str
    program_id: str
    phases: tuple[Phase, ...]
    offset: float = 0.0
    kind: str = "static"

    @property
    def cycle_s(self) -> float:
        return sum(p.duration for p in self.phases)


def violations(program: SignalProgram, reference: tuple[Phase, ...]) -> list[str]:
    """Every way ``program`` breaks the safety rules against the network's own phases.

    The rules: same number, order and state strings of phases; every yellow and all-red interval
    keeps its length; every green lasts at least its minimum (``Phase.min_green``), and an actuated
    range (minDur..maxDur) contains the duration and respects that minimum.
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
    if program.cycle_s <= 0:
        problems.append(f"{program.tls_id}: cycle length is {program.cycle_s:g} s")
    return problems


def validate(program: SignalProgram, reference: tuple[Phase, ...]) -> SignalProgram:
    """Return ``program`` if it is safe against ``reference``, else raise ``UnsafePlanError``."""
    problems = violations(program, reference)
    if problems:
        raise UnsafePlanError("unsafe signal program: " + "; ".join(problems))
    return program


def with_clearances_of(program: SignalProgram, reference: tuple[Phase, ...]) -> SignalProgram:
    """``program`` with every yellow/all-red interval reset to the reference's length."""
    if len(program.phases) != len(reference):
        return program
    phases = tuple(
        new if ref.is_green else replace(new, duration=ref.duration, min_dur=ref.duration, max_dur=ref.duration)
        for new, ref in zip(program.phases, reference)
    )
    return replace(program, phases=phases)


def write_tl_logics(path: Path, programs: list[SignalProgram]) -> Path:
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


def read_tl_logics(path: Path) -> list[SignalProgram]:
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
            SignalProgram(
                tls_id=logic.get("id"),
                program_id=logic.get("programID", "0"),
                phases=tuple(phases),
                offset=float(logic.get("offset", 0)),
                kind=logic.get("type", "static"),
            )
        )
    return programs


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
