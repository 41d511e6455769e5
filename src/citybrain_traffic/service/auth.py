"""Read and write tokens: loaded from a TOML file or the environment, compared in constant time."""

from __future__ import annotations

import hmac
import logging
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import InputError

READ_ENV = "CTRAFFIC_READ_TOKEN"
WRITE_ENV = "CTRAFFIC_WRITE_TOKEN"

#: Shortest token accepted, and fewest different characters in it.
#: Why: a guessable token protects nothing (docs/decisions/0005-service-request-limits.md).
MIN_TOKEN_CHARS = 16
MIN_DISTINCT_CHARS = 8
#: The rule as the errors and ``ctraffic serve --help`` say it.
TOKEN_RULE = (
    f"at least {MIN_TOKEN_CHARS} printable characters, at least {MIN_DISTINCT_CHARS} of them "
    "different, without surrounding spaces (e.g. `openssl rand -hex 16`)"
)

log = logging.getLogger("citybrain_traffic.service")


@dataclass(frozen=True)
class Tokens:
    """The accepted tokens per role. A write token also reads."""

    read: tuple[bytes, ...]
    write: tuple[bytes, ...]

    def allows(self, token: str, role: str) -> bool:
        """Whether ``token`` grants ``role`` (``"read"`` or ``"write"``).

        Every candidate is compared, each with ``hmac.compare_digest``, so the time taken does
        not tell how much of a token matched or which one did.
        """
        candidates = self.write if role == "write" else self.read + self.write
        given = token.encode()
        found = False
        for candidate in candidates:
            found |= hmac.compare_digest(given, candidate)
        return found


def load_tokens(
    path: str | Path | None = None, *, environ: Mapping[str, str] = os.environ
) -> Tokens:
    """Tokens from a TOML file, else from ``CTRAFFIC_READ_TOKEN`` / ``CTRAFFIC_WRITE_TOKEN``.

    The file holds lists of tokens (one per adapter or publisher, so each can be revoked alone)::

        read = ["adapter-J1-...", "adapter-J2-..."]
        write = ["optimizer-..."]

    A single string is accepted for either key. Each token follows ``TOKEN_RULE``, and there is
    at least one write token. The file must not be writable by group or others (whoever can
    write it can grant themselves a write token); readable by them, it is used but a warning is
    logged.

    Raises
    ------
    InputError
        For a missing, malformed or group/other-writable file, missing tokens, or a guessable
        token.
    """
    if path is not None:
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
            mode = path.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the tokens file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"tokens file {path} is not valid TOML: {exc}") from exc
        unknown = sorted(set(doc) - {"read", "write"})
        if unknown:
            raise InputError(
                f"tokens file {path}: unknown key(s) {unknown}; expected 'read' and 'write'"
            )
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InputError(
                f"tokens file {path} is writable by group or others, who could add a write token "
                f"of their own: chmod 600 {path}"
            )
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning("tokens file %s is readable by other users (chmod 600 it)", path)
        read, write = (
            _token_list(doc.get(key, []), f"{path} '{key}'") for key in ("read", "write")
        )
        source = str(path)
    else:
        read = _token_list(environ.get(READ_ENV, []), READ_ENV)
        write = _token_list(environ.get(WRITE_ENV, []), WRITE_ENV)
        source = f"the environment ({READ_ENV}, {WRITE_ENV})"
    if not write:
        raise InputError(
            f"no write token in {source}: give --tokens FILE (TOML: read = [...], write = [...]) "
            f"or set {WRITE_ENV} and {READ_ENV}"
        )
    return Tokens(read=tuple(t.encode() for t in read), write=tuple(t.encode() for t in write))


def _token_list(value, where: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError(f"{where}: expected a token or a list of tokens (strings)")
    values = [v for v in values if v]
    for k, token in enumerate(values):
        if (
            len(token) < MIN_TOKEN_CHARS
            or len(set(token)) < MIN_DISTINCT_CHARS
            or token != token.strip()
            or not token.isprintable()
        ):
            raise InputError(
                f"{where}: token #{k + 1} ({len(token)} characters, {len(set(token))} different) "
                f"is refused: a token needs {TOKEN_RULE}"
            )
    return values
