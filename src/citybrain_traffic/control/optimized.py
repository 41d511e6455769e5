"""Optimized fixed-time plans: OR-Tools-coordinated time-of-day plans from the scenario's demand."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import CTrafficError, SimulationError
from ..flows import flows_from_routes, route_demand
from ..plans import plans_from_network, validate_all, write_json
from .base import SimSetup
from .scheduled import ScheduledPlansController

#: Length of each time-of-day plan's period (s): demand is planned per 15 minutes, the usual
#: count interval; an hourly average leaves the peak quarter underserved.
PLAN_PERIOD_S = 900.0

#: Shortest cycles (s) tried besides the model's own choice when the plans are checked in the
#: simulation: the span traffic engineers use for urban signals.
CHECKED_CYCLE_FLOORS_S = (60.0, 90.0, 120.0)

#: Seeds of the checking runs (every candidate runs with each; the mean decides). One seed is
#: too noisy: on RESCO ingolstadt1 two candidates differ by 2 s on one seed and 6 s over three.
#: Evaluations should use other seeds (the usual 1-5 do), so that a plan is never chosen on the
#: very random draws it is then measured on.
CHECK_SEEDS = (982_451_653, 982_451_654, 982_451_655)


class OptimizedController(ScheduledPlansController):
    """Fixed-time plans computed offline from the scenario's own demand, one per 15 minutes.

    For each period, the routed demand gives every movement's flow at the time vehicles reach
    the signal; the optimizer chooses a common cycle, delay-optimal splits and offsets for all
    signals (see ``optimize``). The delay model cannot see everything a microsimulation does
    (yielding turns blocking shared lanes, queues spilling back over short links), so, as traffic
    engineers check optimized plans in microsimulation, the plans are also made with the cycle
    held at or above each of ``CHECKED_CYCLE_FLOORS_S``, every candidate is simulated once with
    each of ``CHECK_SEEDS``, and the one with the least mean delay is kept; the network's own
    program is checked on the same seeds and kept when no plan beats it. Every plan is validated,
    written to ``plans.json`` in the preparation folder, and switched in at its signal's next
    cycle boundary with its offset kept.
    """

    replaces_programs = True
    name = "optimized"
    description = "OR-Tools fixed-time plans per 15 min from the scenario's demand (coordinated, simulation-checked)"

    def prepare(self, scenario, network, workdir: Path, *, demand_scale: float) -> SimSetup:
        routed = route_demand(scenario, workdir, demand_scale=demand_scale)
        periods = []
        start = scenario.begin
        while start < scenario.end - 1e-9:
            end = min(start + PLAN_PERIOD_S, scenario.end)
            periods.append((start, flows_from_routes(routed, network, begin=start, end=end)))
            start = end
        candidates = {None: _plans(network, periods, None)}
        for floor in CHECKED_CYCLE_FLOORS_S:
            candidates[floor] = _plans(network, periods, floor)
        delays = check_setups(
            scenario,
            network,
            self.name,
            {k: SimSetup(schedule=tuple(v[0])) for k, v in candidates.items()},
            workdir / "check",
            demand_scale=demand_scale,
        )
        chosen, checked = choose_floor(delays)
        schedule, statuses = (
            candidates[chosen] if chosen != OWN_PROGRAM else ([], {"own program kept": 1})
        )
        records = [plan for _, plan in schedule] or plans_from_network(network)
        write_json(workdir / "plans.json", records)
        (workdir / "schedule.json").write_text(
            json.dumps(
                [
                    {"from_s": t, "tls_id": p.tls_id, "program_id": p.program_id}
                    for t, p in schedule
                ],
                indent=1,
            )
        )
        (workdir / "check.json").write_text(
            json.dumps(
                {
                    "seeds": list(CHECK_SEEDS),
                    "mean_delay_s": {_candidate_name(k): v for k, v in delays.items()},
                    "chosen_cycle_floor_s": chosen,
                },
                indent=1,
            )
        )
        cycles = sorted({round(p.cycle_s) for p in records})
        note = (
            f"optimized: {len(schedule) // max(1, len(network.intersections))} plans per signal, "
            f"cycles {cycles[0]}-{cycles[-1]} s, solver status "
            + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
            + f"; {checked}"
        )
        return SimSetup(schedule=tuple(schedule), notes=(note,))


def _plans(network, periods, cycle_floor_s):
    """The schedule of validated plans for every period, with the cycle at least ``cycle_floor_s``."""
    from ..optimize import DEFAULT_CYCLE_MAX_S, DEFAULT_CYCLE_MIN_S, optimize_network, to_plans

    floor = (
        DEFAULT_CYCLE_MIN_S
        if cycle_floor_s is None
        else min(max(cycle_floor_s, DEFAULT_CYCLE_MIN_S), DEFAULT_CYCLE_MAX_S)
    )
    tag = "" if cycle_floor_s is None else f"-c{int(floor)}"
    schedule, statuses = [], {}
    for start, flows in periods:
        timings = optimize_network(
            network,
            flows,
            tls_ids=list(network.intersections),
            coordinated=len(network.intersections) > 1,
            cycle_min_s=floor,
        )
        plans = validate_all(
            to_plans(timings, network, program_id=f"ctraffic-opt-{int(start)}{tag}"), network
        )
        schedule += [(start, plan) for plan in plans]
        for timing in timings.values():
            statuses[timing.status] = statuses.get(timing.status, 0) + 1
    return schedule, statuses


#: The key of the network's own program among the candidates checked in SUMO: a plan chosen by
#: simulation is never one that did worse than the program the signals already run.
OWN_PROGRAM = "own"


def choose_floor(delays: dict) -> tuple[float | str | None, str]:
    """The candidate with the least checked delay (ties to ours, then to the lower floor), and a
    note on the check that lists every figure, the network's own program's among them.
    """
    chosen = min(
        delays, key=lambda k: (delays[k], k == OWN_PROGRAM, 0.0 if k in (None, OWN_PROGRAM) else k)
    )
    tried = ", ".join(f"{_candidate_name(k)} {v:.1f} s" for k, v in delays.items())
    kept = "the model's" if chosen is None else _candidate_name(chosen)
    return (
        chosen,
        f"cycles checked in SUMO ({len(CHECK_SEEDS)} seeds of their own, mean delay): {tried}; kept {kept}",
    )


def _candidate_name(key) -> str:
    if key == OWN_PROGRAM:
        return "the network's own program"
    return "model" if key is None else f">={key:g} s"


def check_setups(
    scenario, network, controller: str, setups: dict, workdir: Path, *, demand_scale: float
) -> dict:
    """Mean delay (s) of ``controller`` with every candidate ``SimSetup`` over runs with
    ``CHECK_SEEDS``, and of the network's own program (key ``OWN_PROGRAM``) on the same seeds.
    """
    from ..bench import one_line, run_matrix
    from ..sim.runner import RunSpec

    candidates = {key: (controller, setup) for key, setup in setups.items()}
    candidates[OWN_PROGRAM] = ("fixed", SimSetup())
    runs = [(key, seed) for key in candidates for seed in CHECK_SEEDS]
    specs = [
        RunSpec(
            scenario=scenario,
            network=network,
            controller=candidates[key][0],
            seed=seed,
            workdir=workdir / f"candidate-{i}",
            setup=candidates[key][1],
            demand_scale=demand_scale,
        )
        for i, (key, seed) in enumerate(runs)
    ]
    try:
        results = run_matrix(specs, jobs=max(1, min(len(specs), os.cpu_count() or 1)))
    except CTrafficError as exc:
        # The run's own message names a seed the user never chose: say it was the check's.
        raise SimulationError(
            f"{controller}: checking its candidates in SUMO (on seeds of their own) failed: {one_line(exc)}"
        ) from exc
    delays: dict = {}
    for (key, _), result in zip(runs, results):
        delays.setdefault(key, []).append(float(result.kpis["mean_delay_s"]))
    return {key: sum(values) / len(values) for key, values in delays.items()}
