"""The newest committed version, kept beside the plan database so that lost versions are noticed."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import tempfile
from pathlib import Path

from ..errors import InputError

log = logging.getLogger("citybrain_traffic.service")


def assigned_version(con: sqlite3.Connection) -> int:
    """Return the highest version number ever given out (0: none).

    In the append-only ``plans`` table that is the newest version, unless versions were lost.
    """
    row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'plans'").fetchone()
    return 0 if row is None else int(row[0])


class VersionMark:
    """The file ``<db>-latest`` beside the database ``db``: the newest version committed to it.

    After each publish the newest version is written here too, so versions lost with a damaged
    or deleted write-ahead log are noticed on opening, and their numbers are never given to
    other plans (an adapter holding one as its ETag would take the new plan for the one it has).
    """

    def __init__(self, db: Path):
        self.db = db
        self.path = Path(f"{db}-latest")

    def check(self, con: sqlite3.Connection, *, accept_lost: bool) -> None:
        """Refuse, or with ``accept_lost`` skip, versions the mark has and the database lacks.

        Skipped versions are never numbered again: new versions start after the marked one.

        Raises
        ------
        InputError
            When the mark cannot be read, or names versions the database lacks (without
            ``accept_lost``).
        """
        try:
            marked = int(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise InputError(
                f"cannot read {self.path}, the newest version committed to {self.db}: {exc}"
            ) from exc
        assigned = assigned_version(con)
        if marked <= assigned:
            return
        lost = f"versions {assigned + 1}-{marked}" if marked > assigned + 1 else f"version {marked}"
        if not accept_lost:
            raise InputError(
                f"{self.db} lacks {lost}, committed to it before (its write-ahead log "
                f"{self.db}-wal lost or damaged, or the file replaced by an older one): restore it "
                "from a backup, or serve what is left with --accept-lost-versions"
            )
        log.warning(
            "%s lacks %s (lost with its write-ahead log); new versions start at %d",
            self.db,
            lost,
            marked + 1,
        )
        # AUTOINCREMENT numbers from this row: the lost numbers are never handed out again.
        if (
            con.execute(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = 'plans'", (marked,)
            ).rowcount
            == 0
        ):
            con.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('plans', ?)", (marked,))

    def write(self, version: int) -> None:
        """Record ``version`` as committed (atomically: a new file renamed over the old one).

        Written after the commit, so the mark never names a version that is not committed; two
        processes committing at once may leave the older of their versions, which only makes
        the check later less strict. A mark that cannot be written is logged, not raised: the
        batch is committed and its publisher must be told so.
        """
        try:
            fd, temporary = tempfile.mkstemp(dir=self.db.parent, prefix=f".{self.path.name}-")
        except OSError as exc:
            log.warning("cannot record version %d in %s: %s", version, self.path, exc)
            return
        try:
            with os.fdopen(fd, "w") as f:
                f.write(f"{version}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot record version %d in %s: %s", version, self.path, exc)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
