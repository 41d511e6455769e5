"""Append-only SQLite store of published timing-plan versions (WAL mode, one transaction per batch)."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from ..plans import TimingPlan, plan_from_dict, plan_to_dict  # noqa: F401  (re-exported for the client)

#: Schema version kept in SQLite's ``user_version``.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE batches (
    batch INTEGER PRIMARY KEY AUTOINCREMENT,
    published_at TEXT NOT NULL,
    plans INTEGER NOT NULL
);
CREATE TABLE plans (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    batch INTEGER NOT NULL REFERENCES batches (batch),
    tls_id TEXT NOT NULL,
    network TEXT NOT NULL,
    valid_from TEXT,
    valid_until TEXT,
    published_at TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX plans_by_signal ON plans (tls_id, version);
CREATE TRIGGER plans_no_update BEFORE UPDATE ON plans BEGIN SELECT RAISE(ABORT, 'plans are append-only'); END;
CREATE TRIGGER plans_no_delete BEFORE DELETE ON plans BEGIN SELECT RAISE(ABORT, 'plans are append-only'); END;
CREATE TRIGGER batches_no_update BEFORE UPDATE ON batches BEGIN SELECT RAISE(ABORT, 'batches are append-only'); END;
CREATE TRIGGER batches_no_delete BEFORE DELETE ON batches BEGIN SELECT RAISE(ABORT, 'batches are append-only'); END;
"""

_COLUMNS = "version, batch, tls_id, network, valid_from, valid_until, published_at, document"


@dataclass(frozen=True)
class StoredPlan:
    """One published plan version. ``document`` is the plan as JSON (a ``plans.json`` entry)."""

    version: int
    batch: int
    tls_id: str
    network: str
    valid_from: str | None
    valid_until: str | None
    published_at: str
    document: str

    @property
    def plan(self) -> TimingPlan:
        return plan_from_dict(json.loads(self.document))


@dataclass(frozen=True)
class Published:
    """What one ``publish`` committed: the batch number, its time, and each plan's version."""

    batch: int
    published_at: str
    versions: list[tuple[str, int]]


def time_key(value: datetime | str | None) -> str | None:
    """A validity time as fixed-width text that sorts like the time (None stays None).

    Times without a zone are the signals' local time and are kept as they are; a time with a zone
    is converted to this machine's local time first.

    Raises
    ------
    ValueError
        For text that is not an ISO 8601 time, or a time that cannot be converted.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        try:
            value = value.astimezone().replace(tzinfo=None)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"time {value.isoformat()} cannot be converted to local time: {exc}") from None
    return value.isoformat(timespec="microseconds")


class PlanStore:
    """Every published plan version, in one SQLite file in WAL mode; nothing is overwritten.

    Versions are global and strictly increasing in commit order: a publish takes SQLite's write
    lock first (``BEGIN IMMEDIATE``), so concurrent publishers, threads or processes, queue up
    instead of interleaving. A batch is one transaction: all its plans become visible together,
    or none (also when the process is killed mid-way: WAL recovery drops the open transaction).
    Triggers refuse any UPDATE or DELETE.

    Connections are per thread; the object may be shared between threads.

    Parameters
    ----------
    path
        The database file; created with its schema when missing.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if not self.path.parent.is_dir():
            raise InputError(f"cannot create the plan database {self.path}: folder {self.path.parent} does not exist")
        con = self._connection()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("BEGIN IMMEDIATE")
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _SCHEMA.split(";\n"):
                    con.execute(statement)
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            con.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise InputError(f"{self.path} is not a usable plan database: {exc}") from exc
        if version > SCHEMA_VERSION:
            raise InputError(f"{self.path} has schema version {version}; this program knows up to {SCHEMA_VERSION}")

    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
                # FULL: a commit is on disk before it is acknowledged (power loss, not only a crash).
                con.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise InputError(f"{self.path} is not a usable plan database: {exc}") from exc
            self._local.con = con
            with self._lock:
                self._connections.append(con)
        return con

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._lock:
            for con in self._connections:
                con.close()
            self._connections.clear()
        self._local = threading.local()

    def publish(self, items: Sequence[tuple[TimingPlan, str]]) -> Published:
        """Append ``(plan, network name)`` items as one batch, atomically.

        Plans must have been validated by the caller. Within the batch, versions follow the
        order of ``items``.
        """
        if not items:
            raise ValueError("a batch needs at least one plan")
        con = self._connection()
        con.execute("BEGIN IMMEDIATE")
        try:
            published_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
            batch = con.execute(
                "INSERT INTO batches (published_at, plans) VALUES (?, ?)", (published_at, len(items))
            ).lastrowid
            versions = []
            for plan, network in items:
                cursor = con.execute(
                    "INSERT INTO plans (batch, tls_id, network, valid_from, valid_until, published_at, document) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        batch, plan.tls_id, network, time_key(plan.valid_from), time_key(plan.valid_until),
                        published_at, json.dumps(plan_to_dict(plan), allow_nan=False),
                    ),
                )
                versions.append((plan.tls_id, cursor.lastrowid))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return Published(batch=batch, published_at=published_at, versions=versions)

    def in_force(self, tls_id: str, at: str) -> int | None:
        """The version in force for ``tls_id`` at time key ``at`` (see ``time_key``): the newest
        version whose validity contains it; None when there is none."""
        row = self._connection().execute(
            "SELECT version FROM plans WHERE tls_id = ? AND (valid_from IS NULL OR valid_from <= ?) "
            "AND (valid_until IS NULL OR valid_until > ?) ORDER BY version DESC LIMIT 1",
            (tls_id, at, at),
        ).fetchone()
        return None if row is None else row[0]

    def get(self, version: int) -> StoredPlan | None:
        row = self._connection().execute(f"SELECT {_COLUMNS} FROM plans WHERE version = ?", (version,)).fetchone()
        return None if row is None else StoredPlan(*row)

    def history(self, tls_id: str, *, before: int | None = None, limit: int = 50) -> list[StoredPlan]:
        """The versions of ``tls_id``, newest first, older than ``before`` when given."""
        rows = self._connection().execute(
            f"SELECT {_COLUMNS} FROM plans WHERE tls_id = ? AND version < ? ORDER BY version DESC LIMIT ?",
            (tls_id, before if before is not None else 2**63 - 1, limit),
        ).fetchall()
        return [StoredPlan(*row) for row in rows]

    def latest_versions(self) -> dict[str, int]:
        """Every signal with a published plan, and its newest version."""
        return dict(self._connection().execute("SELECT tls_id, max(version) FROM plans GROUP BY tls_id").fetchall())

    def latest_version(self) -> int:
        """The newest version of any signal (0 when nothing is published)."""
        return self._connection().execute("SELECT coalesce(max(version), 0) FROM plans").fetchone()[0]

    def batches(self) -> list[tuple[int, int]]:
        """Every committed batch with its number of plans, oldest first."""
        return self._connection().execute("SELECT batch, plans FROM batches ORDER BY batch").fetchall()
