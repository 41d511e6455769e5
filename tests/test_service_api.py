"""Plan service HTTP API through FastAPI's TestClient: auth, errors, ETags, ?at, formats, paging,
long poll, idempotent publishes, bounded provenance, storage errors."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from citybrain_traffic.plans import read_tl_logics, violations
from citybrain_traffic.service.app import create_app
from citybrain_traffic.service.store import PlanStore, plan_to_dict

from service_helpers import (
    READ,
    READ_TOKEN,
    TOKENS,
    WRITE,
    WRITE_TOKEN,
    TestClient,
    corridor,
    doc,
    fill_disk,
    safe_plan,
    unsafe_plan,
)

MAX_BODY = 100_000


@pytest.fixture
def store(tmp_path):
    store = PlanStore(tmp_path / "plans.db")
    yield store
    store.close()


@pytest.fixture
def client(store):
    with TestClient(create_app(store, [corridor()], TOKENS, max_body_bytes=MAX_BODY)) as client:
        yield client


def test_health_needs_no_token(client):
    assert client.get("/v1/health").json() == {
        "status": "ok",
        "latest_version": 0,
        "networks": {"corridor.net.xml": 5},
    }


def test_missing_token_is_401_wrong_token_403_and_neither_token_is_logged(client, caplog):
    caplog.set_level(logging.WARNING, logger="citybrain_traffic.service")
    missing = client.get("/v1/intersections")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = "Bearer wrong-token-0123456789abcdef"
    assert client.get("/v1/intersections", headers={"Authorization": wrong}).status_code == 403
    assert (
        client.post("/v1/plans", json=doc(safe_plan()), headers=READ).status_code == 403
    )  # read cannot write
    assert client.post("/v1/plans", json=doc(safe_plan())).status_code == 401
    assert client.get("/v1/intersections", headers=WRITE).status_code == 200  # write can read
    logged = caplog.text
    assert "401 GET /v1/intersections" in logged and "403 POST /v1/plans" in logged
    assert "wrong-token" not in logged and READ_TOKEN not in logged and WRITE_TOKEN not in logged


def test_publish_then_read_in_every_format(client, tmp_path):
    published = client.post(
        "/v1/plans", json=doc(safe_plan("J1", extra_s=3), safe_plan("J2")), headers=WRITE
    )
    assert published.status_code == 201
    assert [p["version"] for p in published.json()["plans"]] == [1, 2]

    got = client.get("/v1/intersections/J1/plan", headers=READ)
    assert got.status_code == 200 and got.headers["etag"] == '"1"'
    body = got.json()
    assert body["version"] == 1 and body["network"] == "corridor.net.xml"
    assert {k: body[k] for k in plan_to_dict(safe_plan("J1"))} == json.loads(
        json.dumps(plan_to_dict(safe_plan("J1", extra_s=3)))
    )

    sumo = client.get("/v1/intersections/J1/plan", params={"format": "sumo"}, headers=READ)
    assert (
        sumo.headers["content-type"].startswith("application/xml")
        and sumo.headers["etag"] == '"1-sumo"'
    )
    (tmp_path / "p.add.xml").write_text(sumo.text)
    (logic,) = read_tl_logics(tmp_path / "p.add.xml")
    assert logic.phases == safe_plan("J1", extra_s=3).phases

    utdf = client.get("/v1/intersections/J1/plan", params={"format": "utdf"}, headers=READ)
    assert utdf.headers["content-type"].startswith("text/csv")
    assert f"Cycle Length,J1,{safe_plan('J1', extra_s=3).cycle_s:g}" in utdf.text
    # D1..D8 are NEMA phases, as `ctraffic optimize` writes them (the served network's fit).
    assert "J1: D1..D8 are NEMA phases" in utdf.text

    listed = {row["id"]: row for row in client.get("/v1/intersections", headers=READ).json()}
    assert (
        listed["J1"]["version"] == 1
        and listed["J2"]["latest_version"] == 2
        and listed["J3"]["version"] is None
    )


def test_etag_gives_304_until_a_new_version_is_published(client):
    client.post("/v1/plans", json=doc(safe_plan("J1")), headers=WRITE)
    etag = client.get("/v1/intersections/J1/plan", headers=READ).headers["etag"]
    assert (
        client.get("/v1/intersections/J1/plan", headers={**READ, "If-None-Match": etag}).status_code
        == 304
    )
    assert (
        client.get(
            "/v1/intersections/J1/plan", headers={**READ, "If-None-Match": f'W/{etag}, "9"'}
        ).status_code
        == 304
    )
    client.post("/v1/plans", json=doc(safe_plan("J1", extra_s=2)), headers=WRITE)
    fresh = client.get("/v1/intersections/J1/plan", headers={**READ, "If-None-Match": etag})
    assert (
        fresh.status_code == 200
        and fresh.headers["etag"] == '"2"'
        and fresh.json()["cycle_s"] == safe_plan("J1").cycle_s + 2
    )


def test_at_selects_the_plan_in_force_then(client):
    day = safe_plan("J1")
    peak = safe_plan(
        "J1", extra_s=6, valid_from="2026-01-05T08:00:00", valid_until="2026-01-05T09:00:00"
    )
    client.post("/v1/plans", json=doc(day, peak), headers=WRITE)

    def version(at):
        return client.get("/v1/intersections/J1/plan", params={"at": at}, headers=READ).json()[
            "version"
        ]

    assert version("2026-01-05T07:30:00") == 1
    assert version("2026-01-05T08:30:00") == 2
    assert version("2026-01-05T09:00:00") == 1
    none = client.get(
        "/v1/intersections/J2/plan", params={"at": "2026-01-05T08:30:00"}, headers=READ
    )
    assert none.status_code == 404 and "no plan" in none.json()["detail"]
    bad = client.get("/v1/intersections/J1/plan", params={"at": "yesterday"}, headers=READ)
    assert bad.status_code == 422 and bad.json()["reasons"]


def test_history_is_paginated_newest_first(client):
    for k in range(5):
        client.post(
            "/v1/plans", json=doc(safe_plan("J1", extra_s=k), safe_plan("J2")), headers=WRITE
        )
    seen, before = [], None
    while True:
        page = client.get(
            "/v1/intersections/J1/plans",
            params={"limit": 2, **({"before": before} if before else {})},
            headers=READ,
        ).json()
        seen += [p["version"] for p in page["plans"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == [9, 7, 5, 3, 1]


def test_unknown_ids_are_404(client):
    for path in ("/v1/intersections/J9/plan", "/v1/intersections/J9/plans"):
        response = client.get(path, headers=READ)
        assert (
            response.status_code == 404 and "unknown intersection 'J9'" in response.json()["detail"]
        )
    assert (
        client.get("/v1/intersections/J1/plan", headers=READ).status_code == 404
    )  # nothing published yet


def test_malformed_bodies_are_400_or_415_with_a_reason(client):
    bad_json = client.post(
        "/v1/plans", content=b'{"plans": [', headers={**WRITE, "Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["detail"].startswith("malformed JSON")
    empty = client.post(
        "/v1/plans", content=b"", headers={**WRITE, "Content-Type": "application/json"}
    )
    assert empty.status_code == 400 and "empty body" in empty.json()["detail"]
    text = client.post("/v1/plans", content=b"{}", headers={**WRITE, "Content-Type": "text/plain"})
    assert text.status_code == 415
    missing = client.post("/v1/plans", json={"tls_id": "J1"}, headers=WRITE)
    assert missing.status_code == 422 and any("cycle_s" in r for r in missing.json()["reasons"])


def test_bodies_over_the_limit_are_413(client):
    huge = json.dumps(doc(*[safe_plan("J1")] * 400)).encode()
    assert len(huge) > MAX_BODY
    assert (
        client.post(
            "/v1/plans", content=huge, headers={**WRITE, "Content-Type": "application/json"}
        ).status_code
        == 413
    )

    def chunks():  # no Content-Length: counted as it streams
        for k in range(0, len(huge), 8192):
            yield huge[k : k + 8192]

    streamed = client.post(
        "/v1/plans", content=chunks(), headers={**WRITE, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert client.get("/v1/health").json()["latest_version"] == 0


def test_a_batch_with_one_unsafe_plan_is_refused_whole_with_the_reasons(client):
    response = client.post(
        "/v1/plans", json=doc(safe_plan("J1"), unsafe_plan("J2"), safe_plan("J3")), headers=WRITE
    )
    assert response.status_code == 422
    reasons = response.json()["reasons"]  # the validator's, for the one unsafe plan
    assert reasons and reasons == violations(
        unsafe_plan("J2"), corridor().intersections["J2"].phases
    )
    assert client.get("/v1/health").json()["latest_version"] == 0
    assert client.get("/v1/intersections/J1/plan", headers=READ).status_code == 404

    foreign = plan_to_dict(safe_plan("J1")) | {"tls_id": "X7"}
    response = client.post("/v1/plans", json=foreign, headers=WRITE)
    assert response.status_code == 422 and "X7: no such signal" in response.json()["detail"]
    window = safe_plan("J1", valid_from="2026-01-05T09:00:00", valid_until="2026-01-05T08:00:00")
    response = client.post("/v1/plans", json=plan_to_dict(window), headers=WRITE)
    reasons = response.json()["reasons"]
    assert response.status_code == 422
    assert reasons and reasons == violations(window, corridor().intersections["J1"].phases)


def test_a_plans_json_file_from_optimize_is_a_valid_body(client, tmp_path):
    from citybrain_traffic.plans import write_json

    write_json(tmp_path / "plans.json", [safe_plan(f"J{k}") for k in range(1, 6)])
    response = client.post(
        "/v1/plans",
        content=(tmp_path / "plans.json").read_bytes(),
        headers={**WRITE, "Content-Type": "application/json"},
    )
    assert response.status_code == 201 and len(response.json()["plans"]) == 5


def test_long_poll_returns_when_a_newer_version_is_published(client, store):
    client.post("/v1/plans", json=doc(safe_plan("J1")), headers=WRITE)
    etag = client.get("/v1/intersections/J1/plan", headers=READ).headers["etag"]

    # Published by another process (here: straight into the store), so found by the watcher.
    threading.Timer(
        0.3, lambda: store.publish([(safe_plan("J1", extra_s=1), "corridor.net.xml")])
    ).start()
    started = time.perf_counter()
    response = client.get(
        "/v1/intersections/J1/plan", params={"wait": 10}, headers={**READ, "If-None-Match": etag}
    )
    assert response.status_code == 200 and response.json()["version"] == 2
    assert 0.25 < time.perf_counter() - started < 2.0

    # Published through the API (another request): wakes the waiter at once.
    threading.Timer(
        0.3, lambda: client.post("/v1/plans", json=doc(safe_plan("J1", extra_s=2)), headers=WRITE)
    ).start()
    response = client.get(
        "/v1/intersections/J1/plan", params={"wait": 10}, headers={**READ, "If-None-Match": '"2"'}
    )
    assert response.status_code == 200 and response.json()["version"] == 3


def test_long_poll_times_out_with_304(client):
    client.post("/v1/plans", json=doc(safe_plan("J1"), safe_plan("J2")), headers=WRITE)
    started = time.perf_counter()
    response = client.get(
        "/v1/intersections/J1/plan", params={"wait": 0.4}, headers={**READ, "If-None-Match": '"1"'}
    )
    assert response.status_code == 304 and 0.4 <= time.perf_counter() - started < 1.5
    started = time.perf_counter()
    assert (
        client.get("/v1/intersections/J1/plan", params={"wait": 5}, headers=READ).status_code == 200
    )  # no ETag
    assert time.perf_counter() - started < 1.0


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_deep_provenance_is_422(client):
    def publish(provenance):
        return client.post(
            "/v1/plans", json=doc(safe_plan("J1", provenance=provenance)), headers=WRITE
        )

    for depth in (33, 255, 600):  # 255 and more levels broke the serializer: 500
        response = publish(_nested(depth))
        assert response.status_code == 422, depth
        assert (
            "provenance" in response.json()["detail"]
            and "deeper than 32 levels" in response.json()["detail"]
        )
    assert publish(_nested(32)).status_code == 201
    big = publish({"notes": ["x" * 1000] * 70})
    assert big.status_code == 422 and "more than 65,536" in big.json()["detail"]
    nan = client.post(
        "/v1/plans",
        content=json.dumps(doc(safe_plan("J1", provenance={"objective": float("nan")}))),
        headers={**WRITE, "Content-Type": "application/json"},
    )
    assert nan.status_code == 422 and "not a finite number" in nan.json()["detail"]
    too_deep_to_parse = client.post(
        "/v1/plans", content=b"[" * 100_000, headers={**WRITE, "Content-Type": "application/json"}
    )
    assert too_deep_to_parse.status_code == 400 and too_deep_to_parse.json()["detail"]
    assert client.get("/v1/health").json()["latest_version"] == 1


def test_disk_full_answers_json_503(client, store):
    client.post("/v1/plans", json=doc(safe_plan("J1")), headers=WRITE)
    fill_disk(store)
    big = doc(*[safe_plan(f"J{1 + k % 5}", provenance={"pad": "x" * 1000}) for k in range(50)])
    response = client.post("/v1/plans", json=big, headers=WRITE)
    assert response.status_code == 503 and response.headers["content-type"] == "application/json"
    assert response.json() == {
        "detail": "the plan database cannot store this now: database or disk is full",
        "reasons": ["SQLITE_FULL: database or disk is full"],
    }
    assert (
        client.get("/v1/intersections/J1/plans", headers=READ).json()["plans"][0]["version"] == 1
    )  # reads go on


def test_every_500_is_json(store):
    def broken():
        raise RuntimeError("the store is gone")

    store.latest_versions = broken
    with TestClient(
        create_app(store, [corridor()], TOKENS), raise_server_exceptions=False
    ) as client:
        response = client.get("/v1/intersections", headers=READ)
    assert response.status_code == 500 and response.json() == {
        "detail": "internal error (RuntimeError); the server log has the details",
        "reasons": ["RuntimeError: the store is gone"],
    }


def test_a_retried_publish_gets_the_first_answer_and_a_reused_key_is_422(client):
    body = json.dumps(doc(safe_plan("J1"), safe_plan("J2"))).encode()
    headers = {**WRITE, "Content-Type": "application/json", "Idempotency-Key": "0f3c2a9e-batch"}
    first = client.post("/v1/plans", content=body, headers=headers)
    again = client.post("/v1/plans", content=body, headers=headers)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert (
        again.headers["idempotent-replayed"] == "true"
        and "idempotent-replayed" not in first.headers
    )
    other = client.post("/v1/plans", json=doc(safe_plan("J3")), headers=headers)
    assert (
        other.status_code == 422
        and "'0f3c2a9e-batch' was used for batch 1" in other.json()["detail"]
    )
    assert (
        client.post(
            "/v1/plans", content=body, headers={**headers, "Idempotency-Key": "new-key"}
        ).status_code
        == 201
    )
    assert client.get("/v1/health").json()["latest_version"] == 4
    bad_key = client.post(
        "/v1/plans", content=body, headers={**headers, "Idempotency-Key": "has space"}
    )
    assert bad_key.status_code == 422 and "idempotency-key" in bad_key.json()["detail"]
