"""UTDF-style CSV export of plans: ``[Timeplans]`` and ``[Phases]`` sections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..network import NemaFit, next_green, phases_between
from .plan import TimingPlan
from .units import format_seconds

#: Rows of the ``[Phases]`` section, in the order they are written.
_PHASE_RECORDS = ("MinGreen", "MaxGreen", "Green", "Yellow", "AllRed", "Split", "Start", "End")


def utdf_text(plans: Sequence[TimingPlan], *, nema: Mapping[str, NemaFit] | None = None) -> str:
    """Return plans as a UTDF-style CSV with ``[Timeplans]`` and ``[Phases]`` sections.

    Lines end in CRLF. Phase columns ``D1..D8`` are NEMA phases where the signal's program fits
    the dual ring (``nema``, from ``network.fit_network``); otherwise ``D1..Dn`` are the plan's
    green phases in program order. A comment line (``;``) per signal says which. A NEMA phase
    that stays green over several greens of the program (phase 6 through 1+6 and 2+6) is one
    column from its first green to the end of its last. Per phase, in s: ``MinGreen``,
    ``MaxGreen``, ``Green`` (this plan's green), ``Yellow`` and ``AllRed`` (the change interval
    after it), ``Split`` (their sum), and ``Start``/``End`` (s into the cycle, green start and
    end of change interval).
    """
    columns = {p.tls_id: _columns(p, (nema or {}).get(p.tls_id)) for p in plans}
    width = max((len(cols) for cols, _ in columns.values()), default=1)
    lines = ["[Timeplans]", "Timing Plan Settings", "RECORDNAME,INTID,DATA"]
    for p in plans:
        lines += [
            f"Control Type,{p.tls_id},{'Actuated' if p.kind == 'actuated' else 'Pretimed'}",
            f"Cycle Length,{p.tls_id},{format_seconds(p.cycle_s)}",
            f"Offset,{p.tls_id},{format_seconds(p.offset)}",
            f"Referenced To,{p.tls_id},Begin of Green",
            f"Reference Phase,{p.tls_id},{_reference_phase(columns[p.tls_id][0])}",
        ]
    lines += ["", "[Phases]", "Phase Data"]
    lines += [f"; {columns[p.tls_id][1]}" for p in plans]
    lines.append("RECORDNAME,INTID," + ",".join(f"D{k + 1}" for k in range(width)))
    records: dict[str, list[str]] = {}
    for p in plans:
        for name, cells in _phase_rows(p, columns[p.tls_id][0]).items():
            records.setdefault(name, []).append(
                ",".join([name, p.tls_id, *cells, *[""] * (width - len(cells))])
            )
    for name in records:
        lines += records[name]
    return "\r\n".join(lines) + "\r\n"


def write_utdf(
    path: Path, plans: Sequence[TimingPlan], *, nema: Mapping[str, NemaFit] | None = None
) -> Path:
    """Write plans as a UTDF-style CSV (``utdf_text``) and return its path."""
    path.write_text(utdf_text(plans, nema=nema))
    return path


def _columns(p: TimingPlan, fit: NemaFit | None) -> tuple[list[list[int]], str]:
    """Return the program's greens of each ``D`` column (none: an unused NEMA phase), and a note."""
    greens = [i for i, _ in p.greens]
    if fit is not None and fit.fits and [ph.index for ph in fit.phases] == greens:
        columns = []
        for n in range(1, 9):
            on = [n in ph.numbers for ph in fit.phases]
            starts = [k for k in range(len(on)) if on[k] and not on[k - 1]] or (
                [0] if all(on) else []
            )
            run = []
            for step in range(len(on)) if starts else ():
                k = (starts[0] + step) % len(on)
                if not on[k]:
                    break
                run.append(greens[k])
            columns.append(run)
        main = "/".join(fit.main_street)
        return columns, (
            f"{p.tls_id}: D1..D8 are NEMA phases (main street {main}, by {fit.main_basis})"
        )
    why = fit.reason if fit is not None and fit.reason else "no NEMA fit given"
    note = f"{p.tls_id}: D1..D{len(greens)} are the program's green phases in order ({why})"
    return [[i] for i in greens], note


def _reference_phase(columns: list[list[int]]) -> int:
    """Return the (1-based) ``D`` column that starts with the cycle's first green."""
    first = min((run[0] for run in columns if run), default=0)
    return next((k + 1 for k, run in enumerate(columns) if run and run[0] == first), 1)


def _phase_rows(p: TimingPlan, columns: list[list[int]]) -> dict[str, list[str]]:
    """Format, per ``[Phases]`` record, one cell per column: its greens' timing (s)."""
    rows: dict[str, list[str]] = {name: [] for name in _PHASE_RECORDS}
    for values in column_timing(p, columns):
        for name in _PHASE_RECORDS:
            rows[name].append("" if values is None else format_seconds(values[name]))
    return rows


def phase_columns(p: TimingPlan, fit: NemaFit | None) -> tuple[list[list[int]], str]:
    """Return the program's greens of each phase column, and a note saying how they are numbered.

    Columns are NEMA phases 1..8 (none: an unused one) where the program fits the dual ring,
    else the green phases in program order.
    """
    return _columns(p, fit)


def column_timing(p: TimingPlan, columns: list[list[int]]) -> list[dict[str, float] | None]:
    """Return each column's timing (s, the ``[Phases]`` records), None for an unused column."""
    out: list[dict[str, float] | None] = []
    start = 0.0
    starts = {}
    for i, ph in enumerate(p.phases):
        starts[i] = start
        start += ph.duration
    for run in columns:
        if not run:
            out.append(None)
            continue
        last = run[-1]
        # Between the run's greens the phase stays green (another ring changes); it counts.
        between = sum(ph.duration for a in run[:-1] for ph in [p.phases[a], *_change(p, a)])
        change = _change(p, last)
        # Vehicles keep their green through a pedestrian clearance.
        green = (
            between
            + p.phases[last].duration
            + sum(c.duration for c in change if c.kind == "clearance")
        )
        yellow = sum(c.duration for c in change if c.kind == "yellow")
        red = sum(c.duration for c in change if c.kind == "red")
        extra = between - sum(p.phases[a].duration for a in run[:-1])
        values = {
            "MinGreen": sum(p.phases[a].min_green for a in run) + extra,
            "MaxGreen": sum(p.phases[a].max_dur for a in run) + extra,
            "Green": green,
            "Yellow": yellow,
            "AllRed": red,
            "Split": green + yellow + red,
            "Start": starts[run[0]],
            "End": (starts[run[0]] + green + yellow + red) % p.cycle_s,
        }
        out.append(values)
    return out


def _change(p: TimingPlan, i: int):
    return phases_between(p.phases, i, next_green(p.phases, i))
