"""Append-only SQLite store of published timing-plan versions (WAL, one transaction per batch)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence, overload

from ..errors import InputError
from ..plans import TimingPlan, plan_from_dict, plan_to_dict, validity_time
from .schema import SCHEMA_VERSION, damage, migrate, schema_version
from .version_mark import VersionMark

#: Imported from here by the client, the models and the tests.
__all__ = [
    "SCHEMA_VERSION",
    "KeyReusedError",
    "PlanStore",
    "Published",
    "StoredPlan",
    "plan_from_dict",
    "plan_to_dict",
    "time_key",
]

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
        """The plan of this version, read from its ``document``."""
        return plan_from_dict(json.loads(self.document))


@dataclass(frozen=True)
class Published:
    """What one ``publish`` committed: the batch number, its time, and each plan's version.

    ``replayed`` is True when the batch was committed by an earlier request with the same key.
    """

    batch: int
    published_at: str
    versions: list[tuple[str, int]]
    replayed: bool = False


class KeyReusedError(InputError):
    """An idempotency key already names a batch made from a different request."""


@overload
def time_key(value: datetime | str) -> str: ...


@overload
def time_key(value: None) -> None: ...


def time_key(value: datetime | str | None) -> str | None:
    """Return a validity time as fixed-width text that sorts like the time (None stays None).

    Times without a zone are the signals' local time and are kept as they are; a time with a zone
    is converted to this machine's local time first.

    Raises
    ------
    ValueError
        For text that is not an ISO 8601 time, or a time that cannot be converted.
    """
    moment = validity_time(value)
    return None if moment is None else moment.isoformat(timespec="microseconds")


class PlanStore:
    """Every published plan version, in one SQLite file in WAL mode; nothing is overwritten.

    Versions are global and strictly increasing in commit order: a publish takes SQLite's write
    lock first (``BEGIN IMMEDIATE``), so concurrent publishers, threads or processes, queue up
    instead of interleaving. A batch is one transaction: all its plans become visible together,
    or none (also when the process is killed mid-way: WAL recovery drops the open transaction).
    Triggers refuse any UPDATE or DELETE.

    Opening the store checks the file (``PRAGMA quick_check``) and that no committed version is
    missing: after each publish the newest version is also written beside the database
    (``<db>-latest``), so versions lost with a damaged or deleted write-ahead log are noticed, and
    their numbers are never given to other plans (an adapter holding one as its ETag would take
    the new plan for the one it has).

    Connections are per thread; the object may be shared between threads.

    Parameters
    ----------
    path
        The database file; created with its schema when missing, migrated when older.
    accept_lost_versions
        Open a database that lacks committed versions, and number new versions after the lost
        ones; without it, such a database is refused.

    Raises
    ------
    InputError
        For a missing folder, a file that is not a plan database or is damaged, a newer schema,
        or lost versions (without ``accept_lost_versions``).
    """

    def __init__(self, path: str | Path, *, accept_lost_versions: bool = False):
        self.path = Path(path)
        self.mark = VersionMark(self.path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if not self.path.parent.is_dir():
            raise InputError(
                f"cannot create the plan database {self.path}: "
                f"folder {self.path.parent} does not exist"
            )
        con = self.connection()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            problem = damage(con)
            if problem is not None:
                raise InputError(
                    f"{self.path} is damaged (PRAGMA quick_check: {problem}): "
                    "restore it from a backup"
                )
            con.execute("BEGIN IMMEDIATE")
            version = schema_version(con)
            if version > SCHEMA_VERSION:
                raise InputError(
                    f"{self.path} has schema version {version}; "
                    f"this program knows up to {SCHEMA_VERSION}"
                )
            migrate(con, version)
            self.mark.check(con, accept_lost=accept_lost_versions)
            con.execute("COMMIT")
        except (sqlite3.DatabaseError, InputError) as exc:
            _rollback(con)
            self.close()
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{self.path} is not a usable plan database: {exc}") from exc

    def connection(self) -> sqlite3.Connection:
        """Return the calling thread's connection to the database, opened on its first use.

        Connections are in autocommit mode (transactions are explicit) with ``synchronous=FULL``.

        Raises
        ------
        InputError
            When the file cannot be opened as a database.
        """
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(
                    self.path, isolation_level=None, timeout=30.0, check_same_thread=False
                )
                # FULL: a commit is on disk before it is acknowledged (it survives a power loss,
                # not only a crash).
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

    def publish(
        self,
        items: Sequence[tuple[TimingPlan, str]],
        *,
        key: str | None = None,
        digest: str | None = None,
    ) -> Published:
        """Append ``(plan, network name)`` items as one batch, atomically.

        Plans must have been validated by the caller. Within the batch, versions follow the
        order of ``items``. With ``key`` (the publisher's id for this batch) and ``digest`` (of
        the request), a key already stored returns its batch as it was committed, with
        ``replayed`` set, and stores nothing.

        Raises
        ------
        KeyReusedError
            When ``key`` names a batch made from a request of another digest.
        sqlite3.Error
            When the database cannot take the batch (full disk, I/O error); nothing is stored.
        """
        if not items:
            raise ValueError("a batch needs at least one plan")
        con = self.connection()
        con.execute("BEGIN IMMEDIATE")
        try:
            done = self._replay(con, key, digest) if key is not None else None
            if done is None:
                done = self._append(con, items, key, digest)
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
        if not done.replayed:
            self.mark.write(done.versions[-1][1])
        return done

    @staticmethod
    def _replay(con: sqlite3.Connection, key: str, digest: str | None) -> Published | None:
        row = con.execute(
            "SELECT batch, published_at, request_sha256 FROM batches WHERE idempotency_key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        batch, published_at, stored_digest = row
        if stored_digest != digest:
            raise KeyReusedError(
                f"Idempotency-Key {key!r} was used for batch {batch}, published from another "
                "request: use a new key for a new publish"
            )
        versions = con.execute(
            "SELECT tls_id, version FROM plans WHERE batch = ? ORDER BY version", (batch,)
        ).fetchall()
        return Published(batch=batch, published_at=published_at, versions=versions, replayed=True)

    @staticmethod
    def _append(
        con: sqlite3.Connection,
        items: Sequence[tuple[TimingPlan, str]],
        key: str | None,
        digest: str | None,
    ) -> Published:
        published_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        batch = _row_id(
            con.execute(
                "INSERT INTO batches (published_at, plans, idempotency_key, request_sha256) "
                "VALUES (?, ?, ?, ?)",
                (published_at, len(items), key, digest),
            )
        )
        versions = []
        for plan, network in items:
            cursor = con.execute(
                "INSERT INTO plans "
                "(batch, tls_id, network, valid_from, valid_until, published_at, document) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    batch,
                    plan.tls_id,
                    network,
                    time_key(plan.valid_from),
                    time_key(plan.valid_until),
                    published_at,
                    json.dumps(plan_to_dict(plan), allow_nan=False),
                ),
            )
            versions.append((plan.tls_id, _row_id(cursor)))
        return Published(batch=batch, published_at=published_at, versions=versions)

    def in_force(self, tls_id: str, at: str) -> int | None:
        """Return the version in force for ``tls_id`` at time key ``at`` (see ``time_key``).

        That is the newest version whose validity contains ``at``; None when there is none.
        """
        row = (
            self.connection()
            .execute(
                "SELECT version FROM plans WHERE tls_id = ? "
                "AND (valid_from IS NULL OR valid_from <= ?) "
                "AND (valid_until IS NULL OR valid_until > ?) ORDER BY version DESC LIMIT 1",
                (tls_id, at, at),
            )
            .fetchone()
        )
        return None if row is None else row[0]

    def get(self, version: int) -> StoredPlan | None:
        """Return the plan version ``version``; None when there is none."""
        row = (
            self.connection()
            .execute(f"SELECT {_COLUMNS} FROM plans WHERE version = ?", (version,))
            .fetchone()
        )
        return None if row is None else StoredPlan(*row)

    def history(
        self, tls_id: str, *, before: int | None = None, limit: int = 50
    ) -> list[StoredPlan]:
        """Return the versions of ``tls_id``, newest first, older than ``before`` when given."""
        rows = (
            self.connection()
            .execute(
                f"SELECT {_COLUMNS} FROM plans WHERE tls_id = ? AND version < ? "
                "ORDER BY version DESC LIMIT ?",
                (tls_id, before if before is not None else 2**63 - 1, limit),
            )
            .fetchall()
        )
        return [StoredPlan(*row) for row in rows]

    def latest_versions(self) -> dict[str, int]:
        """Return every signal with a published plan, and its newest version."""
        return dict(
            self.connection()
            .execute("SELECT tls_id, max(version) FROM plans GROUP BY tls_id")
            .fetchall()
        )

    def latest_version(self) -> int:
        """Return the newest version of any signal (0 when nothing is published)."""
        return (
            self.connection().execute("SELECT coalesce(max(version), 0) FROM plans").fetchone()[0]
        )

    def batches(self) -> list[tuple[int, int]]:
        """Return every committed batch with its number of plans, oldest first."""
        return (
            self.connection().execute("SELECT batch, plans FROM batches ORDER BY batch").fetchall()
        )


def _rollback(con: sqlite3.Connection) -> None:
    """Roll back the open transaction, unless a failed statement ended it already.

    SQLITE_FULL can end it: the ROLLBACK's own error would then hide the real cause.
    """
    if con.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")


def _row_id(cursor: sqlite3.Cursor) -> int:
    """Return the row id the INSERT run on ``cursor`` gave its row."""
    if cursor.lastrowid is None:  # only for a statement that inserted nothing
        raise sqlite3.InterfaceError("the INSERT gave its row no id")
    return cursor.lastrowid
