"""The timing-plan type: one signal's complete SUMO program, with its validity and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..network import Network, Phase


@dataclass(frozen=True)
class TimingPlan:
    """A complete timing plan for one signal, as SUMO runs it (a ``tlLogic``).

    ``phases`` keep the network's state strings and order; durations, ``offset`` and ``cycle_s``
    are in s (``cycle_s`` defaults to the sum of the durations, and ``validate`` checks they
    agree; a NaN cycle stays NaN, and unsafe). ``kind`` is SUMO's ``type`` (``static``,
    ``actuated``). ``valid_from`` and ``valid_until`` bound when the plan applies (ISO 8601
    text, or None for open). ``provenance`` records how it was made (inputs, solver status,
    objective) for audit.
    """

    tls_id: str
    program_id: str
    phases: tuple[Phase, ...]
    offset: float = 0.0
    kind: str = "static"
    # None is a sentinel that __post_init__ replaces by the sum of the durations: a dataclass
    # field cannot say "accepts None, holds float".
    cycle_s: float = None  # type: ignore[assignment]
    valid_from: str | None = None
    valid_until: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.cycle_s is None:
            object.__setattr__(self, "cycle_s", sum(p.duration for p in self.phases))

    @property
    def greens(self) -> list[tuple[int, Phase]]:
        """The green phases with their index in the program."""
        return [(i, p) for i, p in enumerate(self.phases) if p.is_green]


def plans_from_network(network: Network) -> list[TimingPlan]:
    """Return the network's own programs as timing plans."""
    return [
        TimingPlan(
            tls_id=i.tls_id,
            program_id=i.program_id,
            phases=i.phases,
            provenance={"source": str(network.path)},
        )
        for i in network.intersections.values()
    ]
