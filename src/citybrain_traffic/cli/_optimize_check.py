"""``ctraffic optimize``'s check in SUMO: its options, the candidates, what is written and said."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import pandas as pd

from ..errors import InputError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..experiments.plan_check import PeriodPlans
    from ..network import Network
    from ..optimize import IntersectionDemand, SignalTiming
    from ..optimize.saturation import SaturationModel
    from ..plans import TimingPlan
    from ..scenario import Scenario

FC = TypeVar("FC", bound=Callable[..., Any])

#: The file of modelled and simulated delay per approach that ``--out`` receives.
CHECK_FILE = "check.csv"


def check_options(command: FC) -> FC:
    """Add ``--check-seeds``, ``--no-check`` and ``--allow-worse`` to ``command``."""
    for option in reversed(
        (
            click.option(
                "--check-seeds",
                metavar="N|SEEDS",
                help="Check the plans in SUMO on N seeds of the check's own (from 982451653, "
                "never the usual evaluation seeds), or on SEEDS ('7,8,9' or '7-9') [default: 3; "
                "on when the scenario has routes].",
            ),
            click.option(
                "--no-check",
                is_flag=True,
                help="Write the model's plan without checking it in SUMO.",
            ),
            click.option(
                "--allow-worse",
                is_flag=True,
                help="When the network's own program does better in SUMO than every plan, write "
                "the best plan anyway (with a warning) instead of exiting 1 without writing.",
            ),
        )
    ):
        command = option(command)
    return command


@dataclass(frozen=True)
class Checked:
    """The plans to write after the check, and what to say about them.

    ``refused``: the network's own program did better and ``--allow-worse`` was not given, so
    nothing may be written. ``note`` goes into the timing summary's notes, ``provenance`` into
    every plan's ``provenance["check"]`` and ``table`` (``plan_check.CHECK_COLUMNS``) into
    ``check.csv``; both are absent without a check. When a schedule won, ``periods`` holds its
    plan per period and ``timings``/``plans`` are those of period ``shown`` (the sheet's).
    """

    timings: dict[str, SignalTiming]
    plans: list[TimingPlan]
    note: str
    provenance: dict[str, Any]
    table: pd.DataFrame | None = None
    warning: str | None = None
    refused: bool = False
    periods: tuple[PeriodPlans, ...] = ()
    shown: int = 0

    def with_check(self, plans: Sequence[TimingPlan]) -> list[TimingPlan]:
        """Return ``plans`` with the check in their provenance."""
        return [replace(p, provenance={**p.provenance, "check": self.provenance}) for p in plans]

    def stamped(self, summary: pd.DataFrame) -> tuple[list[TimingPlan], pd.DataFrame]:
        """Return the plans with the check in their provenance and the summary with its note."""
        plans = self.with_check(self.plans)
        notes = summary["notes"].fillna("").astype(str)
        joined = notes.where(notes == "", notes + "; ") + self.note
        return plans, summary.assign(notes=joined)

    def write(self, out: Path) -> list[Path]:
        """Write ``check.csv`` into ``out`` when there was a check; return what was written."""
        if self.table is None:
            return []
        path = out / CHECK_FILE
        self.table.round(2).to_csv(path, index=False)
        return [path]


def check_in_sumo(
    sc: Scenario | None,
    network: Network,
    timings: Mapping[str, SignalTiming],
    *,
    solve: Callable[[float], Mapping[str, SignalTiming]],
    make_plans: Callable[[Mapping[str, SignalTiming]], Sequence[TimingPlan]],
    demand: Callable[[Sequence[str]], Mapping[str, Any]],
    check_seeds: str | None,
    no_check: bool,
    allow_worse: bool,
    demand_scale: float,
    console: Console,
    extra: Mapping[str, tuple[Mapping[str, SignalTiming], Callable[[Sequence[str]], Any]]]
    | None = None,
    schedules: Mapping[str, tuple[Sequence[PeriodPlans], int]] | None = None,
) -> Checked:
    """Check the model's plan, its cycle-floor variants and the own program; keep the best.

    ``schedules`` (``_optimize_schedule.schedule_candidates``) stand for the cycle-floor
    variants when given (``plan_check.window_candidates``).

    ``solve(cycle_min_s)`` repeats the optimization with a shortest cycle, ``make_plans`` turns
    timings into the plans to write and ``demand(tls_ids)`` gives each signal's
    ``IntersectionDemand`` (for the modelled delay per approach). Without routes (``sc`` None),
    or with ``no_check``, the model's plan is kept unchecked and the terminal says so.
    """
    from ..experiments.plan_check import (
        approach_comparison,
        check_plans,
        modeled_approaches,
        schedule_approaches,
        window_candidates,
    )

    _check_flags(sc, check_seeds, no_check, allow_worse)
    plans = list(make_plans(timings))
    if sc is None or no_check:
        why = "--no-check" if no_check else "no demand to run (--counts with --net alone)"
        console.print(f"[yellow]note[/]: plans not checked in SUMO: {why}")
        return Checked(dict(timings), plans, f"not checked in SUMO ({why})", {"skipped": why})
    seeds = _seeds(check_seeds)
    extra = extra or {}
    candidates, same_as = window_candidates(
        timings, solve, make_plans, {label: t for label, (t, _) in extra.items()}, schedules
    )
    console.print(
        f"checking {len(candidates)} plan(s) and the network's own program in SUMO: the "
        f"scenario's demand x{demand_scale:g}, {sc.begin:g}-{sc.end:g} s, seeds "
        f"{_seed_text(seeds)} ({len(seeds) * (len(candidates) + 1)} runs) ..."
    )
    with tempfile.TemporaryDirectory(prefix="ctraffic-check-") as tmp:
        check = check_plans(
            candidates,
            sc,
            network,
            Path(tmp),
            demand_scale=demand_scale,
            seeds=seeds,
            same_as=same_as,
        )
    written = check.best_plan
    chosen = next(c for c in candidates if c.label == written)
    refused = check.own_program_kept and not allow_worse
    warning = None
    if check.own_program_kept:
        warning = (
            f"the network's own program did better in SUMO ({check.delays[check.kept]:.1f} "
            f"s/veh) than every plan of the model (best: {written}, "
            f"{check.delays[written]:.1f} s/veh)"
        )
    modeled = (
        schedule_approaches(chosen.periods)
        if chosen.periods
        else modeled_approaches(
            chosen.timings, extra.get(written, (None, demand))[1](list(chosen.timings))
        )
    )
    table = approach_comparison(modeled, check, written)
    console.print(check.note(written))
    if warning and not refused:
        console.print(f"[bold red]warning[/]: {warning}: written anyway (--allow-worse)")
    console.print(_table_rich(table, title=f"{sc.name}: modelled and simulated delay ({written})"))
    worse = worse_approaches(table)
    for line in worse:
        console.print(f"[bold yellow]warning[/]: {line}")
    return Checked(
        timings=chosen.timings,
        plans=list(chosen.plans),
        note=check.note(written)
        + (f"; WARNING: {warning}" if warning else "")
        + "".join(f"; WARNING: {line}" for line in worse),
        provenance={
            **check.provenance(written),
            **({"warning": warning} if warning else {}),
            **({"worse_approaches": worse} if worse else {}),
        },
        table=table,
        warning=warning,
        refused=refused,
        periods=chosen.periods,
        shown=(schedules or {}).get(written, ((), 0))[1],
    )


#: An approach the written plan serves at HCM LOS E or F in SUMO, and this many times the delay
#: the existing program gives it, is named: a side street an engineer would hear about.
WORSE_APPROACH_FACTOR = 1.5


def worse_approaches(table: pd.DataFrame) -> list[str]:
    """Name each approach the plan serves far worse than the existing program, in SUMO.

    That is LOS E/F and over ``WORSE_APPROACH_FACTOR`` times the existing program's delay: the
    plan wins overall at that approach's expense.
    """
    worse = table[
        table["simulated_los"].isin(["E", "F"])
        & (table["simulated_delay_s_veh"] > WORSE_APPROACH_FACTOR * table["existing_delay_s_veh"])
    ]
    return [
        f"{r['intersection']} {r['approach']}: {r['simulated_delay_s_veh']:.1f} s/veh in SUMO "
        f"(LOS {r['simulated_los']}) against {r['existing_delay_s_veh']:.1f} under the existing "
        f"program (modelled {r['modeled_delay_s_veh']:.1f})"
        for r in worse.to_dict("records")
    ]


def signal_demands(
    network: Network,
    flows: pd.DataFrame,
    saturation_veh_h_lane: float | SaturationModel,
    tls_ids: Sequence[str],
) -> dict[str, IntersectionDemand]:
    """Return each signal's demand from the flows table, as ``optimize_network`` computes it."""
    from ..optimize import flows_by_signal, intersection_demand

    by_signal = flows_by_signal(flows)
    return {
        tls: intersection_demand(
            network.intersections[tls],
            network.lanes,
            by_signal.get(tls, {}),
            saturation_veh_h_lane=saturation_veh_h_lane,
        )
        for tls in tls_ids
    }


def refuse(checked: Checked, console: Console) -> None:
    """Say that nothing was written because the own program did better; exit 1."""
    console.print(
        f"[bold red]warning[/]: {checked.warning}: no plan written (the signals should keep "
        "their program); --allow-worse writes the best plan anyway"
    )
    raise SystemExit(1)


def _check_flags(
    sc: Scenario | None, check_seeds: str | None, no_check: bool, allow_worse: bool
) -> None:
    """Refuse check options that contradict each other or have no demand to run."""
    if no_check and (check_seeds is not None or allow_worse):
        given = "--check-seeds" if check_seeds is not None else "--allow-worse"
        raise InputError(f"{given} is an option of the check in SUMO: drop it or --no-check")
    if sc is None and check_seeds is not None:
        raise InputError(
            "--check-seeds: there is no demand to check the plans with (--counts with --net "
            "alone); give SCENARIO or --routes too"
        )


def _seeds(text: str | None) -> tuple[int, ...]:
    """Return the check's seeds: N of its own (``selection.check_seeds``), or those listed."""
    from ..experiments.selection import CHECK_SEEDS, check_seeds
    from ..harness.seeds import MAX_SEEDS, parse_seeds

    if text is None:
        return CHECK_SEEDS
    if re.fullmatch(r"\s*\d+\s*", text):
        count = int(text)
        if not 1 <= count <= MAX_SEEDS:
            raise InputError(
                f"--check-seeds {text}: a single number is how many seeds to check on (1 to "
                f"{MAX_SEEDS}); list seeds of your choice as '7,8,9' or '7-9'"
            )
        return check_seeds(count)
    return tuple(parse_seeds(text))


def _seed_text(seeds: Sequence[int]) -> str:
    consecutive = list(seeds) == list(range(seeds[0], seeds[0] + len(seeds)))
    if consecutive and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _table_rich(table: pd.DataFrame, *, title: str) -> Table:
    """Lay ``check.csv`` out as a rich Table: modelled beside simulated, per approach."""
    from rich.table import Table

    out = Table(title=title, title_justify="left", caption=_CAPTION, caption_justify="left")
    for heading in (
        "Signal",
        "Approach",
        "Flow model",
        "Flow SUMO",
        "Delay model",
        "Delay SUMO",
        "LOS model",
        "LOS SUMO",
        "Delay existing",
    ):
        out.add_column(heading, justify="left" if heading in ("Signal", "Approach") else "right")
    for row in table.itertuples(index=False):
        out.add_row(
            str(row.intersection),
            str(row.approach),
            _num(row.modeled_flow_veh_h),
            _num(row.simulated_flow_veh_h),
            _num(row.modeled_delay_s_veh, 1),
            _num(row.simulated_delay_s_veh, 1),
            str(row.modeled_los),
            str(row.simulated_los),
            _num(row.existing_delay_s_veh, 1),
        )
    return out


_CAPTION = (
    "Per approach (incoming edge): flow in veh/h, delay in s/veh. Model: the optimizer's delay "
    "model per lane group, flow-weighted; SUMO: time loss over the approach (up to 150 m "
    "upstream) per vehicle, over the check seeds; existing: SUMO under the network's program."
)


def _num(value: Any, decimals: int = 0) -> str:
    return "" if pd.isna(value) else f"{value:,.{decimals}f}"
