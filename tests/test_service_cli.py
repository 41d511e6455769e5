"""The plan service as users run it: `ctraffic serve` killed mid-batch, optimize -> publish ->
adapter, and bad input to `publish` and `serve` (one line, exit 2)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from citybrain_traffic.errors import InputError
from citybrain_traffic.service.client import PlanClient
from citybrain_traffic.service.store import PlanStore, plan_to_dict

from conftest import run_cli
from service_helpers import (
    ENV,
    READ,
    WRITE,
    WRITE_TOKEN,
    damage,
    doc,
    safe_plan,
    serving,
    unsafe_plan,
)


def test_server_killed_mid_batch_keeps_every_committed_plan_and_no_partial_batch(tmp_path):
    db = tmp_path / "plans.db"
    big = doc(
        *[
            safe_plan(f"J{1 + k % 5}", extra_s=k % 9, provenance={"pad": "x" * 300})
            for k in range(6_000)
        ]
    )
    with serving(db, "--max-body-mb", "64") as (server, url):
        committed = []
        for k in range(3):
            answer = httpx.post(
                f"{url}/v1/plans",
                json=doc(*[safe_plan(f"J{j}", extra_s=k) for j in range(1, 6)]),
                headers=WRITE,
                timeout=10,
            )
            assert answer.status_code == 201
            committed.append(answer.json())
        wal = Path(f"{db}-wal")
        wal_before = wal.stat().st_size
        outcome = {}

        def publish_big():
            try:
                outcome["status"] = httpx.post(
                    f"{url}/v1/plans", json=big, headers=WRITE, timeout=60
                ).status_code
            except httpx.TransportError as exc:
                outcome["error"] = exc

        sender = threading.Thread(target=publish_big)
        sender.start()
        deadline = time.monotonic() + 30
        while (
            wal.stat().st_size <= wal_before + 1_000_000
            and time.monotonic() < deadline
            and "status" not in outcome
        ):
            time.sleep(0.002)
        server.send_signal(
            signal.SIGKILL
        )  # the batch is being written: part of it is in the log already
        sender.join()
        server.wait()
    assert "error" in outcome, (
        f"the batch was acknowledged before the kill ({outcome}); the kill came too late"
    )

    with serving(db) as (_, url):
        store = PlanStore(db)
        assert store.batches() == [(1, 5), (2, 5), (3, 5)] and store.latest_version() == 15
        for answer in committed:
            for item in answer["plans"]:
                served = httpx.get(
                    f"{url}/v1/intersections/{item['tls_id']}/plans",
                    params={"limit": 500},
                    headers=READ,
                ).json()["plans"]
                assert item["version"] in [p["version"] for p in served]
        assert httpx.get(f"{url}/v1/intersections/J1/plan", headers=READ).json()["version"] == 11
        after = httpx.post(f"{url}/v1/plans", json=doc(safe_plan("J1")), headers=WRITE).json()
        assert after["plans"] == [{"tls_id": "J1", "version": 16}]
        store.close()


def test_optimize_publish_and_adapter_give_the_kpis_of_the_plans_run_directly(tmp_path):
    plans = tmp_path / "plans"
    assert (
        run_cli("optimize", "corridor", "--end", "1800", "--no-check", "--out", plans).returncode
        == 0
    )
    with serving(tmp_path / "plans.db") as (_, url):
        published = subprocess.run(
            [sys.executable, "-m", "citybrain_traffic.cli", "publish", str(plans), "--server", url],
            env=ENV,
            capture_output=True,
            text=True,
        )
        assert published.returncode == 0, published.stderr
        assert httpx.get(f"{url}/v1/health").json()["latest_version"] == 5
        adapter = subprocess.run(
            [
                sys.executable,
                "-m",
                "citybrain_traffic.cli",
                "adapter",
                "sumo",
                "corridor",
                "--server",
                url,
                "--seed",
                "1",
                "--end",
                "1800",
                "--out",
                str(tmp_path / "adapter"),
            ],
            env={**ENV, "CTRAFFIC_WRITE_TOKEN": ""},
            capture_output=True,
            text=True,
        )
        assert adapter.returncode == 0, adapter.stderr
    direct = run_cli(
        "adapter",
        "sumo",
        "corridor",
        "--plans",
        plans,
        "--seed",
        "1",
        "--end",
        "1800",
        "--out",
        tmp_path / "direct",
    )
    assert direct.returncode == 0, direct.stderr

    def kpis(folder):
        row = json.loads((tmp_path / folder / "kpis.json").read_text())
        return {
            k: v for k, v in row.items() if k not in ("controller", "wall_time_s", "control_time_s")
        }

    assert kpis("adapter") == kpis("direct")
    report = json.loads((tmp_path / "adapter" / "adapter.json").read_text())
    assert (
        report["stats"]["new"] == 5
        and report["stats"]["failed"] == 0
        and report["stats"]["not_modified"] > 0
    )
    assert [e["tls_id"] for e in report["installed"]] == [
        e["tls_id"]
        for e in json.loads((tmp_path / "direct" / "adapter.json").read_text())["installed"]
    ]


def test_publish_of_an_unsafe_plan_is_refused_with_the_reasons(tmp_path):
    from citybrain_traffic.plans import write_json

    write_json(tmp_path / "plans.json", [safe_plan("J1"), unsafe_plan("J2")])
    with serving(tmp_path / "plans.db") as (_, url):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "citybrain_traffic.cli",
                "publish",
                str(tmp_path / "plans.json"),
                "--server",
                url,
            ],
            env=ENV,
            capture_output=True,
            text=True,
        )
        assert (
            result.returncode == 2
            and "refused" in result.stderr
            and "yellow interval is 1 s" in result.stderr
        )
        assert httpx.get(f"{url}/v1/health").json()["latest_version"] == 0
    no_token = subprocess.run(
        [
            sys.executable,
            "-m",
            "citybrain_traffic.cli",
            "publish",
            str(tmp_path),
            "--server",
            "http://127.0.0.1:9",
        ],
        env={**ENV, "CTRAFFIC_WRITE_TOKEN": ""},
        capture_output=True,
        text=True,
    )
    assert no_token.returncode == 2 and "CTRAFFIC_WRITE_TOKEN" in no_token.stderr


def test_nan_plan_is_refused_by_publish_with_one_line(tmp_path):
    from dataclasses import replace

    nan_plan = replace(safe_plan("J1"), cycle_s=float("nan"))
    with pytest.raises(InputError, match="the plan of J1 holds NaN or infinity"):
        PlanClient("http://127.0.0.1:9", WRITE_TOKEN).publish(
            [safe_plan("J2"), nan_plan]
        )  # refused before sending
    (tmp_path / "plans.json").write_text(
        json.dumps(
            {"format": "citybrain-traffic/plans", "version": 1, "plans": [plan_to_dict(nan_plan)]}
        )
    )  # Python writes NaN; strict JSON has none
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "citybrain_traffic.cli",
            "publish",
            str(tmp_path),
            "--server",
            "http://127.0.0.1:9",
        ],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "nan" in result.stderr.lower(), (
        result.stderr
    )


def test_serve_refuses_a_damaged_database_with_one_line(tmp_path):
    db = tmp_path / "plans.db"
    store = PlanStore(db)
    store.publish([(safe_plan(f"J{k}"), "corridor.net.xml") for k in range(1, 6)])
    store.close()
    damage(db, "plans")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "citybrain_traffic.cli",
            "serve",
            "--db",
            str(db),
            "--net",
            "corridor",
            "--port",
            "9",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and f"{db} is damaged" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
