"""Plan store: append-only versions, atomic batches, strictly increasing versions under concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from dataclasses import replace

import pytest

from citybrain_traffic.errors import InputError
from citybrain_traffic.service.store import PlanStore, time_key

from service_helpers import safe_plan


def test_versions_are_kept_and_never_overwritten(tmp_path):
    store = PlanStore(tmp_path / "plans.db")
    first = store.publish([(safe_plan("J1"), "corridor.net.xml"), (safe_plan("J2"), "corridor.net.xml")])
    second = store.publish([(safe_plan("J1", extra_s=5), "corridor.net.xml")])
    assert first.versions == [("J1", 1), ("J2", 2)] and second.versions == [("J1", 3)]
    assert [p.version for p in store.history("J1")] == [3, 1]
    assert store.get(3).plan.cycle_s == safe_plan("J1").cycle_s + 5
    assert store.get(1).plan == safe_plan("J1")

    raw = sqlite3.connect(tmp_path / "plans.db")
    for statement in ("UPDATE plans SET document = '{}' WHERE version = 1", "DELETE FROM plans",
                      "DELETE FROM batches", "UPDATE batches SET plans = 0"):
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
    store.publish([
        (safe_plan("J1"), "n"),                                                          # 1: always
        (safe_plan("J1", extra_s=4, valid_from="2026-01-05T08:00", valid_until="2026-01-05T09:00"), "n"),  # 2
    ])
    assert store.in_force("J1", time_key("2026-01-05T07:59:59")) == 1
    assert store.in_force("J1", time_key("2026-01-05T08:00")) == 2
    assert store.in_force("J1", time_key("2026-01-05T09:00")) == 1
    assert store.in_force("J2", time_key("2026-01-05T08:00")) is None


def test_time_keys_sort_like_times():
    assert time_key("2026-01-05T08:00") < time_key("2026-01-05T08:00:00.5") < time_key("2026-01-05T10:00")
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
        runners = [threading.Thread(target=_publisher, args=(path, w, batches, results)) for w in range(workers)]
    else:
        ctx = multiprocessing.get_context("fork")
        results = ctx.Queue()
        runners = [ctx.Process(target=_publisher, args=(path, w, batches, results)) for w in range(workers)]
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

    from citybrain_traffic.service import store as store_module

    calls = {"n": 0}
    real_dumps = json.dumps

    def dumps_then_hang(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == len(plans) // 2:
            ready.set()
            time.sleep(60)
        return real_dumps(*args, **kwargs)

    store_module.json.dumps = dumps_then_hang
    PlanStore(path).publish([(p, "n") for p in plans])


def test_killed_in_the_middle_of_a_batch_leaves_no_trace_of_it(tmp_path):
    import os
    import signal

    path = tmp_path / "plans.db"
    before = PlanStore(path)
    before.publish([(safe_plan("J1"), "n"), (safe_plan("J2"), "n")])
    before.close()
    big = [safe_plan(f"J{1 + k % 5}", extra_s=k % 7, provenance={"pad": "x" * 2000}) for k in range(4000)]
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_publish_and_hang, args=(path, big, ready))
    child.start()
    assert ready.wait(30)
    wal = tmp_path / "plans.db-wal"
    assert wal.stat().st_size > 1_000_000  # half the batch spilled into the log: a real partial write
    os.kill(child.pid, signal.SIGKILL)
    child.join()

    after = PlanStore(path)
    assert after.batches() == [(1, 2)] and after.latest_version() == 2
    assert after.get(1).plan == safe_plan("J1") and after.get(2).plan == safe_plan("J2")
    assert after.publish([(safe_plan("J3"), "n")]).versions == [("J3", 3)]
