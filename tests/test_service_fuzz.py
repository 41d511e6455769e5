"""Fuzzing the plan service: schemathesis from its own OpenAPI schema finds no 5xx; unsafe plans
never pass."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import hypothesis.strategies as st
import schemathesis
from hypothesis import HealthCheck, given, settings

from citybrain_traffic.plans import violations
from citybrain_traffic.service.app import create_app
from citybrain_traffic.service.store import PlanStore, plan_to_dict

from service_helpers import READ, WRITE, TOKENS, TestClient, corridor, doc, safe_plan

_TMP = Path(tempfile.mkdtemp(prefix="ctraffic-fuzz-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
_STORE = PlanStore(_TMP / "plans.db")
_STORE.publish([(safe_plan(f"J{k}"), "corridor.net.xml") for k in range(1, 6)])
_STORE.publish(
    [
        (
            safe_plan(
                "J1", extra_s=4, valid_from="2026-01-05T08:00", valid_until="2026-01-05T09:00"
            ),
            "corridor.net.xml",
        )
    ]
)
APP = create_app(_STORE, [corridor()], TOKENS, max_body_bytes=200_000)

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_from_schema_generated_requests(case):
    """Valid and invalid requests from the schema, with a write token (reads too) and without."""
    headers = (
        WRITE
        if case.operation.method.upper() == "POST" or hash(str(case.path_parameters)) % 2
        else {}
    )
    response = case.call(headers={**(case.headers or {}), **headers})
    assert response.status_code < 500, response.text[:2000]
    if (
        response.status_code != 413
    ):  # a rejection schemathesis does not list among the expected ones
        case.validate_response(
            response, excluded_checks=[schemathesis.checks.positive_data_acceptance]
        )


_STATES = [p.state for p in corridor().intersections["J1"].phases]


@st.composite
def _plans(draw):
    """Plans for J1: the network's states, shuffled or not, with any durations and offsets."""
    reference = safe_plan("J1")
    states = draw(
        st.one_of(
            st.just(_STATES),
            st.permutations(_STATES),
            st.lists(st.sampled_from(_STATES), min_size=1, max_size=10),
        )
    )
    durations = draw(
        st.lists(st.floats(0, 120, allow_nan=False), min_size=len(states), max_size=len(states))
    )
    phases = tuple(
        replace(reference.phases[0], state=s, duration=d, min_dur=d, max_dur=d)
        for s, d in zip(states, durations)
    )
    cycle = draw(st.one_of(st.just(sum(durations)), st.floats(0.5, 300)))
    offset = draw(st.floats(0, 300))
    return replace(reference, phases=phases, cycle_s=cycle, offset=offset)


@given(plan=_plans())
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_only_safe_plans_are_published(plan):
    with TestClient(APP) as client:
        response = client.post("/v1/plans", json=doc(plan), headers=WRITE)
        problems = violations(plan, corridor().intersections["J1"].phases)
        if problems:
            reasons = response.json()["reasons"]
            assert response.status_code == 422
            assert reasons == problems or all(
                r.startswith("body.") for r in reasons
            )  # or refused by the schema
        else:
            assert response.status_code == 201, response.text
            version = response.json()["plans"][0]["version"]
            stored = client.get(
                "/v1/intersections/J1/plans", params={"limit": 1}, headers=READ
            ).json()["plans"][0]
            assert stored["version"] == version
            assert {k: stored[k] for k in ("cycle_s", "offset_s", "phases")} == {
                k: plan_to_dict(plan)[k] for k in ("cycle_s", "offset_s")
            } | {"phases": plan_to_dict(plan)["phases"]}
