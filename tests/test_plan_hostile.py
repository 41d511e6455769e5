"""Hostile timing plans: every plan that cuts a clearance or carries a number that is not finite is
refused with its reason, by the validator, the file readers, the plan service, the adapter and the
switcher that installs plans in SUMO; a signal served such plans keeps showing full clearances."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from citybrain_traffic.control.switching import PlanSwitcher
from citybrain_traffic.errors import InputError, UnsafePlanError
from citybrain_traffic.plans import (
    MAX_GREEN_S,
    PLAN_KINDS,
    TimingPlan,
    plan_to_dict,
    read_json,
    read_plans,
    validate_all,
    violations,
    write_json,
)
from citybrain_traffic.service.adapter import ServiceAdapter
from citybrain_traffic.service.app import create_app

from conftest import run_cli
from service_helpers import READ_TOKEN, TOKENS, WRITE, TestClient, corridor, safe_plan

REFERENCE = corridor().intersections["J1"].phases
YELLOW = next(k for k, p in enumerate(REFERENCE) if p.kind == "yellow")
ALL_RED = next(k for k, p in enumerate(REFERENCE) if p.kind == "red")
GREEN = next(k for k, p in enumerate(REFERENCE) if p.is_green)
NET = "scenarios/sumo/corridor/corridor.net.xml"


def _with_phase(plan: TimingPlan, k: int, **changes) -> TimingPlan:
    phases = list(plan.phases)
    phases[k] = replace(phases[k], **changes)
    total = sum(p.duration for p in phases)
    return replace(
        plan, phases=tuple(phases), cycle_s=total if math.isfinite(total) else plan.cycle_s
    )


def _hostile_file(tmp_path, plan: TimingPlan, name: str = "plans.json"):
    """A plans file as a careless tool would write it: NaN and Infinity tokens allowed."""
    path = tmp_path / name
    doc = {"format": "citybrain-traffic/plans", "version": 1, "plans": [plan_to_dict(plan)]}
    path.write_text(json.dumps(doc, allow_nan=True))
    return path


def test_a_clearance_keeps_its_length_in_min_and_max_too():
    """D1: an actuated SUMO program ends a yellow at its minDur; a short minDur is a cut yellow."""
    short_yellow = _with_phase(safe_plan("J1"), YELLOW, min_dur=0.5)
    assert "J1 phase 1: yellow interval minDur 0.5 s, it must stay 3 s" in violations(
        short_yellow, REFERENCE
    )
    no_all_red = _with_phase(safe_plan("J1"), ALL_RED, min_dur=0.0)
    assert "J1 phase 4: red interval minDur 0 s, it must stay 1 s" in violations(
        no_all_red, REFERENCE
    )
    long_yellow = _with_phase(safe_plan("J1"), YELLOW, max_dur=9.0)
    assert "J1 phase 1: yellow interval maxDur 9 s, it must stay 3 s" in violations(
        long_yellow, REFERENCE
    )
    assert violations(safe_plan("J1"), REFERENCE) == []


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_never_safe(value):
    """D2: every comparison with NaN is false, so each number is checked for being finite first."""
    plan = safe_plan("J1")
    for k in (GREEN, YELLOW, ALL_RED):
        for field in ("duration", "min_dur", "max_dur"):
            hostile = _with_phase(plan, k, **{field: value})
            assert any("not a finite number" in r for r in violations(hostile, REFERENCE)), (
                k,
                field,
            )
    assert any("cycle length" in r for r in violations(replace(plan, cycle_s=value), REFERENCE))
    assert any("offset" in r for r in violations(replace(plan, offset=value), REFERENCE))


def test_a_green_has_a_maximum():
    plan = _with_phase(safe_plan("J1"), GREEN, max_dur=1e308)
    assert (
        f"J1 phase 0: maxDur 1e+308 s is above the longest green {MAX_GREEN_S:g} s"
        in violations(plan, REFERENCE)
    )
    assert violations(_with_phase(safe_plan("J1"), GREEN, max_dur=MAX_GREEN_S), REFERENCE) == []


def test_plan_files_are_strict_json(tmp_path):
    """D2: write_json refuses a non-finite plan field; read_json refuses NaN and Infinity tokens."""
    hostile = _with_phase(safe_plan("J1"), YELLOW, duration=math.nan)
    with pytest.raises(UnsafePlanError, match="phase 1 duration_s nan"):
        write_json(tmp_path / "out.json", [hostile])
    assert not (tmp_path / "out.json").exists()
    for token in ("NaN", "Infinity", "-Infinity", "1e999"):
        path = _hostile_file(tmp_path, safe_plan("J1"), f"{token}.json")
        path.write_text(path.read_text().replace('"offset_s": 0.0', f'"offset_s": {token}'))
        with pytest.raises(InputError, match="cannot read plans"):
            read_json(path)


def test_provenance_without_a_number_is_written_as_null(tmp_path):
    plan = replace(safe_plan("J1"), provenance={"objective": math.nan, "gaps": [1.0, math.inf]})
    path = write_json(tmp_path / "plans.json", [plan])
    doc = json.loads(
        path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in the file")
    )
    assert doc["plans"][0]["provenance"] == {"objective": None, "gaps": [1.0, None]}


def test_switcher_installs_no_unsafe_plan_whoever_submits_it():
    """The last gate before SUMO: it validates before it touches the simulation (api=None here)."""
    switcher = PlanSwitcher(None, {"J1": REFERENCE})
    with pytest.raises(UnsafePlanError, match="minDur 0.5 s, it must stay 3 s"):
        switcher.submit(_with_phase(safe_plan("J1"), YELLOW, min_dur=0.5), 0.0)
    with pytest.raises(UnsafePlanError, match="no such signal"):
        switcher.submit(safe_plan("J2"), 0.0)
    assert switcher.pending == {}


# --- the one-line exit-2 promise (D8) -------------------------------------------------------------


def _one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "phase, fragment",
    [
        ('<phase state="GGrr"/>', "duration None is not a number of seconds"),
        ('<phase duration="abc" state="GGrr"/>', "duration 'abc' is not a number of seconds"),
        (
            '<phase duration="inf" state="GGrr"/>',
            "duration 'inf' is not a finite number of seconds",
        ),
        ('<phase duration="30"/>', "has no state"),
    ],
)
def test_xml_plan_with_a_bad_duration_is_one_line(tmp_path, phase, fragment):
    path = tmp_path / "plan.add.xml"
    path.write_text(
        f'<additional><tlLogic id="J1" programID="x" offset="0">{phase}</tlLogic></additional>'
    )
    _one_line_error(run_cli("plans", "validate", path, "--net", NET), fragment)


def test_deeply_nested_plans_file_is_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text(
        '{"format": "citybrain-traffic/plans", "plans": ' + "[" * 100_000 + "]" * 100_000 + "}"
    )
    _one_line_error(run_cli("plans", "validate", path, "--net", NET), "nested too deeply")


def test_validate_checks_every_field_the_adapter_reads(tmp_path):
    """`plans validate` passed valid_from "xyz", which the adapter then failed on with a
    traceback."""
    path = _hostile_file(tmp_path, replace(safe_plan("J1"), valid_from="xyz"))
    _one_line_error(
        run_cli("plans", "validate", path, "--net", NET), "valid_from 'xyz' is not an ISO 8601 time"
    )
    _one_line_error(
        run_cli("adapter", "sumo", "corridor", "--plans", path, "--end", "60"), "valid_from"
    )


def test_adapter_refuses_a_nan_plan_file_before_sumo_starts(tmp_path):
    """D2: SUMO ran a NaN plan, stopped switching and the command exited 0."""
    path = _hostile_file(
        tmp_path,
        _with_phase(safe_plan("J1"), YELLOW, duration=math.nan, min_dur=math.nan, max_dur=math.nan),
    )
    proc = run_cli(
        "adapter", "sumo", "corridor", "--plans", path, "--end", "60", "--out", tmp_path / "run"
    )
    _one_line_error(proc, "not a finite number")
    assert not (tmp_path / "run").exists()


# --- the fuzzer: one defect per plan, each refused with its reason, everywhere ------------------

_NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
_SECONDS = st.floats(0, 200, allow_nan=False)


@st.composite
def _hostile(draw):
    """A plan for J1 with exactly one defect, and a fragment of the reason it must be refused
    for."""
    plan = safe_plan(
        "J1",
        extra_s=draw(st.sampled_from([0.0, 6.0])),
        kind=draw(st.sampled_from(PLAN_KINDS)),
        offset=draw(st.floats(0, 60)),
    )
    defect = draw(
        st.sampled_from(
            [
                "clearance",
                "non-finite phase",
                "non-finite cycle",
                "non-finite offset",
                "huge green",
                "short min",
                "short green",
                "program id",
                "kind",
                "valid_from",
                "validity order",
                "state",
            ]
        )
    )
    if defect == "clearance":
        k = draw(st.sampled_from([i for i, p in enumerate(REFERENCE) if not p.is_green]))
        field = draw(st.sampled_from(["duration", "min_dur", "max_dur"]))
        value = draw(_SECONDS.filter(lambda v: abs(v - REFERENCE[k].duration) > 0.01))
        return _with_phase(plan, k, **{field: value}), "it must stay"
    if defect == "non-finite phase":
        k = draw(st.integers(0, len(REFERENCE) - 1))
        field = draw(st.sampled_from(["duration", "min_dur", "max_dur"]))
        return _with_phase(plan, k, **{field: draw(_NON_FINITE)}), "not a finite number"
    if defect == "non-finite cycle":
        return replace(
            plan, cycle_s=draw(st.one_of(_NON_FINITE, st.floats(-1e9, 0)))
        ), "cycle length"
    if defect == "non-finite offset":
        return replace(plan, offset=draw(_NON_FINITE)), "offset"
    if defect == "huge green":
        value = draw(st.floats(MAX_GREEN_S + 1, 1e308))
        return _with_phase(
            plan, GREEN, max_dur=value, duration=draw(st.sampled_from([35.0, value]))
        ), "longest green"
    if defect == "short min":
        return _with_phase(plan, GREEN, min_dur=draw(st.floats(0, 4.9))), "below the minimum green"
    if defect == "short green":
        value = draw(st.floats(0, 4.9))
        return _with_phase(plan, GREEN, duration=value, min_dur=value), "below its minimum"
    if defect == "program id":
        text = draw(
            st.one_of(
                st.text(min_size=1).filter(lambda t: any(c.isspace() or ord(c) < 32 for c in t)),
                st.text(min_size=201, max_size=300),
                st.just(""),
            )
        )
        return replace(plan, program_id=text), "program id"
    if defect == "kind":
        return replace(plan, kind=draw(st.text().filter(lambda t: t not in PLAN_KINDS))), "kind"
    if defect == "valid_from":
        return replace(plan, valid_from=draw(st.text(max_size=40).filter(_not_iso))), "valid_from"
    if defect == "validity order":
        return replace(
            plan, valid_from="2026-01-05T09:00", valid_until="2026-01-05T08:00"
        ), "not after"
    k = draw(st.integers(0, len(REFERENCE) - 1))
    state = draw(
        st.text(alphabet="rRyYgGsuoO<>&\"' ", min_size=1, max_size=20).filter(
            lambda s: s != REFERENCE[k].state
        )
    )
    return _with_phase(plan, k, state=state), "state"


def _not_iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return True
    return False


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from citybrain_traffic.service.store import PlanStore

    store = PlanStore(tmp_path_factory.mktemp("service") / "plans.db")
    with TestClient(create_app(store, [corridor()], TOKENS)) as client:
        yield client
    store.close()


@given(case=_hostile())
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_hostile_plan_is_refused_with_its_reason(case, service, tmp_path_factory):
    plan, reason = case
    problems = violations(plan, REFERENCE)
    assert any(reason in p for p in problems), (reason, problems)

    # The plans file path (plans validate, adapter --plans, publish): refused on reading or on
    # validating.
    path = _hostile_file(tmp_path_factory.mktemp("hostile"), plan)
    try:
        read = read_plans(path)
    except InputError:
        pass
    else:
        with pytest.raises(UnsafePlanError):
            validate_all(read, corridor())

    # The plan service: never stored.
    response = service.post(
        "/v1/plans",
        content=json.dumps(plan_to_dict(plan), allow_nan=True),
        headers={**WRITE, "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["detail"]


@pytest.mark.parametrize("when", ["0", "2026", "1700000000"])
def test_the_service_reads_validity_times_as_the_validator_does(when, service):
    """A fuzzed plan valid from "2026" was stored: pydantic read it as 2026 s after 1970, where
    the validator refuses anything but ISO 8601 text."""
    plan = replace(safe_plan("J1"), valid_from=when)
    assert any("valid_from" in p for p in violations(plan, REFERENCE))
    response = service.post(
        "/v1/plans",
        content=json.dumps(plan_to_dict(plan)),
        headers={**WRITE, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


class RecordingAdapter(ServiceAdapter):
    """The service adapter, recording J1's program and phase index each simulation second."""

    name = "recording-adapter"

    def start(self, context, now):
        self.trace = []
        return self._record(now, super().start(context, now))

    def step(self, now):
        return self._record(now, super().step(now))

    def _record(self, now, wake):
        tl = self.switcher.api.trafficlight
        self.trace.append((now, {"J1": (tl.getProgram("J1"), tl.getPhase("J1"))}))
        return min(wake, now + 1.0) if wake is not None else now + 1.0

    def report(self):
        return {**super().report(), "trace": self.trace}


def test_hostile_plans_served_to_the_adapter_never_reach_the_signal(tmp_path):
    """A store written around the service's checks serves plans that cut J1's yellow and all-red.
    The adapter refuses them and J1 keeps its own program: SUMO shows every yellow and all-red in
    full, and J1 keeps switching."""
    from citybrain_traffic.harness.matrix import run_matrix
    from citybrain_traffic.network import read_network
    from citybrain_traffic.scenario import load_scenario
    from citybrain_traffic.service.store import PlanStore
    from citybrain_traffic.harness.runner import RunSpec

    from test_plan_switching import _runs
    from service_helpers import serving

    hostile = _with_phase(_with_phase(safe_plan("J1"), YELLOW, min_dur=0.5), ALL_RED, min_dur=0.0)
    store = PlanStore(tmp_path / "plans.db")
    store.publish([(replace(hostile, kind="actuated"), "corridor.net.xml")])
    store.close()

    sc = load_scenario("corridor", end=900)
    with serving(tmp_path / "plans.db") as (_, url):
        adapter = RecordingAdapter(url, READ_TOKEN, poll_s=120)
        spec = RunSpec(
            scenario=sc,
            network=read_network(sc.net_file),
            controller=adapter,
            seed=1,
            workdir=tmp_path / "sumo",
        )
        report = run_matrix([spec])[0].controller_report
    assert report["stats"]["refused"] >= 1 and report["stats"]["new"] == 0, report["stats"]
    assert report["installed"] == []
    shown = _runs(report["trace"])["J1"]
    assert len(shown) > 50, "J1 stopped switching"
    for program, phase, start, duration in shown:
        ref = REFERENCE[phase]
        if not ref.is_green:
            assert abs(duration - ref.duration) < 1e-6, (program, phase, start, duration)


def test_an_interrupted_adapter_run_leaves_out_as_it_was(tmp_path):
    """`adapter --out` writes beside --out and renames at the end, like simulate: a run that fails
    leaves nothing behind, so the same command runs again."""
    bad = _hostile_file(tmp_path, replace(safe_plan("J1"), valid_from="xyz"))
    _one_line_error(
        run_cli(
            "adapter", "sumo", "corridor", "--plans", bad, "--end", "60", "--out", tmp_path / "run"
        )
    )
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.partial-*"))
    good = _hostile_file(tmp_path, safe_plan("J1"), "good.json")
    done = run_cli(
        "adapter", "sumo", "corridor", "--plans", good, "--end", "120", "--out", tmp_path / "run"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "adapter.json").is_file() and not list(
        tmp_path.glob(".run.partial-*")
    )
