"""Access to the plan service: the token check of every route, and the gate in front of bodies."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import Tokens
from .problems import problem, where

log = logging.getLogger("citybrain_traffic.service")

#: A refused request: HTTP status, detail, and the headers of the answer.
Refusal = tuple[int, str, dict[str, str]]

_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(
    auto_error=False, description="A read token (GET) or write token (POST, and GET)."
)


def authorize(tokens: Tokens, token: str | None, role: str, where: str) -> Refusal | None:
    """Return None when ``token`` grants ``role``, else the refusal, logged without the token.

    Parameters
    ----------
    tokens
        The accepted tokens.
    token
        The request's bearer token (None: it sent none).
    role
        ``"read"`` or ``"write"``.
    where
        The request as the log names it (``problems.where``).
    """
    if not token:
        log.warning("401 %s: no bearer token", where)
        return (
            401,
            "missing token: send 'Authorization: Bearer TOKEN'",
            {"WWW-Authenticate": "Bearer"},
        )
    if not tokens.allows(token, role):
        log.warning("403 %s: the token is not a %s token", where, role)
        return 403, f"the token does not grant {role} access", {}
    return None


def bearer_token(authorization: bytes | None) -> str | None:
    """Return the token of an ``Authorization: Bearer TOKEN`` value, as FastAPI's HTTPBearer does.

    None when the header is missing, of another scheme, or without a token.
    """
    scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def require(tokens: Tokens, role: str) -> Callable[..., Awaitable[None]]:
    """Return the dependency that refuses a request whose bearer token does not grant ``role``.

    ``BodyGate`` has checked the write token of a request with a body already; this check
    covers every route and puts the bearer scheme in the OpenAPI document.
    """

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        token = credentials.credentials if credentials else None
        refusal = authorize(tokens, token, role, where(request.scope))
        if refusal is not None:
            raise HTTPException(*refusal)

    return check


class BodyGate:
    """Admit a request with a body only with a write token, bounded in size and in number (ASGI).

    The first stop of every request. A request for one of ``routes``, those that read a body,
    gets in only with a write token, checked before any of its body is read, so a client without
    one costs a header parse and no memory. The body is then read whole, up to ``limit`` bytes
    (413 beyond), by at most ``max_requests`` requests at once (503 beyond), and replayed to the
    app. Other requests pass: their bodies are never read.

    A refused body stays unread, so the answer closes the connection: the client's unsent bytes
    are not waited for.

    Parameters
    ----------
    app
        The app behind the gate.
    routes
        The routes that read a body.
    tokens
        The accepted tokens.
    limit
        Largest body admitted (bytes).
    max_requests
        Most requests reading or handling a body at once.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        tokens: Tokens,
        limit: int,
        max_requests: int,
    ):
        self.app = app
        self.routes = routes
        self.tokens = tokens
        self.limit = limit
        self.max_requests = max_requests
        self.busy = 0  # requests reading or handling a body now (one event loop: no lock needed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request on to the app, or answer its refusal."""
        # Methods without a body first: they are the adapters' polls, the bulk of the traffic.
        if (
            scope["type"] != "http"
            or scope["method"] in _BODILESS
            or not any(route.matches(scope)[0] is Match.FULL for route in self.routes)
        ):
            return await self.app(scope, receive, send)
        refusal = self._refusal(scope)
        if refusal is not None:
            return await self._refuse(refusal, scope, receive, send)
        self.busy += 1
        try:
            body = await self._read_body(scope, receive, send)
            if body is None:
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
        finally:
            self.busy -= 1

    def _refusal(self, scope: Scope) -> Refusal | None:
        """Return why a request with a body is refused before any of it is read, if it is."""
        headers = dict(scope["headers"])
        refusal = authorize(
            self.tokens, bearer_token(headers.get(b"authorization")), "write", where(scope)
        )
        declared = headers.get(b"content-length")
        if (
            refusal is None
            and declared is not None
            and (not declared.isdigit() or int(declared) > self.limit)
        ):
            refusal = self._too_large()
        if refusal is None and self.busy >= self.max_requests:
            log.warning("503 %s: %d publishes are being handled", where(scope), self.busy)
            refusal = (
                503,
                f"the server is handling {self.busy} publishes already: retry in a few seconds",
                {"Retry-After": "2"},
            )
        return refusal

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """Return the whole body; None when the client left or the body was too large (answered)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(self._too_large(), scope, receive, send)
                return None
            if not message.get("more_body"):
                return b"".join(chunks)

    def _too_large(self) -> Refusal:
        return 413, f"request body larger than {self.limit:,} bytes", {}

    @staticmethod
    async def _refuse(refusal: Refusal, scope: Scope, receive: Receive, send: Send) -> None:
        status, detail, headers = refusal
        await problem(status, detail, headers={**headers, "Connection": "close"})(
            scope, receive, send
        )
