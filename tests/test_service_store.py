"""Plan store: append-only versions, atomic batches, strictly increasing versions under concurrency;
idempotency keys, a full disk, a damaged file, versions lost with the log, an older schema."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from citybrain_traffic.errors import InputError
from citybrain_traffic.service.schema import SCHEMA_VERSION, migrate
from citybrain_traffic.service.store import KeyReusedError, PlanStore, plan_to_dict, time_key

from service_helpers import damage, fill_disk, safe_plan


def test_versions_are_kept_and_never_overwritten(tmp_path):
    store = PlanStore(tmp_path / "plans.db")
    first = store.publish(
        [(safe_plan("J1"), "corridor.net.xml"), (safe_plan("J2"), "corridor.net.xml")]
    )
    second = store.publish([(safe_plan("J1", extra_s=5), "corridor.net.xml")])
    assert first.versions == [("J1", 1), ("J2", 2)] and second.versions == [("J1", 3)]
    assert [p.version for p in store.history("J1")] == [3, 1]
    assert store.get(3).plan.cycle_s == safe_plan("J1").cycle_s + 5
    assert store.get(1).plan == safe_plan("J1")

    raw = sqlite3.connect(tmp_path / "plans.db")
    for statement in (
        "UPDATE plans SET document = '{}' WHERE version = 1",
        "DELETE FROM plans",
        "DELETE FROM batches",
        "UPDATE batches SET plans = 0",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute(statement)
    raw.close()
    store.close()
    reopened = PlanStore(tmp_path / "plans.db")
    assert reopened.latest_version() == 3 and reopened.batches() == [(1, 2), (2, 1)]


def test_a_failing_batch_publishes_nothing(tmp_path):
    store = PlanStore(tmp_path / "plans.db")
    store.publish([(safe_plan("J1"), "n")])
    broken = replace(safe_plan("J3"), provenance={"not json": object()})
    with pytest.raises(TypeError):
        store.publish([(safe_plan("J2"), "n"), (broken, "n")])
    assert store.latest_version() == 1 and store.history("J2") == [] and store.batches() == [(1, 1)]
    assert store.publish([(safe_plan("J2"), "n")]).versions == [("J2", 2)]  # no gap left behind


def test_plan_in_force_follows_validity_and_newest_version(tmp_path):
    store = PlanStore(tmp_path / "plans.db")
    store.publish(
        [
            (safe_plan("J1"), "n"),  # 1: always
            (
                safe_plan(
                    "J1", extra_s=4, valid_from="2026-01-05T08:00", valid_until="2026-01-05T09:00"
                ),
                "n",
            ),  # 2
        ]
    )
    assert store.in_force("J1", time_key("2026-01-05T07:59:59")) == 1
    assert store.in_force("J1", time_key("2026-01-05T08:00")) == 2
    assert store.in_force("J1", time_key("2026-01-05T09:00")) == 1
    assert store.in_force("J2", time_key("2026-01-05T08:00")) is None


def test_time_keys_sort_like_times():
    assert (
        time_key("2026-01-05T08:00")
        < time_key("2026-01-05T08:00:00.5")
        < time_key("2026-01-05T10:00")
    )
    assert time_key("0900-01-01T00:00") < time_key("2026-01-01T00:00")
    with pytest.raises(ValueError):
        time_key("tomorrow")


def test_a_folder_that_is_missing_or_a_file_that_is_not_a_database_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        PlanStore(tmp_path / "missing" / "plans.db")
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(InputError, match="not a usable plan database"):
        PlanStore(tmp_path / "junk.db")


def _publisher(path, worker, batches, results):
    store = PlanStore(path)
    for k in range(batches):
        size = 1 + (worker + k) % 3
        done = store.publish([(safe_plan(f"J{1 + (worker + j) % 5}"), "n") for j in range(size)])
        results.put((worker, done.batch, [v for _, v in done.versions]))
    store.close()


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_concurrent_publishers_get_strictly_increasing_versions(tmp_path, kind):
    path, workers, batches = tmp_path / "plans.db", 4, 15
    PlanStore(path).close()
    if kind == "threads":
        import queue

        results = queue.Queue()
        runners = [
            threading.Thread(target=_publisher, args=(path, w, batches, results))
            for w in range(workers)
        ]
    else:
        ctx = multiprocessing.get_context("fork")
        results = ctx.Queue()
        runners = [
            ctx.Process(target=_publisher, args=(path, w, batches, results)) for w in range(workers)
        ]
    for runner in runners:
        runner.start()
    got = [results.get(timeout=60) for _ in range(workers * batches)]
    for runner in runners:
        runner.join(timeout=60)

    by_batch = sorted(got, key=lambda item: item[1])
    versions = [v for _, _, vs in by_batch for v in vs]
    assert versions == list(range(1, len(versions) + 1))  # in batch order, contiguous, no repeats
    for worker in range(workers):
        mine = [v for w, _, vs in got if w == worker for v in vs]
        assert mine == sorted(mine) and len(set(mine)) == len(mine)
    assert PlanStore(path).latest_version() == len(versions)


def _publish_and_hang(path, plans, ready):
    """Publish ``plans`` as one batch, but stop for good half-way through writing it."""
    import json
    import time

    calls = {"n": 0}
    real_dumps = json.dumps

    def dumps_then_hang(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == len(plans) // 2:
            ready.set()
            time.sleep(60)
        return real_dumps(*args, **kwargs)

    json.dumps = dumps_then_hang  # the store's json module: this is a forked child
    PlanStore(path).publish([(p, "n") for p in plans])


def test_killed_in_the_middle_of_a_batch_leaves_no_trace_of_it(tmp_path):
    import os
    import signal

    path = tmp_path / "plans.db"
    before = PlanStore(path)
    before.publish([(safe_plan("J1"), "n"), (safe_plan("J2"), "n")])
    before.close()
    big = [
        safe_plan(f"J{1 + k % 5}", extra_s=k % 7, provenance={"pad": "x" * 2000})
        for k in range(4000)
    ]
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_publish_and_hang, args=(path, big, ready))
    child.start()
    assert ready.wait(30)
    wal = tmp_path / "plans.db-wal"
    assert (
        wal.stat().st_size > 1_000_000
    )  # half the batch spilled into the log: a real partial write
    os.kill(child.pid, signal.SIGKILL)
    child.join()

    after = PlanStore(path)
    assert after.batches() == [(1, 2)] and after.latest_version() == 2
    assert after.get(1).plan == safe_plan("J1") and after.get(2).plan == safe_plan("J2")
    assert after.publish([(safe_plan("J3"), "n")]).versions == [("J3", 3)]


def test_disk_full_leaves_the_real_cause_and_no_batch(tmp_path):
    store = PlanStore(tmp_path / "plans.db")
    store.publish([(safe_plan("J1"), "n")])
    fill_disk(store)
    big = [(safe_plan(f"J{1 + k % 5}", provenance={"pad": "x" * 2000}), "n") for k in range(50)]
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full") as raised:
        store.publish(
            big
        )  # was: "cannot rollback - no transaction is active", SQLite having rolled back itself
    assert raised.value.sqlite_errorname == "SQLITE_FULL"
    assert store.latest_version() == 1 and store.batches() == [(1, 1)]


@pytest.mark.parametrize("name", ["plans", "plans_by_signal", "batches"])
def test_damaged_database_is_refused_at_start(tmp_path, name):
    db = tmp_path / "plans.db"
    store = PlanStore(db)
    for k in range(3):
        store.publish([(safe_plan(f"J{j}", extra_s=k), "n") for j in range(1, 6)])
    store.close()  # the last connection folds the log into the file
    damage(db, name)
    with pytest.raises(
        InputError,
        match=r"plans.db is damaged \(PRAGMA quick_check: .+\): restore it from a backup",
    ) as refused:
        PlanStore(db)
    assert "\n" not in str(refused.value)


def test_lost_versions_are_detected(tmp_path):
    db = tmp_path / "plans.db"
    store = PlanStore(db)
    store.publish([(safe_plan("J1"), "n"), (safe_plan("J2"), "n")])
    raw = sqlite3.connect(db)
    raw.execute(
        "PRAGMA wal_checkpoint(TRUNCATE)"
    )  # versions 1-2 in the database file, 3-4 only in its log
    raw.close()
    store.publish([(safe_plan("J3"), "n")])
    store.publish([(safe_plan("J4"), "n")])
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(db, copy / db.name)
    shutil.copy(f"{db}-latest", copy / f"{db.name}-latest")
    wal = bytearray(Path(f"{db}-wal").read_bytes())
    wal[32 + 24 + 100] ^= (
        0xFF  # a bit of the first frame's page: SQLite drops that frame and every later one
    )
    (copy / f"{db.name}-wal").write_bytes(wal)
    store.close()

    with pytest.raises(
        InputError, match=r"lacks versions 3-4, committed to it before .* --accept-lost-versions"
    ):
        PlanStore(copy / db.name)
    accepted = PlanStore(copy / db.name, accept_lost_versions=True)
    assert accepted.latest_version() == 2
    assert accepted.publish([(safe_plan("J5"), "n")]).versions == [
        ("J5", 5)
    ]  # 3 and 4 are never reused
    accepted.close()
    assert PlanStore(copy / db.name).latest_version() == 5


def test_a_schema_1_database_is_migrated_and_keeps_its_plans(tmp_path):
    db = tmp_path / "plans.db"
    old = sqlite3.connect(db, isolation_level=None)
    migrate(old, 0, target=1)
    old.execute("INSERT INTO batches (published_at, plans) VALUES ('2026-01-05T08:00:00+00:00', 1)")
    old.execute(
        "INSERT INTO plans (batch, tls_id, network, published_at, document) VALUES (1, 'J1', 'n', "
        "'2026-01-05T08:00:00+00:00', ?)",
        (json.dumps(plan_to_dict(safe_plan("J1"))),),
    )
    old.close()

    store = PlanStore(db)
    assert store.get(1).plan == safe_plan("J1")
    first = store.publish([(safe_plan("J2"), "n")], key="batch-a", digest="d1")
    assert first.versions == [("J2", 2)] and not first.replayed
    again = store.publish([(safe_plan("J2"), "n")], key="batch-a", digest="d1")
    assert again == replace(first, replayed=True) and store.batches() == [(1, 1), (2, 1)]
    with pytest.raises(KeyReusedError, match="'batch-a' was used for batch 2"):
        store.publish([(safe_plan("J3"), "n")], key="batch-a", digest="d2")
    assert store.latest_version() == 2
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        raw.execute(
            "INSERT INTO batches (published_at, plans, idempotency_key) VALUES ('t', 1, 'batch-a')"
        )
    raw.close()
