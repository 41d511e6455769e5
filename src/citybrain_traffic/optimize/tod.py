"""Time-of-day plans: cut a count history's day profile into periods and time each one.

The periods are the optimal piecewise-constant segmentation of the day profile (least squares
over every signal's flow, around the clock so a night period may span midnight), each at least
``MIN_PERIOD_S`` long; their number is the knee of the fit-versus-periods curve (``knee``).
Each period is timed for its peak bin (HCM's peak 15-minute flow rate) and neighbouring
periods' cycles differ by at most ``MAX_CYCLE_CHANGE``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..counts import infer_bin
from ..errors import InputError
from ..network import Network
from ..plans import TimingPlan
from .batch import DEPLOYED_SPILLBACK_WEIGHT, optimize_network
from .frame import DEFAULT_CYCLE_MAX_S
from .result import SignalTiming, to_plans
from .segments import period_count, segment_day

DAY_S = 86_400
#: Shortest period (s). A plan transition takes a few cycles in the field; an hour keeps it a
#: small share of every period, and an hour is HCM's analysis hour.
MIN_PERIOD_S = 3_600
#: Largest relative cycle change between neighbouring periods (this project's rule: a
#: controller's shortway transition reaches a cycle a quarter shorter or longer within a few
#: cycles). Where the optimized cycles differ more, the lighter period's cycle is raised.
MAX_CYCLE_CHANGE = 0.25
#: Day types: Monday-Friday and Saturday-Sunday when the history has both, else every day.
WEEKDAY, WEEKEND, DAILY = "weekday", "weekend", "daily"
_DAYS = {WEEKDAY: "Mon-Fri", WEEKEND: "Sat-Sun", DAILY: "Mon-Sun"}


@dataclass(frozen=True)
class TodPeriod:
    """A period of one day type: ``[start_s, end_s)`` in s after midnight.

    ``end_s`` may pass 86400 (a night that spans midnight). ``flow_veh_h`` is the mean flow
    into all timed signals over the period and ``level`` its ratio to the day's busiest period.
    """

    day_type: str
    name: str
    start_s: int
    end_s: int
    flow_veh_h: float
    level: float

    @property
    def program_id(self) -> str:
        """The SUMO program id of this period's plans, unique within a schedule."""
        prefix = {WEEKDAY: "wd", WEEKEND: "we", DAILY: ""}[self.day_type]
        slug = self.name.lower().replace(" ", "-")
        return f"tod-{prefix}{clock(self.start_s).replace(':', '')}-{slug}"

    @property
    def days(self) -> str:
        """The days of the week this period's day type covers, e.g. ``Mon-Fri``."""
        return _DAYS[self.day_type]

    def covers(self, second_of_day: float) -> bool:
        """Whether the period is in force at ``second_of_day`` (s after midnight)."""
        return (second_of_day - self.start_s) % DAY_S < self.end_s - self.start_s


@dataclass(frozen=True)
class TodPlan:
    """One period's plans: the design flows (veh/h), the timings, the validated programs.

    ``design_bin_s`` is, per signal, the start (s after midnight) of the bin whose flow rate it
    was designed for; ``cycle_floor_s`` the shortest cycle (s) the transition rule imposed.
    """

    period: TodPeriod
    flows: pd.DataFrame = field(compare=False)
    design_bin_s: dict[str, int]
    timings: dict[str, SignalTiming]
    plans: tuple[TimingPlan, ...]
    cycle_floor_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TodSchedule:
    """Every period's plans, in day-type and time order, and how the periods were chosen."""

    plans: tuple[TodPlan, ...]
    bin_s: int
    criterion: str
    notes: tuple[str, ...] = ()

    @property
    def period_s(self) -> int:
        """How often the schedule repeats (s): a week when it tells weekdays from weekends."""
        return 7 * DAY_S if any(p.period.day_type == WEEKEND for p in self.plans) else DAY_S

    def switches(self) -> list[tuple[int, str]]:
        """Return every (s after Monday 00:00, program id) at which a period starts."""
        out = []
        for day in range(self.period_s // DAY_S):
            kind = DAILY if self.period_s == DAY_S else (WEEKDAY if day < 5 else WEEKEND)
            for p in self.plans:
                if p.period.day_type == kind:
                    out.append((day * DAY_S + p.period.start_s % DAY_S, p.period.program_id))
            midnight = next(
                p for p in self.plans if p.period.day_type == kind and p.period.covers(0)
            )
            out.append((day * DAY_S, midnight.period.program_id))
        ordered = sorted(dict(sorted(out)).items())
        # A switch to the program already running (a night across midnight) is no switch.
        kept = [s for k, s in enumerate(ordered) if s[1] != ordered[k - 1][1]]
        return kept or ordered[:1]


def clock(second_of_day: float) -> str:
    """Format s after midnight as HH:MM (24:00 for the end of the day)."""
    s = int(second_of_day) % DAY_S or (DAY_S if second_of_day else 0)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def day_profiles(counts: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Average a count history into one day profile per day type.

    Returns the profiles, columns ``day_type``, ``slot`` (bin of the day, 0 = midnight),
    ``intersection``, ``movement``, ``flow_veh_h`` (mean over the day type's dates of the bin's
    flow rate, veh/h), ``days`` (how many dates of the day type the history has), and the bin
    length (s). A bin missing on some dates is the mean of the dates that have it (a gap, not
    a zero).

    Raises
    ------
    InputError
        When the history spans less than a day, its bins do not divide a day, or a day type
        lacks counts at some time of day.
    """
    if counts.empty:
        raise InputError("the count history is empty")
    bin_s = int(infer_bin(counts).total_seconds())
    first, last = counts["timestamp"].min(), counts["timestamp"].max()
    span_s = (last - first).total_seconds() + bin_s
    if span_s < DAY_S:
        raise InputError(
            f"a time-of-day schedule needs at least a whole day of counts; the history covers "
            f"{span_s / 3600:g} h ({first} to {last + pd.Timedelta(seconds=bin_s)})"
        )
    if DAY_S % bin_s:
        raise InputError(f"count bins of {bin_s / 60:g} min do not divide a day")
    stamps = counts["timestamp"]
    weekend = stamps.dt.day_of_week >= 5
    kinds = np.where(weekend, WEEKEND, WEEKDAY) if weekend.any() and (~weekend).any() else DAILY
    table = counts.assign(
        day_type=kinds,
        slot=((stamps - stamps.dt.normalize()).dt.total_seconds() // bin_s).astype(int),
        flow_veh_h=counts["count"] * 3600.0 / bin_s,
    )
    keys = ["day_type", "slot", "intersection", "movement"]
    profiles = table.groupby(keys)["flow_veh_h"].mean().reset_index()
    dates = table.groupby("day_type")["timestamp"].agg(lambda t: t.dt.normalize().nunique())
    profiles["days"] = profiles["day_type"].map(dates)
    slots = DAY_S // bin_s
    for kind, part in profiles.groupby("day_type"):
        missing = sorted(set(range(slots)) - set(part["slot"]))
        if missing:
            raise InputError(
                f"the {kind} counts have no bin at {len(missing)} time(s) of day "
                f"(first {clock(missing[0] * bin_s)}); a time-of-day schedule needs every bin "
                "of the day counted on at least one date"
            )
    return profiles, bin_s


def tod_periods(
    profiles: pd.DataFrame, bin_s: int, *, min_period_s: int = MIN_PERIOD_S
) -> tuple[list[TodPeriod], str]:
    """Choose and name the periods of every day type; also return the criterion in words."""
    min_slots = max(1, math.ceil(min_period_s / bin_s))
    periods, said = [], []
    for kind, part in profiles.groupby("day_type", sort=False):
        matrix = part.pivot_table(
            index="slot", columns="intersection", values="flow_veh_h", aggfunc="sum"
        ).fillna(0.0)
        matrix = matrix.reindex(range(DAY_S // bin_s), fill_value=0.0)
        fits = segment_day(matrix.to_numpy(), min_slots=min_slots)
        # Poisson arrivals: a bin's count has variance equal to its mean (veh per bin).
        noise = float(matrix.to_numpy().mean()) * 3600.0 / bin_s / int(part["days"].max())
        k = (
            period_count(fits, noise_var=noise, slots=len(matrix), series=matrix.shape[1])
            if noise > 0
            else 1
        )
        starts = fits[k][1]
        total = matrix.sum(axis=1).to_numpy()
        bounds = [*starts, starts[0] + len(total)]
        means = [float(np.roll(total, -a)[: b - a].mean()) for a, b in zip(bounds, bounds[1:])]
        top = max(means) or 1.0
        for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
            name = _name(a * bin_s, b * bin_s, means, i)
            periods.append(
                TodPeriod(str(kind), name, a * bin_s, b * bin_s, means[i], means[i] / top)
            )
        said.append(f"{kind}: {k} of up to {max(fits)}")
    criterion = (
        f"periods of at least {min_period_s / 3600:g} h, least-squares piecewise-constant fit "
        "of every signal's flow; their number at the knee (Kneedle) of squared error versus "
        f"periods, no more than BIC allows with Poisson counts: {', '.join(said)}"
    )
    return periods, criterion


def design_flows(
    profiles: pd.DataFrame, period: TodPeriod, bin_s: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return the flows (veh/h) each signal is timed for in ``period``, and their bin (s).

    That is each signal's peak bin of the period (the highest flow rate into the signal, as
    HCM's peak 15-minute flow rate): every movement's flow in that bin.
    """
    part = profiles[profiles["day_type"] == period.day_type]
    inside = part[part["slot"].map(lambda s: period.covers(s * bin_s))]
    totals = inside.groupby(["intersection", "slot"])["flow_veh_h"].sum()
    peak = totals.groupby(level="intersection").idxmax()
    chosen = pd.DataFrame(list(peak), columns=["intersection", "slot"])
    flows = inside.merge(chosen)[["intersection", "movement", "flow_veh_h"]]
    return flows, {str(tls): int(slot) * bin_s for tls, slot in peak}


def tod_schedule(
    network: Network,
    counts: pd.DataFrame,
    *,
    tls_ids: Sequence[str],
    coordinated: bool,
    saturation_veh_h_lane: float = 1800.0,
    demand_scale: float = 1.0,
    max_cycle_change: float = MAX_CYCLE_CHANGE,
    min_period_s: int = MIN_PERIOD_S,
) -> TodSchedule:
    """Build a time-of-day schedule from a count history: periods, and plans for each.

    Every period is timed by ``optimize_network`` for its design flows (``design_flows``, times
    ``demand_scale``); then, while two neighbouring periods' cycles (the periods before and
    after every switch, across midnight and between day types too) differ by more than
    ``max_cycle_change``, the shorter cycle is raised to ``longer / (1 + max_cycle_change)``
    (rounded up) and its period timed again. Raising only ever lengthens cycles, so no period
    loses capacity and the loop ends.
    """
    profiles, bin_s = day_profiles(counts[counts["intersection"].isin(tls_ids)])
    periods, criterion = tod_periods(profiles, bin_s, min_period_s=min_period_s)
    plans = []
    for period in periods:
        flows, bins = design_flows(profiles, period, bin_s)
        flows = flows.assign(flow_veh_h=flows["flow_veh_h"] * demand_scale)
        timings = optimize_network(
            network,
            flows,
            tls_ids=list(tls_ids),
            coordinated=coordinated,
            saturation_veh_h_lane=saturation_veh_h_lane,
            spillback_weight=DEPLOYED_SPILLBACK_WEIGHT,
        )
        plans.append(TodPlan(period, flows, bins, timings, ()))
    neighbours = _neighbours(TodSchedule(tuple(plans), bin_s, criterion))
    groups = [list(tls_ids)] if coordinated else [[tls] for tls in tls_ids]
    ratio, raised = 1.0 + max_cycle_change, 0
    while True:
        low = []
        for i, near in neighbours.items():
            for group in groups:
                longest = max(plans[j].timings[t].cycle_s for j in near for t in group)
                floor = min(float(math.ceil(longest / ratio - 1e-9)), DEFAULT_CYCLE_MAX_S)
                shortest = min(plans[i].timings[t].cycle_s for t in group)
                if shortest < floor - 1e-6:
                    low.append((shortest, i, group, floor))
        if not low:
            break
        _, i, group, floor = min(low, key=lambda item: item[0])
        timings = optimize_network(
            network,
            plans[i].flows,
            tls_ids=group,
            coordinated=coordinated,
            saturation_veh_h_lane=saturation_veh_h_lane,
            spillback_weight=DEPLOYED_SPILLBACK_WEIGHT,
            cycle_min_s=floor,
        )
        plans[i] = replace(
            plans[i],
            timings={**plans[i].timings, **timings},
            cycle_floor_s={**plans[i].cycle_floor_s, **dict.fromkeys(group, floor)},
        )
        raised += 1
    final = tuple(replace(p, plans=tuple(_with_provenance(p, network))) for p in plans)
    notes = (f"the transition rule raised {raised} cycle(s)",) if raised else ()
    return TodSchedule(final, bin_s, criterion, notes)


def _with_provenance(plan: TodPlan, network: Network) -> list[TimingPlan]:
    period = plan.period
    return [
        replace(
            p,
            provenance={
                **p.provenance,
                "tod": {
                    "day_type": period.day_type,
                    "days": period.days,
                    "period": period.name,
                    "start": clock(period.start_s),
                    "end": clock(period.end_s),
                    "design_bin": clock(plan.design_bin_s.get(p.tls_id, period.start_s)),
                    "cycle_floor_s": plan.cycle_floor_s.get(p.tls_id, 0.0),
                },
            },
        )
        for p in to_plans(plan.timings, network, program_id=period.program_id)
    ]


def _neighbours(schedule: TodSchedule) -> dict[int, set[int]]:
    """Map each plan's index to the indices of the plans before and after its switches."""
    index = {p.period.program_id: i for i, p in enumerate(schedule.plans)}
    order = [index[program] for _, program in schedule.switches()]
    near: dict[int, set[int]] = {i: set() for i in range(len(schedule.plans))}
    for a, b in zip(order, order[1:] + order[:1]):
        if a != b:
            near[a].add(b)
            near[b].add(a)
    return {i: s for i, s in near.items() if s}


def _name(start_s: int, end_s: int, means: Sequence[float], i: int) -> str:
    """Name a period by its level (a peak: busier than both neighbours) and its time of day."""
    mid_h = ((start_s + end_s) / 2 % DAY_S) / 3600
    n = len(means)
    if n > 2 and means[i] > means[i - 1] and means[i] > means[(i + 1) % n]:
        return "AM peak" if mid_h < 11 else ("midday peak" if mid_h < 14 else "PM peak")
    for limit, word in ((5, "night"), (10, "morning"), (15, "midday"), (19, "afternoon")):
        if mid_h < limit:
            return word
    return "evening" if mid_h < 22 else "night"
