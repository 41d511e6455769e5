"""Shared pieces of the plan-service tests: the corridor network, safe plans, tokens, a test
client, and `ctraffic serve` on a loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import httpx

from citybrain_traffic.network import Network, read_network
from citybrain_traffic.plans import TimingPlan, plans_from_network
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.service.auth import Tokens
from citybrain_traffic.service.store import PlanStore, plan_to_dict

with warnings.catch_warnings():
    # Starlette announces a move to httpx2 for its TestClient; httpx still works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: F401  (re-exported)

READ_TOKEN = "read-token-0123456789abcdef"
WRITE_TOKEN = "write-token-0123456789abcdef"
TOKENS = Tokens(read=(READ_TOKEN.encode(),), write=(WRITE_TOKEN.encode(),))
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
ENV = {**os.environ, "CTRAFFIC_READ_TOKEN": READ_TOKEN, "CTRAFFIC_WRITE_TOKEN": WRITE_TOKEN}


@lru_cache(maxsize=1)
def corridor() -> Network:
    return read_network(load_scenario("corridor").net_file)


def safe_plan(tls_id: str = "J1", *, extra_s: float = 0.0, **changes) -> TimingPlan:
    """The network's own program for ``tls_id``, its first green ``extra_s`` longer (still safe)."""
    plan = next(p for p in plans_from_network(corridor()) if p.tls_id == tls_id)
    phases = list(plan.phases)
    i, green = plan.greens[0]
    phases[i] = replace(
        green,
        duration=green.duration + extra_s,
        max_dur=max(green.max_dur, green.duration + extra_s),
    )
    return replace(
        plan, program_id="test", phases=tuple(phases), cycle_s=plan.cycle_s + extra_s, **changes
    )


def unsafe_plan(tls_id: str = "J2") -> TimingPlan:
    """A plan that cuts a yellow interval to 1 s."""
    plan = safe_plan(tls_id)
    phases = list(plan.phases)
    k = next(k for k, p in enumerate(phases) if p.kind == "yellow")
    phases[k] = replace(phases[k], duration=1.0, min_dur=1.0, max_dur=1.0)
    return replace(plan, phases=tuple(phases), cycle_s=sum(p.duration for p in phases))


def doc(*plans: TimingPlan) -> dict:
    """A publish body: a batch of ``plans``."""
    return {"plans": [plan_to_dict(p) for p in plans]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(db: Path, *extra: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`ctraffic serve` on a free loopback port; yields (process, base URL)."""
    port = free_port()
    log = open(db.with_suffix(f".{port}.log"), "w")
    process = subprocess.Popen(
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
            str(port),
            *extra,
        ],
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, db.with_suffix(
                f".{port}.log"
            ).read_text()
            time.sleep(0.1)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


def fill_disk(store: PlanStore) -> None:
    """From now on, ``store``'s database cannot grow: SQLite answers SQLITE_FULL ("database or disk
    is full") exactly as on a full disk."""
    opened = store.connection

    def connection():
        con = opened()
        con.execute("PRAGMA max_page_count = 1")  # never set below the current size: no page more
        return con

    store.connection = connection


def damage(db: Path, name: str) -> None:
    """Overwrite the cell pointers of the first page of table or index ``name`` in the closed
    database ``db``."""
    con = sqlite3.connect(db)
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    con.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * page_size + 8)
        f.write(b"\xff" * 64)
