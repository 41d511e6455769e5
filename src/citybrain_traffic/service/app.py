"""The plan service's HTTP API: a FastAPI app over a ``PlanStore`` and the networks it serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from ..network import Network
from .auth import Tokens
from .catalog import Catalog
from .changes import Changes
from .gate import BodyGate, require
from .models import Health
from .problems import install_problem_handlers, problem
from .publish_route import add_publish_route
from .read_routes import add_read_routes
from .store import PlanStore

#: Imported from here by the server.
__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_BODY_REQUESTS", "create_app", "problem"]

#: Default limit of a request body (bytes): about 4,000 plans with provenance.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
#: Default number of requests with a body (publishes) one server process reads and handles at
#: once, more wait for a 503: a body parsed into plans takes several times its size in memory.
DEFAULT_MAX_BODY_REQUESTS = 4


def create_app(
    store: PlanStore,
    networks: Sequence[Network],
    tokens: Tokens,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_body_requests: int = DEFAULT_MAX_BODY_REQUESTS,
) -> FastAPI:
    """Build the plan service for the signals of ``networks``, keeping its plans in ``store``.

    Plans are validated against the network of their signal before they are stored; the
    networks must not share a signal id (an id names one intersection in the URLs). A request
    with a body needs a write token before any of its body is read; bodies are limited to
    ``max_body_bytes``, and to ``max_body_requests`` read and handled at once. Every error is
    JSON ``{"detail": ..., "reasons": [...]}``.

    Parameters
    ----------
    store
        Where the plan versions are kept.
    networks
        The networks whose signals are served.
    tokens
        The accepted read and write tokens.
    max_body_bytes
        Largest request body (bytes); larger ones get a 413.
    max_body_requests
        Most requests with a body read and handled at once; more get a 503.

    Raises
    ------
    InputError
        When two networks have a signal of the same id.
    """
    catalog = Catalog(networks)
    changes = Changes(store)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
            "Every published plan version is kept; an adapter pulls the plan in force for its "
            "intersection (`ETag`/`If-None-Match`, and `?wait=` to long-poll for a new version). "
            "Reading needs a read token, publishing a write token: `Authorization: Bearer TOKEN`."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(app, store)

    @app.get("/v1/health", response_model=Health, tags=["service"])
    async def health() -> dict:
        """Liveness: the newest version and the served networks (no token needed)."""
        return {
            "status": "ok",
            "latest_version": store.latest_version(),
            "networks": {name: len(n.intersections) for name, n in catalog.networks.items()},
        }

    add_read_routes(app, store, catalog, changes, Depends(require(tokens, "read")))
    add_publish_route(app, store, catalog, changes, Depends(require(tokens, "write")))
    readers_of_bodies = [
        route
        for route in app.routes
        if isinstance(route, APIRoute) and route.body_field is not None
    ]
    app.add_middleware(
        BodyGate,
        routes=readers_of_bodies,
        tokens=tokens,
        limit=max_body_bytes,
        max_requests=max_body_requests,
    )
    return app
