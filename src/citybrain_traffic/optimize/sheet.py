"""Timing sheets: every plan phase by phase in movements and NEMA phases, with v/c, delay, LOS."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..network import Network, NemaFit, fit_network, next_green, phases_between
from ..plans import TimingPlan, validate_all, write_json, write_tl_logics, write_utdf
from ..plans.waut import GSP_PARAM
from ..sim.metrics import level_of_service
from .result import SignalTiming
from .sheet_movements import MOVEMENT_COLUMNS, movement_table, movements_rich

if TYPE_CHECKING:
    from rich.table import Table

#: Columns of the phase-by-phase timing sheet (s, veh/h, s/veh; v/c is a ratio).
SHEET_COLUMNS = [
    "intersection",
    "cycle_s",
    "offset_s",
    "phase",
    "nema",
    "movements",
    "served",
    "state",
    "kind",
    "start_s",
    "duration_s",
    "min_s",
    "max_s",
    "change_s",
    "split_s",
    "flow_veh_h",
    "v_c",
    "delay_s_veh",
    "los",
]
#: Columns of the per-intersection summary.
SUMMARY_COLUMNS = [
    "intersection",
    "cycle_s",
    "offset_s",
    "green_phases",
    "flow_veh_h",
    "max_v_c",
    "delay_s_veh",
    "los",
    "status",
    "notes",
]

_CSV_DECIMALS = {"flow_veh_h": 1, "v_c": 3, "max_v_c": 3, "delay_s_veh": 2}

__all__ = [
    "MOVEMENT_COLUMNS",
    "OUTPUT_FILES",
    "SHEET_COLUMNS",
    "SUMMARY_COLUMNS",
    "movement_table",
    "movements_rich",
    "sheet_rich",
    "timing_sheet",
    "timing_summary",
    "write_outputs",
]

#: Files ``write_outputs`` writes, in the order it reports them.
OUTPUT_FILES = (
    "plans.add.xml",
    "plans.json",
    "plans_utdf.csv",
    "timing_sheet.csv",
    "timing_summary.csv",
    "timing_movements.csv",
)


def timing_sheet(
    plans: Sequence[TimingPlan], timings: Mapping[str, SignalTiming], network: Network
) -> pd.DataFrame:
    """Tabulate every phase of every plan: its timing, and for a green its modelled performance.

    Parameters
    ----------
    plans
        The plans as exported (``to_plans``), one per signal.
    timings
        The timings they were made from, keyed by signal id (v/c, delay and flow per green).
    network
        The network the plans are for: a green's ``min_s`` is its signal's minimum green there.

    Returns
    -------
    pandas.DataFrame
        Columns ``SHEET_COLUMNS``. ``phase`` is the SUMO program index; a green's ``nema`` its
        NEMA phase numbers (``"2+6"``, empty when the program does not fit the dual ring, see
        ``network.fit_nema``), ``movements`` the throughs and protected turns that define it
        (``"EBT/WBT"``) and ``served`` every movement green in it, crossings included. Times in
        s: ``start_s`` is when the phase starts after the cycle begins (the cycle begins
        ``offset_s`` after every multiple of ``cycle_s``),
        ``min_s``/``max_s`` the green's allowed range (the network's minimum green; a fixed-time
        plan's maximum is its duration), ``change_s`` the yellow and all-red after a green and
        ``split_s`` green plus that change interval, so a signal's splits, like its durations,
        add up to its cycle. ``flow_veh_h`` is the flow the green serves, ``v_c`` the degree of
        saturation of its critical lane group, ``delay_s_veh`` the modelled mean delay and
        ``los`` its HCM level of service (signalized thresholds). A green without flow has no
        delay and no LOS. Change intervals leave these empty.
    """
    fits = fit_network(network)
    rows = []
    for plan in plans:
        reference = network.intersections[plan.tls_id].phases
        fit = fits[plan.tls_id]
        served = {p.index: p for p in timings[plan.tls_id].phases}
        start = 0.0
        for i, phase in enumerate(plan.phases):
            row = {
                "intersection": plan.tls_id,
                "cycle_s": plan.cycle_s,
                "offset_s": plan.offset,
                "phase": i,
                "nema": "",
                "movements": "",
                "served": "",
                "state": phase.state,
                "kind": phase.kind,
                "start_s": start,
                "duration_s": phase.duration,
                "min_s": phase.duration,
                "max_s": phase.duration,
                "change_s": math.nan,
                "split_s": math.nan,
                "flow_veh_h": math.nan,
                "v_c": math.nan,
                "delay_s_veh": math.nan,
                "los": "",
            }
            named = fit.phase(i)
            if phase.is_green and named is not None:
                row.update(
                    nema=named.nema,
                    movements="/".join(named.key_movements),
                    served=" ".join(named.movements),
                )
            if phase.is_green:
                change = sum(
                    p.duration for p in phases_between(plan.phases, i, next_green(plan.phases, i))
                )
                row.update(
                    min_s=reference[i].min_green,
                    max_s=phase.max_dur,
                    change_s=change,
                    split_s=phase.duration + change,
                )
                if i in served:
                    p = served[i]
                    row.update(flow_veh_h=p.flow_veh_h, v_c=p.degree_of_saturation)
                    if p.flow_veh_h > 0:  # no vehicle, no delay to grade
                        row.update(delay_s_veh=p.delay_s, los=level_of_service(p.delay_s))
            rows.append(row)
            start += phase.duration
    return pd.DataFrame(rows, columns=SHEET_COLUMNS)


def timing_summary(
    plans: Sequence[TimingPlan], timings: Mapping[str, SignalTiming]
) -> pd.DataFrame:
    """Tabulate one row per signal: its plan's totals and the optimizer's status and notes.

    Columns ``SUMMARY_COLUMNS``: cycle and offset (s), flow served (veh/h), highest v/c,
    flow-weighted modelled delay (s/veh) with its HCM level of service, status and notes.
    """
    rows = []
    for plan in plans:
        timing = timings[plan.tls_id]
        rows.append(
            {
                "intersection": plan.tls_id,
                "cycle_s": plan.cycle_s,
                "offset_s": plan.offset,
                "green_phases": len(timing.phases),
                "flow_veh_h": sum(p.flow_veh_h for p in timing.phases),
                "max_v_c": timing.max_degree_of_saturation,
                "delay_s_veh": timing.delay_s,
                "los": level_of_service(timing.delay_s),
                "status": timing.status,
                "notes": "; ".join(timing.notes),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def write_outputs(
    out: Path,
    plans: list[TimingPlan],
    network: Network,
    sheet: pd.DataFrame,
    summary: pd.DataFrame,
    movements: pd.DataFrame | None = None,
    schedule: Sequence[TimingPlan] | None = None,
) -> list[Path]:
    """Validate every plan against ``network``, then write the exports and the sheet into ``out``.

    With ``schedule`` (a plan per period, ``plans`` the sheet's), the SUMO file and the JSON
    hold every plan of the schedule, the programs with SUMO's ``GSP`` switching point for a
    WAUT; the UTDF CSV holds the sheet's plans.

    Writes ``OUTPUT_FILES``: the SUMO additional file (``tlLogic`` with offset, for
    ``sumo -a``), the JSON plans (each green with its movements and NEMA numbers), the UTDF-style
    CSV (``D1..D8`` by NEMA phase where the program fits), the timing sheet, the summary and the
    movement table (``movements``; by default ``movement_table`` from the plans' provenance).
    Nothing is written when a plan is unsafe (``UnsafePlanError``).
    """
    written = list(schedule or plans)
    validate_all(written, network)
    fits = fit_network(network)
    if movements is None:
        movements = movement_table(plans, network)
    out.mkdir(parents=True, exist_ok=True)
    add, json_file, utdf, sheet_file, summary_file, movement_file = (
        out / name for name in OUTPUT_FILES
    )
    write_tl_logics(add, written, params=GSP_PARAM if schedule else None)
    write_json(json_file, written, phase_labels=_phase_labels(plans, fits))
    write_utdf(utdf, plans, nema=fits)
    sheet.round(_CSV_DECIMALS).to_csv(sheet_file, index=False)
    summary.round(_CSV_DECIMALS).to_csv(summary_file, index=False)
    movements.round(_CSV_DECIMALS).to_csv(movement_file, index=False)
    return [add, json_file, utdf, sheet_file, summary_file, movement_file]


def _phase_labels(
    plans: Sequence[TimingPlan], fits: Mapping[str, NemaFit]
) -> dict[str, dict[int, dict[str, Any]]]:
    """Per plan and green phase: its NEMA numbers and movement names, for ``plans.json``."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for plan in plans:
        fit = fits.get(plan.tls_id)
        if fit is None:
            continue
        out[plan.tls_id] = {
            p.index: {"nema": list(p.numbers), "movements": list(p.movements), "name": p.label}
            for p in fit.phases
        }
    return out


def sheet_rich(sheet: pd.DataFrame, summary: pd.DataFrame, *, title: str) -> Table:
    """Lay the timing sheet out as a rich Table: a row per green phase, then the signal's totals.

    Times in s, flow in veh/h, delay in s/veh (the table's caption says so).
    """
    from rich.table import Table

    out = Table(title=title, title_justify="left", caption=_CAPTION, caption_justify="left")
    for heading in (
        "Signal",
        "Cycle",
        "Offset",
        "Phase",
        "SUMO",
        "Green",
        "Y+AR",
        "Split",
        "Flow",
        "v/c",
        "Delay",
        "LOS",
    ):
        out.add_column(
            heading, justify="left" if heading in ("Signal", "Phase", "LOS") else "right"
        )
    greens = sheet[sheet["kind"] == "green"]
    for signal in summary.itertuples(index=False):
        first = True
        for p in greens[greens["intersection"] == signal.intersection].itertuples(index=False):
            out.add_row(
                str(signal.intersection) if first else "",
                _num(signal.cycle_s) if first else "",
                _num(signal.offset_s) if first else "",
                " ".join(str(part) for part in (p.nema, p.movements) if part),
                str(p.phase),
                _num(p.duration_s),
                _num(p.change_s),
                _num(p.split_s),
                _num(p.flow_veh_h),
                _ratio(p.v_c),
                _num(p.delay_s_veh, 1),
                str(p.los),
            )
            first = False
        out.add_row(
            "",
            "",
            "",
            "all",
            "",
            "",
            "",
            "",
            _num(signal.flow_veh_h),
            _ratio(signal.max_v_c),
            _num(signal.delay_s_veh, 1),
            str(signal.los),
            style="bold",
            end_section=True,
        )
    return out


_CAPTION = (
    "Phase: NEMA numbers and the movements that define the green (SUMO: its program index). "
    "Times in s (Y+AR: yellow + all-red after the green; split: green + Y+AR), flow in veh/h, "
    "modelled delay in s/veh, HCM level of service. Row 'all': the signal's total flow, "
    "highest v/c, mean delay."
)


# The cells come from pandas rows, which pandas-stubs type as any scalar; they are floats here.
def _num(value: Any, decimals: int = 0) -> str:
    return "" if not math.isfinite(value) else f"{value:,.{decimals}f}"


def _ratio(value: Any) -> str:
    return "" if not math.isfinite(value) else f"{value:.2f}"
