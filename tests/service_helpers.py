"""Shared pieces of the plan-service tests: the corridor network, safe plans, tokens, a test client."""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import lru_cache

from citybrain_traffic.network import Network, read_network
from citybrain_traffic.plans import TimingPlan, plans_from_network
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.service.auth import Tokens
from citybrain_traffic.service.store import plan_to_dict

with warnings.catch_warnings():
    # Starlette announces a move to httpx2 for its TestClient; httpx still works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: F401  (re-exported)

READ_TOKEN = "read-token-0123456789abcdef"
WRITE_TOKEN = "write-token-0123456789abcdef"
TOKENS = Tokens(read=(READ_TOKEN.encode(),), write=(WRITE_TOKEN.encode(),))
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}


@lru_cache(maxsize=1)
def corridor() -> Network:
    return read_network(load_scenario("corridor").net_file)


def safe_plan(tls_id: str = "J1", *, extra_s: float = 0.0, **changes) -> TimingPlan:
    """The network's own program for ``tls_id``, its first green ``extra_s`` longer (still safe)."""
    plan = next(p for p in plans_from_network(corridor()) if p.tls_id == tls_id)
    phases = list(plan.phases)
    i, green = plan.greens[0]
    phases[i] = replace(green, duration=green.duration + extra_s, max_dur=max(green.max_dur, green.duration + extra_s))
    return replace(plan, program_id="test", phases=tuple(phases), cycle_s=plan.cycle_s + extra_s, **changes)


def unsafe_plan(tls_id: str = "J2") -> TimingPlan:
    """A plan that cuts a yellow interval to 1 s."""
    plan = safe_plan(tls_id)
    phases = list(plan.phases)
    k = next(k for k, p in enumerate(phases) if p.kind == "yellow")
    phases[k] = replace(phases[k], duration=1.0, min_dur=1.0, max_dur=1.0)
    return replace(plan, phases=tuple(phases), cycle_s=sum(p.duration for p in phases))


def doc(*plans: TimingPlan) -> dict:
    """A publish body: a batch of ``plans``."""
    return {"plans": [plan_to_dict(p) for p in plans]}
