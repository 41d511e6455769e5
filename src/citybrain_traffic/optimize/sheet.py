"""Timing sheets: every optimized plan phase by phase, with modelled v/c, delay and LOS."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..network import Network, next_green, phases_between
from ..plans import TimingPlan, validate_all, write_json, write_tl_logics, write_utdf
from ..sim.metrics import level_of_service
from .result import SignalTiming

if TYPE_CHECKING:
    from rich.table import Table

#: Columns of the phase-by-phase timing sheet (s, veh/h, s/veh; v/c is a ratio).
SHEET_COLUMNS = [
    "intersection",
    "cycle_s",
    "offset_s",
    "phase",
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

#: Files ``write_outputs`` writes, in the order it reports them.
OUTPUT_FILES = (
    "plans.add.xml",
    "plans.json",
    "plans_utdf.csv",
    "timing_sheet.csv",
    "timing_summary.csv",
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
        Columns ``SHEET_COLUMNS``. Times in s: ``start_s`` is when the phase starts after the
        cycle begins (the cycle begins ``offset_s`` after every multiple of ``cycle_s``),
        ``min_s``/``max_s`` the green's allowed range (the network's minimum green; a fixed-time
        plan's maximum is its duration), ``change_s`` the yellow and all-red after a green and
        ``split_s`` green plus that change interval, so a signal's splits, like its durations,
        add up to its cycle. ``flow_veh_h`` is the flow the green serves, ``v_c`` the degree of
        saturation of its critical lane group, ``delay_s_veh`` the modelled mean delay and
        ``los`` its HCM level of service (signalized thresholds). Change intervals leave these
        empty.
    """
    rows = []
    for plan in plans:
        reference = network.intersections[plan.tls_id].phases
        served = {p.index: p for p in timings[plan.tls_id].phases}
        start = 0.0
        for i, phase in enumerate(plan.phases):
            row = {
                "intersection": plan.tls_id,
                "cycle_s": plan.cycle_s,
                "offset_s": plan.offset,
                "phase": i,
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
                    row.update(
                        flow_veh_h=p.flow_veh_h,
                        v_c=p.degree_of_saturation,
                        delay_s_veh=p.delay_s,
                        los=level_of_service(p.delay_s),
                    )
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
    out: Path, plans: list[TimingPlan], network: Network, sheet: pd.DataFrame, summary: pd.DataFrame
) -> list[Path]:
    """Validate every plan against ``network``, then write the exports and the sheet into ``out``.

    Writes ``OUTPUT_FILES``: the SUMO additional file (``tlLogic`` with offset, for
    ``sumo -a``), the JSON plans, the UTDF-style CSV, the timing sheet and the summary. Nothing
    is written when a plan is unsafe (``UnsafePlanError``).
    """
    validate_all(plans, network)
    out.mkdir(parents=True, exist_ok=True)
    add, json_file, utdf, sheet_file, summary_file = (out / name for name in OUTPUT_FILES)
    write_tl_logics(add, plans)
    write_json(json_file, plans)
    write_utdf(utdf, plans)
    sheet.round(_CSV_DECIMALS).to_csv(sheet_file, index=False)
    summary.round(_CSV_DECIMALS).to_csv(summary_file, index=False)
    return [add, json_file, utdf, sheet_file, summary_file]


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
        "Green",
        "Y+AR",
        "Split",
        "Flow",
        "v/c",
        "Delay",
        "LOS",
    ):
        out.add_column(heading, justify="left" if heading in ("Signal", "LOS") else "right")
    greens = sheet[sheet["kind"] == "green"]
    for signal in summary.itertuples(index=False):
        first = True
        for p in greens[greens["intersection"] == signal.intersection].itertuples(index=False):
            out.add_row(
                str(signal.intersection) if first else "",
                _num(signal.cycle_s) if first else "",
                _num(signal.offset_s) if first else "",
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
            _num(signal.flow_veh_h),
            _ratio(signal.max_v_c),
            _num(signal.delay_s_veh, 1),
            str(signal.los),
            style="bold",
            end_section=True,
        )
    return out


_CAPTION = (
    "Times in s (Y+AR: yellow + all-red after the green; split: green + Y+AR), flow in veh/h, "
    "modelled delay in s/veh, HCM level of service. Row 'all': the signal's total flow, "
    "highest v/c, mean delay."
)


# The cells come from pandas rows, which pandas-stubs type as any scalar; they are floats here.
def _num(value: Any, decimals: int = 0) -> str:
    return "" if not math.isfinite(value) else f"{value:,.{decimals}f}"


def _ratio(value: Any) -> str:
    return "" if not math.isfinite(value) else f"{value:.2f}"
