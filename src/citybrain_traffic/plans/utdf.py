"""UTDF-style CSV export of plans: ``[Timeplans]`` and ``[Phases]`` sections."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..network import next_green, phases_between
from .plan import TimingPlan
from .units import format_seconds

#: Rows of the ``[Phases]`` section, in the order they are written.
_PHASE_RECORDS = ("MinGreen", "MaxGreen", "Green", "Yellow", "AllRed", "Split", "Start", "End")


def utdf_text(plans: Sequence[TimingPlan]) -> str:
    """Return plans as a UTDF-style CSV with ``[Timeplans]`` and ``[Phases]`` sections.

    Lines end in CRLF. Phase columns ``D1..Dn`` are the plan's green phases in program order
    (SUMO programs are not NEMA rings). Per phase, in s: ``MinGreen``, ``MaxGreen``, ``Green``
    (this plan's green), ``Yellow`` and ``AllRed`` (the change interval after it), ``Split``
    (their sum), and ``Start``/``End`` (s into the cycle, green start and end of change
    interval).
    """
    width = max((len(p.greens) for p in plans), default=1)
    lines = ["[Timeplans]", "Timing Plan Settings", "RECORDNAME,INTID,DATA"]
    for p in plans:
        lines += [
            f"Control Type,{p.tls_id},{'Actuated' if p.kind == 'actuated' else 'Pretimed'}",
            f"Cycle Length,{p.tls_id},{format_seconds(p.cycle_s)}",
            f"Offset,{p.tls_id},{format_seconds(p.offset)}",
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
        for name, cells in _phase_rows(p).items():
            records.setdefault(name, []).append(
                ",".join([name, p.tls_id, *cells, *[""] * (width - len(cells))])
            )
    for name in records:
        lines += records[name]
    return "\r\n".join(lines) + "\r\n"


def write_utdf(path: Path, plans: Sequence[TimingPlan]) -> Path:
    """Write plans as a UTDF-style CSV (``utdf_text``) and return its path."""
    path.write_text(utdf_text(plans))
    return path


def _phase_rows(p: TimingPlan) -> dict[str, list[str]]:
    """Format, per ``[Phases]`` record, one cell per green phase of ``p`` in program order (s)."""
    rows: dict[str, list[str]] = {name: [] for name in _PHASE_RECORDS}
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
            rows[name].append(format_seconds(value))
    return rows
