"""Fixed-time baseline: the network's own signal programs, unchanged."""

from __future__ import annotations

from .base import Controller


class FixedController(Controller):
    """Leaves every signal to the program in the network; the harness never stops to call it."""

    name = "fixed"
    description = "the network's own signal programs, unchanged"
