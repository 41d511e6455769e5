"""Schema of the plan database: its migrations in order, and the integrity check made on opening."""

from __future__ import annotations

import sqlite3

#: Schema changes in order; a database at ``user_version`` k gets those from k on.
MIGRATIONS = (
    """
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
CREATE TRIGGER plans_no_update BEFORE UPDATE ON plans
    BEGIN SELECT RAISE(ABORT, 'plans are append-only'); END;
CREATE TRIGGER plans_no_delete BEFORE DELETE ON plans
    BEGIN SELECT RAISE(ABORT, 'plans are append-only'); END;
CREATE TRIGGER batches_no_update BEFORE UPDATE ON batches
    BEGIN SELECT RAISE(ABORT, 'batches are append-only'); END;
CREATE TRIGGER batches_no_delete BEFORE DELETE ON batches
    BEGIN SELECT RAISE(ABORT, 'batches are append-only'); END
""",
    # The publisher's id of a batch (its Idempotency-Key) and a digest of the request that made
    # it: a publish retried after a lost answer finds its batch instead of storing a second one.
    """
ALTER TABLE batches ADD COLUMN idempotency_key TEXT;
ALTER TABLE batches ADD COLUMN request_sha256 TEXT;
CREATE UNIQUE INDEX batches_by_key ON batches (idempotency_key)
""",
)
#: Schema version kept in SQLite's ``user_version``.
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(con: sqlite3.Connection) -> int:
    """Return the schema version of the database on ``con`` (0: an empty database)."""
    version: int = con.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(con: sqlite3.Connection, start: int, target: int = SCHEMA_VERSION) -> None:
    """Apply the migrations from version ``start`` up to ``target``, then record ``target``.

    The caller holds the transaction (the store: ``BEGIN IMMEDIATE``), so a database is
    migrated whole or not at all.
    """
    for script in MIGRATIONS[start:target]:
        for statement in script.strip().split(";\n"):
            con.execute(statement)
    con.execute(f"PRAGMA user_version={target}")


def damage(con: sqlite3.Connection) -> str | None:
    """Return what ``PRAGMA quick_check`` finds wrong in the database, in one line; None if sound.

    The first problem stands for all (", and more" when there are others); SQLite's lines that
    only say which database they are about are left out when anything else is said.
    """
    found = [row[0] for row in con.execute("PRAGMA quick_check(2)")]
    if found == ["ok"]:
        return None
    lines = [line for text in found for line in text.splitlines()]
    problems = [line for line in lines if not line.startswith("*** in database")] or lines
    more = ", and more" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"
