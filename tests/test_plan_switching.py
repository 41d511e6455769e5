"""Plans switched in on a running simulation: offsets reached, no change interval or minimum cut."""

from __future__ import annotations

from dataclasses import replace

from citybrain_traffic.control.realtime import bounded_plan
from citybrain_traffic.control.scheduled import ScheduledPlansController
from citybrain_traffic.control.switching import coordinated_phase
from citybrain_traffic.harness.matrix import run_matrix
from citybrain_traffic.harness.runner import RunSpec
from citybrain_traffic.network import read_network
from citybrain_traffic.plans import plans_from_network, validate
from citybrain_traffic.scenario import load_scenario


class RecordingScheduled(ScheduledPlansController):
    """Runs the schedule and records every signal's phase index each simulation second."""

    name = "recording-scheduled"

    def start(self, context, now):
        self.api = context.api
        self.trace = []
        wake = super().start(context, now)
        return self._record(now, wake)

    def step(self, now):
        return self._record(now, super().step(now))

    def _record(self, now, wake):
        tl = self.api.trafficlight
        self.trace.append(
            (now, {tls: (tl.getProgram(tls), tl.getPhase(tls)) for tls in tl.getIDList()})
        )
        return min(wake, now + 1.0) if wake is not None else now + 1.0

    def report(self):
        return {"log": super().report(), "trace": self.trace}


def _runs(trace):
    """Per signal: list of (program, phase index, start s, duration s) as the signal showed them."""
    runs = {}
    for now, states in trace:
        for tls, key in states.items():
            seq = runs.setdefault(tls, [])
            if seq and seq[-1][0:2] == key:
                continue
            if seq:
                program, phase, start, _ = seq[-1]
                seq[-1] = (program, phase, start, now - start)
            seq.append((*key, now, None))
    return {tls: seq[:-1] for tls, seq in runs.items()}


def test_switching_keeps_clearances_minimums_and_reaches_offsets(tmp_path):
    sc = load_scenario("corridor", end=1500)
    network = read_network(sc.net_file)
    plans = []
    for k, plan in enumerate(plans_from_network(network)):
        phases = list(plan.phases)
        i, green = plan.greens[0]
        phases[i] = replace(
            green,
            duration=green.duration + 10,
            min_dur=green.min_green,
            max_dur=green.duration + 10,
        )  # 100 s cycle
        new = replace(
            plan,
            program_id="test-plan",
            phases=tuple(phases),
            cycle_s=plan.cycle_s + 10,
            offset=float(17 * k),
        )
        plans.append(validate(new, network.intersections[plan.tls_id].phases))
    schedule = tuple((300.0, p) for p in plans)
    spec = RunSpec(
        scenario=sc,
        network=network,
        controller=RecordingScheduled(schedule).fit(sc, network, tmp_path, demand_scale=1.0),
        seed=1,
        workdir=tmp_path,
    )
    report = run_matrix([spec])[0].controller_report

    assert sorted(entry["tls_id"] for entry in report["log"]) == sorted(p.tls_id for p in plans)
    by_tls = {p.tls_id: p for p in plans}
    for tls, seq in _runs(report["trace"]).items():
        plan = by_tls[tls]
        reference = network.intersections[tls].phases
        for program, phase, start, duration in seq:
            ref = reference[phase]
            if not ref.is_green:
                assert abs(duration - ref.duration) < 1e-6, (tls, program, phase, start, duration)
            else:
                assert duration >= ref.min_green - 1e-6, (tls, phase, start, duration)
        cycle_starts = [
            start for program, phase, start, _ in seq if program == "test-plan" and phase == 0
        ]
        assert len(cycle_starts) >= 5
        # once aligned, every cycle starts at the plan's offset (mod its cycle)
        for start in cycle_starts[-3:]:
            assert abs((start - plan.offset + 1) % plan.cycle_s - 1) < 1.01, (
                tls,
                start,
                plan.offset,
            )


def test_actuated_plans_keep_order_clearances_and_their_green_range(tmp_path):
    """Gap-actuated plans (the adaptive controller's real-time layer) switched in one after
    another."""
    sc = load_scenario("corridor", end=1500)
    network = read_network(sc.net_file)
    schedule = []
    for at, stretch in ((300.0, 1.5), (900.0, 2.0)):
        for plan in plans_from_network(network):
            reference = network.intersections[plan.tls_id].phases
            phases = tuple(
                replace(p, min_dur=ref.min_green, max_dur=stretch * p.duration) if p.is_green else p
                for p, ref in zip(plan.phases, reference)
            )
            actuated = replace(
                plan, program_id=f"test-actuated-{int(at)}", phases=phases, kind="actuated"
            )
            schedule.append((at, validate(actuated, reference)))
    spec = RunSpec(
        scenario=sc,
        network=network,
        controller=RecordingScheduled(tuple(schedule)).fit(sc, network, tmp_path, demand_scale=1.0),
        seed=1,
        workdir=tmp_path,
    )
    report = run_matrix([spec])[0].controller_report

    installed = sorted((entry["tls_id"], entry["program_id"]) for entry in report["log"])
    assert installed == sorted((p.tls_id, p.program_id) for _, p in schedule)
    plans = {(p.tls_id, p.program_id): p for _, p in schedule}
    shortened = 0
    for tls, seq in _runs(report["trace"]).items():
        reference = network.intersections[tls].phases
        for (program, phase, start, duration), (next_program, next_phase, _, _) in zip(
            seq, seq[1:]
        ):
            if next_program == program:  # phase order is the program's
                assert next_phase == (phase + 1) % len(reference), (tls, program, start)
            ref = reference[phase]
            if not ref.is_green:
                assert abs(duration - ref.duration) < 1e-6, (tls, program, phase, start, duration)
                continue
            assert duration >= ref.min_green - 1e-6, (tls, phase, start, duration)
            plan = plans.get((tls, program))
            if plan is not None and next_program == program:
                assert duration <= plan.phases[phase].max_dur + 1e-6, (
                    tls,
                    program,
                    phase,
                    start,
                    duration,
                )
                shortened += duration < plan.phases[phase].duration - 1
    assert shortened > 0  # the detectors ended some greens before their planned length


class RecordingHeld(RecordingScheduled):
    """As RecordingScheduled, submitting each actuated plan coordinated (``hold_offset``)."""

    name = "recording-held"

    def step(self, now):
        while self.queue and self.queue[0][0] <= now + 1e-9:
            _, plan = self.queue.pop(0)
            self.switcher.submit(plan, now, hold_offset=True)
        return self._record(now, self.switcher.step(now))


def test_held_actuated_plans_keep_their_offsets_and_force_offs(tmp_path):
    """Coordinated-actuated (the adaptive layer with --offsets held): each cycle's coordinated green
    ends where the plan puts its end, the other greens end by their planned length, and the time
    they free goes to the coordinated green."""
    sc = load_scenario("corridor", end=1800)
    network = read_network(sc.net_file)
    schedule = []
    for k, plan in enumerate(plans_from_network(network)):
        reference = network.intersections[plan.tls_id].phases
        held = bounded_plan(
            replace(plan, program_id="test-held", offset=float(23 * k) % plan.cycle_s),
            reference,
            hold=True,
        )
        schedule.append((300.0, validate(held, reference)))
    spec = RunSpec(
        scenario=sc,
        network=network,
        controller=RecordingHeld(tuple(schedule)).fit(sc, network, tmp_path, demand_scale=1.0),
        seed=1,
        workdir=tmp_path,
    )
    report = run_matrix([spec])[0].controller_report

    plans = {p.tls_id: p for _, p in schedule}
    assert sorted(entry["tls_id"] for entry in report["log"]) == sorted(plans)
    returned = 0
    for tls, seq in _runs(report["trace"]).items():
        plan, reference = plans[tls], network.intersections[tls].phases
        k = coordinated_phase(plan)
        planned_end = plan.offset + sum(p.duration for p in plan.phases[: k + 1])
        ends = []
        for program, phase, start, duration in seq:
            ref = reference[phase]
            if not ref.is_green:
                assert abs(duration - ref.duration) < 1e-6, (tls, program, phase, start, duration)
                continue
            assert duration >= ref.min_green - 1e-6, (tls, phase, start, duration)
            if program != "test-held":
                continue
            assert duration <= plan.phases[phase].max_dur + 1e-6, (tls, phase, start, duration)
            if phase == k:
                ends.append(start + duration)
                returned += duration > plan.phases[k].duration + 1
            else:
                assert duration <= plan.phases[phase].duration + 1e-6, (
                    tls,
                    phase,
                    start,
                    duration,
                )  # force-off
        assert len(ends) >= 8, (tls, ends)
        for end in ends[-6:]:  # once aligned, the coordinated green ends at its planned point
            assert abs((end - planned_end + 1) % plan.cycle_s - 1) < 1.01, (
                tls,
                end,
                planned_end,
                plan.cycle_s,
            )
    assert returned > 0  # gap-outs of the other greens went to the coordinated one
