"""Seconds in plans: the finiteness check every number passes, and the text files write them as."""

from __future__ import annotations

import math
import numbers
from typing import Any, TypeGuard


def is_finite(value: Any) -> TypeGuard[float]:
    """Return whether ``value`` is a finite real number (a bool is not one).

    Any ``numbers.Real`` counts (numpy scalars too); each converts to a float.
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def format_seconds(value: float) -> str:
    """Return a duration (s) as SUMO and UTDF files carry it: millisecond precision, no padding."""
    return f"{value:.3f}".rstrip("0").rstrip(".")
