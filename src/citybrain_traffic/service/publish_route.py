"""The plan service's publish route: plans validated against their networks, stored as one batch."""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated

from fastapi import Body, FastAPI, Header, Request, Response, params
from fastapi.responses import JSONResponse
from pydantic import Discriminator, Tag
from starlette.concurrency import run_in_threadpool

from ..plans import TimingPlan, violations
from .catalog import Catalog
from .changes import Changes
from .models import PlanBatch, PlanIn, PublishResult
from .problems import problem, problem_responses
from .store import PlanStore

log = logging.getLogger("citybrain_traffic.service")

PlanBody = Annotated[
    Annotated[PlanIn, Tag("plan")] | Annotated[PlanBatch, Tag("batch")],
    Discriminator(
        lambda value: "batch" if isinstance(value, dict) and "plans" in value else "plan"
    ),
]


def add_publish_route(
    app: FastAPI, store: PlanStore, catalog: Catalog, changes: Changes, writer: params.Depends
) -> None:
    """Add ``POST /v1/plans`` to ``app``, behind the ``writer`` token check.

    Parameters
    ----------
    app
        The service's app.
    store
        The plan store the batches go to.
    catalog
        The served networks, against which each plan is validated.
    changes
        Told of each new version (it wakes the long polls).
    writer
        The dependency that admits write tokens only.
    """

    @app.post(
        "/v1/plans",
        status_code=201,
        response_model=PublishResult,
        dependencies=[writer],
        tags=["plans"],
        responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
        description="Publish one plan or a batch, atomically; every plan is validated against "
        "its network first.",
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
                description="The publisher's id of this batch (e.g. a UUID). Sent again with the "
                "same body, the first answer is returned and nothing is stored again (header "
                "Idempotent-Replayed); with another body, 422.",
            ),
        ] = None,
    ) -> dict | JSONResponse:
        """Publish one plan or a batch, atomically, once every plan is validated."""
        items = body.plans if isinstance(body, PlanBatch) else [body]
        checked, reasons = _check_plans(items, catalog)
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


def _check_plans(
    items: list[PlanIn], catalog: Catalog
) -> tuple[list[tuple[TimingPlan, str]], list[str]]:
    """Validate plans against the networks of their signals.

    Returns
    -------
    checked
        Each plan with a served signal, with the file name of its network.
    reasons
        Every problem found: unknown networks and signals, and each plan's ``violations``
        (validity times and their order too). Only with none may ``checked`` be published.
    """
    checked, reasons = [], []
    served = catalog.networks
    for item in items:
        network = item.network or catalog.signals.get(item.tls_id)
        if network is None or network not in served:
            reasons.append(
                f"{item.tls_id}: network {item.network!r} is not served "
                f"(served: {', '.join(served)})"
                if item.network
                else f"{item.tls_id}: no such signal in the served network(s) {', '.join(served)}"
            )
            continue
        intersection = served[network].intersections.get(item.tls_id)
        if intersection is None:
            reasons.append(f"{item.tls_id}: no such signal in {network}")
            continue
        plan = item.to_plan()
        reasons += violations(plan, intersection.phases)
        checked.append((plan, network))
    return checked, reasons
