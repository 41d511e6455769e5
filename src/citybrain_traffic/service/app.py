"""The plan service's HTTP API: a FastAPI app over a ``PlanStore`` and the networks it serves."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import sqlite3
from datetime import datetime
from typing import Annotated, Any, Literal, Sequence

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Discriminator, Tag
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from ..errors import InputError
from ..network import Network
from ..plans import violations, write_tl_logics, write_utdf
from .auth import Tokens
from .models import (
    Health,
    History,
    IntersectionOut,
    PlanBatch,
    PlanIn,
    PlanOut,
    Problem,
    PublishResult,
    plan_out,
)
from .store import KeyReusedError, PlanStore, time_key

log = logging.getLogger("citybrain_traffic.service")

#: Default limit of a request body (bytes): about 4,000 plans with provenance.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
#: Default number of requests with a body (publishes) one server process reads and handles at
#: once; more wait for a 503. It bounds their memory: a body parsed into plans takes several
#: times its size.
DEFAULT_MAX_BODY_REQUESTS = 4
#: Longest long poll (s).
MAX_WAIT_S = 300.0
#: How often each server process looks for versions published by other processes (s).
WATCH_INTERVAL_S = 0.1
#: A long poll also re-checks this often, for plans whose validity starts while it waits (s).
RECHECK_S = 1.0

_MEDIA = {"json": "application/json", "sumo": "application/xml", "utdf": "text/csv"}
_ETAG = re.compile(r'(?:W/)?"([^"]*)"')
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})
#: SQLite errors that say the database cannot take a write now, not that it is broken: 503.
_UNAVAILABLE = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

PlanBody = Annotated[
    Annotated[PlanIn, Tag("plan")] | Annotated[PlanBatch, Tag("batch")],
    Discriminator(
        lambda value: "batch" if isinstance(value, dict) and "plans" in value else "plan"
    ),
]
_bearer = HTTPBearer(
    auto_error=False, description="A read token (GET) or write token (POST, and GET)."
)
IntersectionId = Annotated[
    str, Path(min_length=1, max_length=200, description="Signal (tlLogic) id.")
]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed JSON or body",
        401: "No bearer token",
        403: "The token does not grant this access",
        404: "Unknown intersection, or no plan in force",
        413: "Body too large",
        415: "Body is not JSON",
        422: "Invalid request or unsafe plan, with the reasons",
        503: "Too many publishes at once, or the plan database cannot store now (full disk)",
    }
    return {code: {"model": Problem, "description": text[code]} for code in codes}


def create_app(
    store: PlanStore,
    networks: Sequence[Network],
    tokens: Tokens,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_body_requests: int = DEFAULT_MAX_BODY_REQUESTS,
) -> FastAPI:
    """The plan service for the signals of ``networks``, keeping its plans in ``store``.

    Plans are validated against the network of their signal before they are stored; the
    networks must not share a signal id (an id names one intersection in the URLs). A request
    with a body needs a write token before any of its body is read; bodies are limited to
    ``max_body_bytes``, and to ``max_body_requests`` read and handled at once. Every error is
    JSON ``{"detail": ..., "reasons": [...]}``.

    Raises
    ------
    InputError
        When two networks have a signal of the same id.
    """
    served = {network.path.name: network for network in networks}
    signal_network: dict[str, str] = {}
    for name, network in served.items():
        for tls_id in network.intersections:
            if tls_id in signal_network:
                raise InputError(
                    f"signal {tls_id!r} is in both {signal_network[tls_id]} and {name}: serve them from separate servers"
                )
            signal_network[tls_id] = name
    changes = _Changes(store)
    renders = _Renderer(store)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        watcher = asyncio.create_task(changes.watch())
        try:
            yield
        finally:
            watcher.cancel()

    app = FastAPI(
        title="citybrain-traffic plan service",
        version="1",
        summary="Validated signal timing plans for field controller adapters.",
        description=(
            "Every published plan version is kept; an adapter pulls the plan in force for its intersection "
            "(`ETag`/`If-None-Match`, and `?wait=` to long-poll for a new version). Reading needs a read "
            "token, publishing a write token: `Authorization: Bearer TOKEN`."
        ),
        lifespan=lifespan,
    )

    def guard(role: str):
        # The gate has checked the write token of a request with a body already; this check
        # covers every route and puts the scheme in the OpenAPI document.
        async def check(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> None:
            refusal = _authorize(
                tokens, credentials and credentials.credentials, role, _where(request.scope)
            )
            if refusal is not None:
                raise HTTPException(*refusal)

        return check

    reader, writer = Depends(guard("read")), Depends(guard("write"))

    def known(tls_id: str) -> str:
        if tls_id not in signal_network:
            sample = ", ".join(list(signal_network)[:10])
            raise HTTPException(
                404, f"unknown intersection {tls_id!r}: the served signals are {sample}"
            )
        return signal_network[tls_id]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(KeyReusedError)
    async def key_reused(request: Request, exc: KeyReusedError) -> JSONResponse:
        return problem(422, str(exc))

    @app.exception_handler(sqlite3.Error)
    async def storage_failed(request: Request, exc: sqlite3.Error) -> JSONResponse:
        code = (
            getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_ERROR) & 0xFF
        )  # the primary of an extended code
        status = 503 if code in _UNAVAILABLE else 500
        log.error("%d %s: plan database %s: %s", status, _where(request.scope), store.path, exc)
        what = "cannot store this now" if status == 503 else "failed"
        return problem(
            status,
            f"the plan database {what}: {exc}",
            [f"{getattr(exc, 'sqlite_errorname', type(exc).__name__)}: {exc}"],
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette still raises the exception after this answer, so the server logs its traceback.
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

    @app.get("/v1/health", response_model=Health, tags=["service"])
    async def health() -> dict:
        """Liveness: the newest version and the served networks (no token needed)."""
        return {
            "status": "ok",
            "latest_version": store.latest_version(),
            "networks": {name: len(n.intersections) for name, n in served.items()},
        }

    @app.get(
        "/v1/intersections",
        response_model=list[IntersectionOut],
        dependencies=[reader],
        tags=["plans"],
        responses=_problems(401, 403),
    )
    async def intersections() -> list[dict]:
        """Every served signal with the version in force now, its validity, and its newest version."""
        now, latest = time_key(datetime.now()), store.latest_versions()
        rows = []
        for tls_id, network in signal_network.items():
            version = store.in_force(tls_id, now)
            stored = store.get(version) if version is not None else None
            rows.append(
                {
                    "id": tls_id,
                    "network": network,
                    "version": version,
                    "latest_version": latest.get(tls_id),
                    "valid_from": stored and stored.valid_from,
                    "valid_until": stored and stored.valid_until,
                    "published_at": stored and stored.published_at,
                }
            )
        return rows

    @app.get(
        "/v1/intersections/{id}/plan",
        dependencies=[reader],
        tags=["plans"],
        response_model=PlanOut,
        responses={
            200: {
                "description": "The plan in force: JSON, SUMO tlLogic XML, or UTDF-style CSV (?format=)",
                "content": {
                    "application/xml": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
                "headers": {
                    "ETag": {
                        "description": "The version (and format)",
                        "schema": {"type": "string"},
                    }
                },
            },
            304: {
                "description": "Not modified: the plan in force still has the If-None-Match ETag"
            },
            **_problems(401, 403, 404, 422),
        },
    )
    async def plan(
        id: IntersectionId,
        at: Annotated[
            datetime | None, Query(description="In force at this time (ISO 8601) instead of now.")
        ] = None,
        format: Annotated[
            Literal["json", "sumo", "utdf"], Query(description="Representation.")
        ] = "json",
        wait: Annotated[
            float,
            Query(
                ge=0,
                le=MAX_WAIT_S,
                description="Long poll: with If-None-Match, hold the "
                "request up to this many s until the plan in force changes.",
            ),
        ] = 0.0,
        if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
    ):
        """The plan in force for the intersection, with an ETag per version."""
        known(id)
        suffix = "" if format == "json" else f"-{format}"

        def current() -> tuple[int, str]:
            version = store.in_force(id, _at_key(at))
            if version is None:
                raise HTTPException(
                    404,
                    f"no plan for {id!r} is in force at {at.isoformat() if at else 'this time'}",
                )
            return version, f'"{version}{suffix}"'

        version, etag = current()
        if wait > 0 and _matches(if_none_match, etag):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while _matches(if_none_match, etag) and (remaining := deadline - loop.time()) > 0:
                await changes.wait(min(remaining, RECHECK_S))
                version, etag = current()
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if _matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        return Response(renders.body(version, format), media_type=_MEDIA[format], headers=headers)

    @app.get(
        "/v1/intersections/{id}/plans",
        response_model=History,
        dependencies=[reader],
        tags=["plans"],
        responses=_problems(401, 403, 404, 422),
    )
    async def plans(
        id: IntersectionId,
        limit: Annotated[int, Query(ge=1, le=500, description="Versions per page.")] = 50,
        before: Annotated[
            int | None, Query(ge=1, le=2**62, description="Only versions older than this.")
        ] = None,
    ) -> dict:
        """Every version published for the intersection, newest first, a page at a time."""
        known(id)
        page = store.history(id, before=before, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return {
            "id": id,
            "plans": [plan_out(p) for p in page],
            "next_before": page[-1].version if more else None,
        }

    @app.post(
        "/v1/plans",
        status_code=201,
        response_model=PublishResult,
        dependencies=[writer],
        tags=["plans"],
        responses=_problems(400, 401, 403, 413, 415, 422, 503),
    )
    async def publish(
        request: Request,
        response: Response,
        body: Annotated[PlanBody, Body()],
        idempotency_key: Annotated[
            str | None,
            Header(
                min_length=1,
                max_length=200,
                pattern=r"^[!-~]+$",
                description="The publisher's id of this batch (e.g. a UUID). Sent again with the same body, the first "
                "answer is returned and nothing is stored again (header Idempotent-Replayed); with another body, 422.",
            ),
        ] = None,
    ):
        """Publish one plan or a batch, atomically; every plan is validated against its network first."""
        items = body.plans if isinstance(body, PlanBatch) else [body]
        checked, reasons = [], []
        for item in items:
            network = item.network or signal_network.get(item.tls_id)
            if network not in served:
                reasons.append(
                    f"{item.tls_id}: network {item.network!r} is not served (served: {', '.join(served)})"
                    if item.network
                    else f"{item.tls_id}: no such signal in the served network(s) {', '.join(served)}"
                )
                continue
            intersection = served[network].intersections.get(item.tls_id)
            if intersection is None:
                reasons.append(f"{item.tls_id}: no such signal in {network}")
                continue
            plan = item.to_plan()
            reasons += violations(plan, intersection.phases)  # validity times and their order too
            checked.append((plan, network))
        if reasons:
            log.info("refused a batch of %d plan(s): %d problem(s)", len(items), len(reasons))
            return problem(
                422, f"unsafe or invalid plan(s), nothing published: {reasons[0]}", reasons
            )
        # The raw bytes identify the request: a publisher retrying sends exactly the same ones.
        digest = (
            hashlib.sha256(await request.body()).hexdigest()
            if idempotency_key is not None
            else None
        )
        done = await run_in_threadpool(store.publish, checked, key=idempotency_key, digest=digest)
        if done.replayed:
            response.headers["Idempotent-Replayed"] = "true"
            log.info("batch %d answered again for its Idempotency-Key", done.batch)
        else:
            changes.notify(done.versions[-1][1])
            log.info(
                "published batch %d: %d plan(s), versions %d-%d",
                done.batch,
                len(checked),
                done.versions[0][1],
                done.versions[-1][1],
            )
        return {
            "batch": done.batch,
            "published_at": done.published_at,
            "plans": [{"tls_id": tls_id, "version": version} for tls_id, version in done.versions],
        }

    readers_of_bodies = [
        route
        for route in app.routes
        if isinstance(route, APIRoute) and route.body_field is not None
    ]
    app.add_middleware(
        _Gate,
        routes=readers_of_bodies,
        tokens=tokens,
        limit=max_body_bytes,
        max_requests=max_body_requests,
    )
    return app


def problem(
    status: int,
    detail: str,
    reasons: list[str] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error answer as every one of the service's: ``{"detail": ..., "reasons": [...]}``."""
    return JSONResponse(
        {"detail": detail, "reasons": reasons or []}, status_code=status, headers=headers
    )


def _authorize(
    tokens: Tokens, token: str | None, role: str, where: str
) -> tuple[int, str, dict[str, str]] | None:
    """None when ``token`` grants ``role``; else the refusal (status, detail, headers), logged
    without the token.
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


def _bearer_token(authorization: bytes | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header value, as FastAPI's HTTPBearer reads it."""
    scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _where(scope) -> str:
    client = scope.get("client")
    return f"{scope['method']} {scope['path']} from {client[0] if client else '?'}"


def _at_key(at: datetime | None) -> str:
    try:
        return time_key(at or datetime.now())
    except ValueError as exc:
        raise HTTPException(422, f"at: {exc}") from None


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of If-None-Match against the current ETag."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return etag.strip('"') in _ETAG.findall(if_none_match)


class _Changes:
    """Wakes long polls when a new version is published, by this process or another one."""

    def __init__(self, store: PlanStore):
        self.store = store
        self.version = store.latest_version()
        self.event = asyncio.Event()

    def notify(self, version: int) -> None:
        if version != self.version:
            self.version = version
            self.event.set()
            self.event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            self.notify(self.store.latest_version())


class _Renderer:
    """Response bodies per (version, format); versions never change, so they are cached."""

    LIMIT = 4096

    def __init__(self, store: PlanStore):
        self.store = store
        self.cache: dict[tuple[int, str], bytes] = {}

    def body(self, version: int, fmt: str) -> bytes:
        key = (version, fmt)
        body = self.cache.get(key)
        if body is None:
            stored = self.store.get(version)
            if fmt == "json":
                body = json.dumps(plan_out(stored)).encode()
            else:
                sink = _TextSink()
                (write_tl_logics if fmt == "sumo" else write_utdf)(sink, [stored.plan])
                body = sink.text.encode()
            if len(self.cache) >= self.LIMIT:
                self.cache.clear()
            self.cache[key] = body
        return body


class _TextSink:
    """Stands in for the Path the exporters write to (they call only ``write_text``)."""

    text = ""

    def write_text(self, text: str) -> None:
        self.text = text


class _Gate:
    """The first stop of every request (ASGI): a request for one of ``routes``, those that read a
    body, gets in only with a write token, checked before any of its body is read, so a client
    without one costs a header parse and no memory. The body is then read whole, up to ``limit``
    bytes (413 beyond), by at most ``max_requests`` requests at once (503 beyond), and replayed
    to the app. Other requests pass: their bodies are never read.

    A refused body stays unread, so the answer closes the connection: the client's unsent bytes
    are not waited for.
    """

    def __init__(
        self, app, *, routes: Sequence[BaseRoute], tokens: Tokens, limit: int, max_requests: int
    ):
        self.app = app
        self.routes = routes
        self.tokens = tokens
        self.limit = limit
        self.max_requests = max_requests
        self.busy = 0  # requests reading or handling a body now (one event loop: no lock needed)

    async def __call__(self, scope, receive, send):
        # Methods without a body first: they are the adapters' polls, the bulk of the traffic.
        if (
            scope["type"] != "http"
            or scope["method"] in _BODILESS
            or not any(route.matches(scope)[0] is Match.FULL for route in self.routes)
        ):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        refusal = _authorize(
            self.tokens, _bearer_token(headers.get(b"authorization")), "write", _where(scope)
        )
        declared = headers.get(b"content-length")
        if (
            refusal is None
            and declared is not None
            and (not declared.isdigit() or int(declared) > self.limit)
        ):
            refusal = self._too_large()
        if refusal is None and self.busy >= self.max_requests:
            log.warning("503 %s: %d publishes are being handled", _where(scope), self.busy)
            refusal = (
                503,
                f"the server is handling {self.busy} publishes already: retry in a few seconds",
                {"Retry-After": "2"},
            )
        if refusal is not None:
            return await self._refuse(refusal, scope, receive, send)
        self.busy += 1
        try:
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.limit:
                    return await self._refuse(self._too_large(), scope, receive, send)
                if not message.get("more_body"):
                    break
            replayed = False

            async def replay():
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

            await self.app(scope, replay, send)
        finally:
            self.busy -= 1

    def _too_large(self) -> tuple[int, str, dict[str, str]]:
        return 413, f"request body larger than {self.limit:,} bytes", {}

    @staticmethod
    async def _refuse(refusal: tuple[int, str, dict[str, str]], scope, receive, send) -> None:
        status, detail, headers = refusal
        await problem(status, detail, headers={**headers, "Connection": "close"})(
            scope, receive, send
        )
