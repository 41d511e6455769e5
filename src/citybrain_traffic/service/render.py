"""Representations of a plan version: JSON, SUMO tlLogic XML and UTDF CSV, cached per version."""

from __future__ import annotations

import json

from ..network import NemaFit, fit_network
from ..plans import tl_logics_xml, utdf_text
from .catalog import Catalog
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
    catalog
        The served networks: UTDF numbers its ``D`` columns by each signal's NEMA fit there, as
        ``ctraffic optimize`` exports it (fitted once per network, when first asked).
    """

    #: Most bodies kept; the cache is emptied when it is full.
    LIMIT = 4096

    def __init__(self, store: PlanStore, catalog: Catalog | None = None):
        self.store = store
        self.catalog = catalog
        self.cache: dict[tuple[int, str], bytes] = {}
        self.fits: dict[str, dict[str, NemaFit]] = {}

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
            elif fmt == "sumo":
                body = tl_logics_xml([stored.plan]).encode()
            else:
                body = utdf_text([stored.plan], nema=self._fits(stored.network)).encode()
            if len(self.cache) >= self.LIMIT:
                self.cache.clear()
            self.cache[key] = body
        return body

    def _fits(self, network: str) -> dict[str, NemaFit] | None:
        """Return the NEMA fits of the served network named ``network`` (None when not served)."""
        if self.catalog is None or network not in self.catalog.networks:
            return None
        if network not in self.fits:
            self.fits[network] = fit_network(self.catalog.networks[network])
        return self.fits[network]
