"""Error answers of the plan service: one JSON shape, the handlers, and their OpenAPI entries."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from .models import Problem
from .store import KeyReusedError, PlanStore

log = logging.getLogger("citybrain_traffic.service")

#: SQLite errors that say the database cannot take a write now, not that it is broken: 503.
_UNAVAILABLE = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

_DESCRIPTIONS = {
    400: "Malformed JSON or body",
    401: "No bearer token",
    403: "The token does not grant this access",
    404: "Unknown intersection, or no plan in force",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid request or unsafe plan, with the reasons",
    503: "Too many publishes at once, or the plan database cannot store now (full disk)",
}


def problem(
    status: int,
    detail: str,
    reasons: list[str] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Return an error answer as every one of the service's: ``{"detail": ..., "reasons": [...]}``.

    Parameters
    ----------
    status
        HTTP status code.
    detail
        What went wrong, in one line.
    reasons
        Every reason when there are several (default: none).
    headers
        Extra response headers (``WWW-Authenticate``, ``Retry-After``...).
    """
    return JSONResponse(
        {"detail": detail, "reasons": reasons or []}, status_code=status, headers=headers
    )


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI ``responses`` entries of the error statuses ``codes`` a route answers."""
    return {code: {"model": Problem, "description": _DESCRIPTIONS[code]} for code in codes}


def where(scope: Scope) -> str:
    """Return a request as the log names it: method, path and client address."""
    client = scope.get("client")
    return f"{scope['method']} {scope['path']} from {client[0] if client else '?'}"


def install_problem_handlers(app: FastAPI, store: PlanStore) -> None:
    """Make every error ``app`` answers a ``problem``, including its 500s and storage failures.

    Parameters
    ----------
    app
        The service's app.
    store
        Its plan store, named in the log when the database fails.
    """

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(KeyReusedError)
    async def key_reused(request: Request, exc: KeyReusedError) -> JSONResponse:
        return problem(422, str(exc))

    @app.exception_handler(sqlite3.Error)
    async def storage_failed(request: Request, exc: sqlite3.Error) -> JSONResponse:
        # The primary code of an extended one.
        code = getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_ERROR) & 0xFF
        status = 503 if code in _UNAVAILABLE else 500
        log.error("%d %s: plan database %s: %s", status, where(request.scope), store.path, exc)
        what = "cannot store this now" if status == 503 else "failed"
        return problem(
            status,
            f"the plan database {what}: {exc}",
            [f"{getattr(exc, 'sqlite_errorname', type(exc).__name__)}: {exc}"],
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette still raises the exception after this answer: the server logs its traceback.
        return problem(
            500,
            f"internal error ({type(exc).__name__}); the server log has the details",
            [f"{type(exc).__name__}: {exc}"[:500]],
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        for error in errors:
            if error["type"] == "json_invalid":
                reason = error.get("ctx", {}).get("error", "not JSON")
                return problem(400, f"malformed JSON at character {error['loc'][-1]}: {reason}")
            if error["type"] == "missing" and tuple(error["loc"]) == ("body",):
                return problem(400, 'empty body: expected a plan or {"plans": [...]} as JSON')
        if isinstance(exc.body, (bytes, bytearray)):
            return problem(415, "the body is not JSON: send it with Content-Type: application/json")
        reasons = [f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in errors]
        return problem(422, f"invalid request: {reasons[0]}", reasons)
