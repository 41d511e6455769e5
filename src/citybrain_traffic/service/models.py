"""Request and response bodies of the plan service (pydantic: they make the OpenAPI schema)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ..plans import TimingPlan
from .store import StoredPlan, plan_from_dict

#: Most phases a plan may have, and most plans in one batch.
MAX_PHASES = 64
MAX_BATCH = 20_000
#: Deepest nesting and largest size (bytes as JSON) of a plan's provenance, its audit notes.
#: Why: unbounded, 255 levels broke the serializer (docs/decisions/0005-service-request-limits.md).
MAX_PROVENANCE_DEPTH = 32
MAX_PROVENANCE_BYTES = 64 * 1024

Seconds = Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False)]
SignalId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s/?#%\\]+$")]


def _iso_text(value: object) -> object:
    """Refuse a time that is not ISO 8601 text, as the plan validator does.

    Pydantic alone reads "2026" or 0 as seconds since 1970: a plan valid from 00:33 on
    1 January 1970 would be stored where the validator refuses the same document.
    """
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("expected ISO 8601 text, e.g. 2026-01-05T07:00")
    datetime.fromisoformat(value)  # its ValueError names the text
    return value


#: ``valid_from``/``valid_until``: ISO 8601 text only (``plans.validity_time`` reads the same).
IsoTime = Annotated[datetime, BeforeValidator(_iso_text)]


def _bounded(provenance: dict[str, Any]) -> dict[str, Any]:
    """Return ``provenance`` when it is within bounds; raise ValueError when it is not.

    Within bounds: at most ``MAX_PROVENANCE_DEPTH`` deep, ``MAX_PROVENANCE_BYTES`` long as JSON,
    and free of NaN and infinity (JSON has none; Python's parser lets them in).
    """
    stack = [(provenance, 1)]
    while stack:  # a loop, not recursion: the depth is what is being checked
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_PROVENANCE_DEPTH:
                raise ValueError(f"nested deeper than {MAX_PROVENANCE_DEPTH} levels")
            stack.extend(
                (item, depth + 1) for item in (value.values() if isinstance(value, dict) else value)
            )
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"holds {value}, which is not a finite number")
    size = len(json.dumps(provenance).encode())
    if size > MAX_PROVENANCE_BYTES:
        raise ValueError(f"{size:,} bytes as JSON, more than {MAX_PROVENANCE_BYTES:,}")
    return provenance


class PhaseIn(BaseModel):
    """One phase: SUMO state string and durations (s)."""

    model_config = ConfigDict(extra="forbid")

    state: str = Field(min_length=1, max_length=1024, pattern=r"^[rRyYgGsuoOw]+$")
    duration_s: Seconds
    min_s: Seconds | None = Field(
        None, description="Shortest duration (actuated), default: duration_s."
    )
    max_s: Seconds | None = Field(
        None, description="Longest duration (actuated), default: duration_s."
    )
    kind: Literal["green", "yellow", "red", "clearance"] | None = Field(
        None, description="Ignored on input (derived from the state); present in plans.json files."
    )


class PlanIn(BaseModel):
    """A timing plan for one signal, as ``ctraffic optimize`` writes it to plans.json."""

    model_config = ConfigDict(extra="forbid")

    tls_id: SignalId
    program_id: str = Field("ctraffic", min_length=1, max_length=200, pattern=r"^[^\s]+$")
    kind: Literal["static", "actuated"] = "static"
    cycle_s: float = Field(gt=0, le=86_400, allow_inf_nan=False)
    offset_s: Seconds = 0.0
    valid_from: IsoTime | None = Field(
        None, description="In force from (ISO 8601; no zone: the signal's local time)."
    )
    valid_until: IsoTime | None = Field(None, description="In force until, exclusive.")
    phases: list[PhaseIn] = Field(min_length=1, max_length=MAX_PHASES)
    provenance: Annotated[dict[str, Any], AfterValidator(_bounded)] = Field(
        default_factory=dict,
        description="How the plan was made, kept for audit; at most "
        f"{MAX_PROVENANCE_DEPTH} levels deep and {MAX_PROVENANCE_BYTES:,} bytes as JSON.",
    )
    network: str | None = Field(
        None,
        max_length=200,
        description="File name of the served network the plan was made for; "
        "default: the one with this signal.",
    )

    def to_plan(self) -> TimingPlan:
        """Return this plan as a ``TimingPlan`` (without its ``network``)."""
        doc = self.model_dump(mode="json", exclude={"network"})
        return plan_from_dict(doc)


class PlanBatch(BaseModel):
    """Several plans published together: all or none. A plans.json file is such a batch."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["citybrain-traffic/plans"] | None = None
    version: Literal[1] | None = None
    plans: list[PlanIn] = Field(min_length=1, max_length=MAX_BATCH)


class PhaseOut(BaseModel):
    """One phase of a published plan: SUMO state string and durations (s)."""

    state: str
    duration_s: float
    min_s: float
    max_s: float
    kind: Literal["green", "yellow", "red", "clearance"]


class PlanOut(BaseModel):
    """A published plan version."""

    version: int = Field(
        description="Global version number; strictly increasing in publishing order."
    )
    batch: int
    network: str
    published_at: datetime
    tls_id: str
    program_id: str
    kind: str
    cycle_s: float
    offset_s: float
    valid_from: datetime | None
    valid_until: datetime | None
    phases: list[PhaseOut]
    provenance: dict[str, Any]


class Problem(BaseModel):
    """An error: what went wrong, and every reason when there are several."""

    detail: str
    reasons: list[str] = []


class PublishedPlan(BaseModel):
    """The version one plan of a publish got."""

    tls_id: str
    version: int


class PublishResult(BaseModel):
    """A committed publish: its batch, its time, and the version of each plan in it."""

    batch: int
    published_at: datetime
    plans: list[PublishedPlan]


class IntersectionOut(BaseModel):
    """A served signal with the version in force now and its newest version."""

    id: str
    network: str
    version: int | None = Field(description="The version in force now (None: none is).")
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    published_at: datetime | None = None
    latest_version: int | None = Field(description="The newest version published for this signal.")


class History(BaseModel):
    """A page of the versions published for a signal, newest first."""

    id: str
    plans: list[PlanOut]
    next_before: int | None = Field(
        description="Pass as ?before= for the next (older) page; None: no more."
    )


class Health(BaseModel):
    """Liveness: the newest version and the served networks."""

    status: Literal["ok"]
    latest_version: int
    networks: dict[str, int] = Field(
        description="Served network file names with their number of signals."
    )


def plan_out(stored: StoredPlan) -> dict[str, Any]:
    """Return a stored version as a ``PlanOut`` document (plain JSON types)."""
    return {
        "version": stored.version,
        "batch": stored.batch,
        "network": stored.network,
        "published_at": stored.published_at,
        **json.loads(stored.document),
    }
