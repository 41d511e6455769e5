"""Read routes of the plan service: served signals, the plan in force (ETag, long poll), history."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, HTTPException, Path, Query, Response, params

from .catalog import Catalog
from .changes import Changes
from .models import History, IntersectionOut, PlanOut, plan_out
from .problems import problem_responses
from .render import MEDIA, Renderer
from .store import PlanStore, time_key

#: Longest long poll (s).
MAX_WAIT_S = 300.0
#: A long poll also re-checks this often, for plans whose validity starts while it waits (s).
RECHECK_S = 1.0

_ETAG = re.compile(r'(?:W/)?"([^"]*)"')

IntersectionId = Annotated[
    str, Path(min_length=1, max_length=200, description="Signal (tlLogic) id.")
]

_PLAN_RESPONSES: dict[int | str, dict[str, Any]] = {
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
    304: {"description": "Not modified: the plan in force still has the If-None-Match ETag"},
    **problem_responses(401, 403, 404, 422),
}


def add_read_routes(
    app: FastAPI, store: PlanStore, catalog: Catalog, changes: Changes, reader: params.Depends
) -> None:
    """Add the routes that read plans to ``app``, each behind the ``reader`` token check.

    Parameters
    ----------
    app
        The service's app.
    store
        The plan store.
    catalog
        The served networks and their signals.
    changes
        Wakes long polls at each new version.
    reader
        The dependency that admits read (or write) tokens.
    """
    renders = Renderer(store, catalog)

    @app.get(
        "/v1/intersections",
        response_model=list[IntersectionOut],
        dependencies=[reader],
        tags=["plans"],
        responses=problem_responses(401, 403),
        description="Every served signal with the version in force now, its validity, "
        "and its newest version.",
    )
    async def intersections() -> list[dict]:
        """List the served signals with their versions in force now and their newest versions."""
        now, latest = time_key(datetime.now()), store.latest_versions()
        rows = []
        for tls_id, network in catalog.signals.items():
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
        responses=_PLAN_RESPONSES,
        description="The plan in force for the intersection, with an ETag per version.",
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
    ) -> Response:
        """Answer the plan in force for the intersection, with an ETag per version."""
        catalog.network_of(id)
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
        return Response(renders.body(version, format), media_type=MEDIA[format], headers=headers)

    @app.get(
        "/v1/intersections/{id}/plans",
        response_model=History,
        dependencies=[reader],
        tags=["plans"],
        responses=problem_responses(401, 403, 404, 422),
    )
    async def plans(
        id: IntersectionId,
        limit: Annotated[int, Query(ge=1, le=500, description="Versions per page.")] = 50,
        before: Annotated[
            int | None, Query(ge=1, le=2**62, description="Only versions older than this.")
        ] = None,
    ) -> dict:
        """Every version published for the intersection, newest first, a page at a time."""
        catalog.network_of(id)
        page = store.history(id, before=before, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return {
            "id": id,
            "plans": [plan_out(p) for p in page],
            "next_before": page[-1].version if more else None,
        }


def _at_key(at: datetime | None) -> str:
    """Return the time key of ``at`` (default: now); 422 for a time that has none."""
    try:
        return time_key(at or datetime.now())
    except ValueError as exc:
        raise HTTPException(422, f"at: {exc}") from None


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Return whether If-None-Match matches the current ETag (RFC 9110 weak comparison)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return etag.strip('"') in _ETAG.findall(if_none_match)
