"""The plan service's HTTP API: a FastAPI app over a ``PlanStore`` and the networks it serves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from datetime import datetime
from typing import Annotated, Any, Literal, Sequence

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Discriminator, Tag
from starlette.concurrency import run_in_threadpool

from ..errors import InputError
from ..network import Network
from ..plans import violations, write_tl_logics, write_utdf
from .auth import Tokens
from .models import (
    Health, History, IntersectionOut, PlanBatch, PlanIn, PlanOut, Problem, PublishResult, plan_out,
)
from .store import PlanStore, time_key

log = logging.getLogger("citybrain_traffic.service")

#: Default limit of a request body (bytes): about 4,000 plans with provenance.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
#: Longest long poll (s).
MAX_WAIT_S = 300.0
#: How often each server process looks for versions published by other processes (s).
WATCH_INTERVAL_S = 0.1
#: A long poll also re-checks this often, for plans whose validity starts while it waits (s).
RECHECK_S = 1.0

_MEDIA = {"json": "application/json", "sumo": "application/xml", "utdf": "text/csv"}
_ETAG = re.compile(r'(?:W/)?"([^"]*)"')

PlanBody = Annotated[
    Annotated[PlanIn, Tag("plan")] | Annotated[PlanBatch, Tag("batch")],
    Discriminator(lambda value: "batch" if isinstance(value, dict) and "plans" in value else "plan"),
]
_bearer = HTTPBearer(auto_error=False, description="A read token (GET) or write token (POST, and GET).")
IntersectionId = Annotated[str, Path(min_length=1, max_length=200, description="Signal (tlLogic) id.")]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed JSON or body", 401: "No bearer token", 403: "The token does not grant this access",
        404: "Unknown intersection, or no plan in force", 413: "Body too large",
        415: "Body is not JSON", 422: "Invalid request or unsafe plan, with the reasons",
    }
    return {code: {"model": Problem, "description": text[code]} for code in codes}


def create_app(
    store: PlanStore,
    networks: Sequence[Network],
    tokens: Tokens,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The plan service for the signals of ``networks``, keeping its plans in ``store``.

    Plans are validated against the network of their signal before they are stored; the
    networks must not share a signal id (an id names one intersection in the URLs).

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
    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    def guard(role: str):
        async def check(
            request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
        ) -> None:
            where = f"{request.method} {request.url.path} from {request.client.host if request.client else '?'}"
            if credentials is None:
                log.warning("401 %s: no bearer token", where)
                raise HTTPException(
                    401, "missing token: send 'Authorization: Bearer TOKEN'", headers={"WWW-Authenticate": "Bearer"}
                )
            if not tokens.allows(credentials.credentials, role):
                log.warning("403 %s: the token is not a %s token", where, role)
                raise HTTPException(403, f"the token does not grant {role} access")

        return check

    reader, writer = Depends(guard("read")), Depends(guard("write"))

    def known(tls_id: str) -> str:
        if tls_id not in signal_network:
            sample = ", ".join(list(signal_network)[:10])
            raise HTTPException(404, f"unknown intersection {tls_id!r}: the served signals are {sample}")
        return signal_network[tls_id]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        for error in errors:
            if error["type"] == "json_invalid":
                reason = error.get("ctx", {}).get("error", "not JSON")
                return _problem(400, f"malformed JSON at character {error['loc'][-1]}: {reason}")
            if error["type"] == "missing" and tuple(error["loc"]) == ("body",):
                return _problem(400, "empty body: expected a plan or {\"plans\": [...]} as JSON")
        if isinstance(exc.body, (bytes, bytearray)):
            return _problem(415, "the body is not JSON: send it with Content-Type: application/json")
        reasons = [f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in errors]
        return _problem(422, f"invalid request: {reasons[0]}", reasons)

    @app.get("/v1/health", response_model=Health, tags=["service"])
    async def health() -> dict:
        """Liveness: the newest version and the served networks (no token needed)."""
        return {
            "status": "ok", "latest_version": store.latest_version(),
            "networks": {name: len(n.intersections) for name, n in served.items()},
        }

    @app.get(
        "/v1/intersections", response_model=list[IntersectionOut], dependencies=[reader], tags=["plans"],
        responses=_problems(401, 403),
    )
    async def intersections() -> list[dict]:
        """Every served signal with the version in force now, its validity, and its newest version."""
        now, latest = time_key(datetime.now()), store.latest_versions()
        rows = []
        for tls_id, network in signal_network.items():
            version = store.in_force(tls_id, now)
            stored = store.get(version) if version is not None else None
            rows.append({
                "id": tls_id, "network": network, "version": version, "latest_version": latest.get(tls_id),
                "valid_from": stored and stored.valid_from, "valid_until": stored and stored.valid_until,
                "published_at": stored and stored.published_at,
            })
        return rows

    @app.get(
        "/v1/intersections/{id}/plan",
        dependencies=[reader],
        tags=["plans"],
        response_model=PlanOut,
        responses={
            200: {
                "description": "The plan in force: JSON, SUMO tlLogic XML, or UTDF-style CSV (?format=)",
                "content": {"application/xml": {"schema": {"type": "string"}}, "text/csv": {"schema": {"type": "string"}}},
                "headers": {"ETag": {"description": "The version (and format)", "schema": {"type": "string"}}},
            },
            304: {"description": "Not modified: the plan in force still has the If-None-Match ETag"},
            **_problems(401, 403, 404, 422),
        },
    )
    async def plan(
        id: IntersectionId,
        at: Annotated[datetime | None, Query(description="In force at this time (ISO 8601) instead of now.")] = None,
        format: Annotated[Literal["json", "sumo", "utdf"], Query(description="Representation.")] = "json",
        wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="Long poll: with If-None-Match, hold the "
                                     "request up to this many s until the plan in force changes.")] = 0.0,
        if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
    ):
        """The plan in force for the intersection, with an ETag per version."""
        known(id)
        suffix = "" if format == "json" else f"-{format}"

        def current() -> tuple[int, str]:
            version = store.in_force(id, _at_key(at))
            if version is None:
                raise HTTPException(404, f"no plan for {id!r} is in force at {at.isoformat() if at else 'this time'}")
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
        "/v1/intersections/{id}/plans", response_model=History, dependencies=[reader], tags=["plans"],
        responses=_problems(401, 403, 404, 422),
    )
    async def plans(
        id: IntersectionId,
        limit: Annotated[int, Query(ge=1, le=500, description="Versions per page.")] = 50,
        before: Annotated[int | None, Query(ge=1, le=2**62, description="Only versions older than this.")] = None,
    ) -> dict:
        """Every version published for the intersection, newest first, a page at a time."""
        known(id)
        page = store.history(id, before=before, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return {"id": id, "plans": [plan_out(p) for p in page], "next_before": page[-1].version if more else None}

    @app.post(
        "/v1/plans", status_code=201, response_model=PublishResult, dependencies=[writer], tags=["plans"],
        responses=_problems(400, 401, 403, 413, 415, 422),
    )
    async def publish(body: Annotated[PlanBody, Body()]):
        """Publish one plan or a batch, atomically; every plan is validated against its network first."""
        items = body.plans if isinstance(body, PlanBatch) else [body]
        checked, reasons = [], []
        for item in items:
            network = item.network or signal_network.get(item.tls_id)
            if network not in served:
                reasons.append(
                    f"{item.tls_id}: network {item.network!r} is not served (served: {', '.join(served)})"
                    if item.network else f"{item.tls_id}: no such signal in the served network(s) {', '.join(served)}"
                )
                continue
            intersection = served[network].intersections.get(item.tls_id)
            if intersection is None:
                reasons.append(f"{item.tls_id}: no such signal in {network}")
                continue
            plan = item.to_plan()
            reasons += violations(plan, intersection.phases)
            try:
                start, end = time_key(plan.valid_from), time_key(plan.valid_until)
            except ValueError as exc:
                reasons.append(f"{item.tls_id}: {exc}")
                continue
            if start is not None and end is not None and not start < end:
                reasons.append(f"{item.tls_id}: valid_until {plan.valid_until} is not after valid_from {plan.valid_from}")
            checked.append((plan, network))
        if reasons:
            log.info("refused a batch of %d plan(s): %d problem(s)", len(items), len(reasons))
            return _problem(422, f"unsafe or invalid plan(s), nothing published: {reasons[0]}", reasons)
        done = await run_in_threadpool(store.publish, checked)
        changes.notify(done.versions[-1][1])
        log.info("published batch %d: %d plan(s), versions %d-%d", done.batch, len(checked),
                 done.versions[0][1], done.versions[-1][1])
        return {
            "batch": done.batch, "published_at": done.published_at,
            "plans": [{"tls_id": tls_id, "version": version} for tls_id, version in done.versions],
        }

    return app


def _problem(status: int, detail: str, reasons: list[str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "reasons": reasons or []}, status_code=status)


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


class _BodyLimit:
    """Refuses a request body over ``limit`` bytes with 413, before the app reads any of it."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await self._refuse(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        return await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.limit:,} bytes", "reasons": []}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
