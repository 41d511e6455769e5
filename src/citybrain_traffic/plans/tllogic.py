"""SUMO ``tlLogic`` programs: plans as additional-file XML text, written and read."""

from __future__ import annotations

import gzip
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import InputError
from ..network import Phase
from .plan import TimingPlan
from .units import format_seconds


def tl_logics_xml(
    programs: Sequence[TimingPlan], *, params: Mapping[str, str] | None = None
) -> str:
    """Return programs as the text of a SUMO additional file (``sumo -a FILE`` runs them).

    One ``tlLogic`` per program with its ``offset`` (s); a phase carries ``minDur``/``maxDur``
    only where they differ from its duration. Durations are written to the millisecond.
    ``params`` go into every program as ``<param key= value=/>`` (e.g. a WAUT's ``GSP``).
    """
    root = ET.Element("additional")
    for program in programs:
        logic = ET.SubElement(
            root,
            "tlLogic",
            id=program.tls_id,
            type=program.kind,
            programID=program.program_id,
            offset=format_seconds(program.offset),
        )
        for phase in program.phases:
            attrs = {"duration": format_seconds(phase.duration), "state": phase.state}
            if phase.min_dur != phase.duration or phase.max_dur != phase.duration:
                attrs["minDur"] = format_seconds(phase.min_dur)
                attrs["maxDur"] = format_seconds(phase.max_dur)
            ET.SubElement(logic, "phase", attrs)
        for key, value in (params or {}).items():
            ET.SubElement(logic, "param", key=key, value=value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_tl_logics(
    path: Path, programs: Sequence[TimingPlan], *, params: Mapping[str, str] | None = None
) -> Path:
    """Write programs as a SUMO additional file (``tl_logics_xml``) and return its path."""
    path.write_text(tl_logics_xml(programs, params=params))
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
            state = ph.get("state")
            if not state:
                raise InputError(f"{where} has no state")
            duration = _xml_seconds(ph, "duration", where)
            phases.append(
                Phase(
                    state=state,
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
    not_a_number = f"{where}: {name} {text!r} is not a number of seconds"
    if text is None:
        raise InputError(not_a_number)
    try:
        value = float(text)
    except ValueError:
        raise InputError(not_a_number) from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {name} {text!r} is not a finite number of seconds")
    return value
