"""Representations of a plan version: JSON, SUMO tlLogic XML and UTDF CSV, cached per version."""

from __future__ import annotations

import json

from ..plans import tl_logics_xml, utdf_text
from .models import plan_out
from .store import PlanStore

#: Media type of each representation (``?format=``).
MEDIA = {"json": "application/json", "sumo": "application/xml", "utdf": "text/csv"}


class Renderer:
    """Response bodies per (version, format); versions never change, so they are cached.

    Parameters
    ----------
    store
        The plan store the versions are read from.
    """

    #: Most bodies kept; the cache is emptied when it is full.
    LIMIT = 4096

    def __init__(self, store: PlanStore):
        self.store = store
        self.cache: dict[tuple[int, str], bytes] = {}

    def body(self, version: int, fmt: str) -> bytes:
        """Return the body of ``version`` in format ``fmt`` (a key of ``MEDIA``).

        Raises
        ------
        LookupError
            When the store has no such version (the routes ask only for versions it named).
        """
        key = (version, fmt)
        body = self.cache.get(key)
        if body is None:
            stored = self.store.get(version)
            if stored is None:
                raise LookupError(f"version {version} is not in the plan database")
            if fmt == "json":
                body = json.dumps(plan_out(stored)).encode()
            else:
                body = (tl_logics_xml if fmt == "sumo" else utdf_text)([stored.plan]).encode()
            if len(self.cache) >= self.LIMIT:
                self.cache.clear()
            self.cache[key] = body
        return body
