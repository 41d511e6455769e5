"""Fit a signal's program to the NEMA dual-ring, eight-phase structure, or say why it does not."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from .compass import label_order
from .model import Intersection, Network
from .movements import NamedMovement, SignalMovements, name_movements

#: NEMA phases of each ring; a barrier separates the main street's (1, 2, 5, 6) from the side
#: street's (3, 4, 7, 8). Even phases serve throughs, odd ones protected lefts.
RING_1 = (1, 2, 3, 4)
RING_2 = (5, 6, 7, 8)
MAIN_STREET_PHASES = frozenset((1, 2, 5, 6))

#: Road axes of the 4-point compass labels; the first label of each gets the lower even phase.
_AXES = {"NB": "NS", "SB": "NS", "EB": "EW", "WB": "EW"}
#: Phase 2's direction and the direction 90 degrees clockwise from it (phase 4).
_CLOCKWISE = {"NB": "EB", "EB": "SB"}
_LABEL_ORDER = ["NB", "EB", "SB", "WB", "NE", "SE", "SW", "NW"]
_OPPOSITE = {"NB": "SB", "SB": "NB", "EB": "WB", "WB": "EB"}


@dataclass(frozen=True)
class NemaPhase:
    """A green phase of the program with its NEMA phase numbers and the movements it serves.

    ``index`` is the SUMO program index; ``numbers`` the NEMA phases it runs (``(2, 6)``), empty
    when the program does not fit; ``key_movements`` the throughs and protected turns that give it
    those numbers; ``movements`` every movement green in it (permitted turns and crossings too).
    """

    index: int
    numbers: tuple[int, ...]
    key_movements: tuple[str, ...]
    movements: tuple[str, ...]

    @property
    def nema(self) -> str:
        """The NEMA numbers joined (``"2+6"``), empty when the program does not fit."""
        return "+".join(map(str, self.numbers))

    @property
    def label(self) -> str:
        """The phase as read aloud: ``"2+6 EBT/WBT"`` (movements alone without a NEMA fit)."""
        names = "/".join(self.key_movements or self.movements) or "no movement"
        return f"{self.nema} {names}" if self.numbers else names


@dataclass(frozen=True)
class NemaFit:
    """How a signal's program fits the dual ring: numbers per green phase, or why it does not.

    ``main_street`` are the approach labels of the street given phases 2 and 6 and ``main_basis``
    the network property that chose it. ``movement_numbers`` gives each vehicle movement the NEMA
    phase it belongs to (a permitted left its through's). ``reason`` is empty when the program
    fits; otherwise the phases keep program order and carry no numbers.
    """

    tls_id: str
    main_street: tuple[str, ...]
    main_basis: str
    phases: tuple[NemaPhase, ...]
    movement_numbers: dict[str, int] = field(default_factory=dict)
    reason: str = ""

    @property
    def fits(self) -> bool:
        """Whether every green phase has NEMA numbers."""
        return not self.reason

    def phase(self, index: int) -> NemaPhase | None:
        """Return the green phase with SUMO program index ``index``, if it is one."""
        return next((p for p in self.phases if p.index == index), None)


def fit_network(network: Network) -> dict[str, NemaFit]:
    """Fit every signal of ``network`` (see ``fit_nema``), naming its movements once."""
    named = name_movements(network)
    return {tls: fit_nema(i, named[tls]) for tls, i in network.intersections.items()}


def fit_nema(intersection: Intersection, movements: SignalMovements) -> NemaFit:
    """Give the green phases of a signal's program NEMA phase numbers, where it fits the ring.

    The main street (phases 2 and 6, with lefts 1 and 5) is the road axis ranked first by:
    through movements (a T-junction's stem ends there), the network's edge priority (netconvert's
    road class), lanes, speed limit, and last the program's first green. Phase 2 is the main
    street's northbound or eastbound approach, phase 4 the approach 90 degrees clockwise from it,
    6 and 8 their opposites; phase 1 is the protected left of phase 6's approach, 5 of 2's, 3 of
    8's and 7 of 4's. A through or right turn belongs to its approach's even phase, a protected
    (priority ``G``) left or U-turn to its odd phase, a permitted (``g``) one to the even phase;
    an approach without a through (a T-junction's stem) is served by its even phase alone. Right
    turns ride along with whatever phase they are green in (an overlap where that is another
    approach's), so a green of right turns alone does not fit.

    The program fits when every green serves a numbered movement, runs at most one phase per ring
    and stays on one side of the barrier, the barrier is crossed at most twice a cycle, and every
    NEMA phase is green over consecutive greens of the program.
    """
    vehicles = [m for m in movements.movements if not m.is_crossing]
    greens = [i for i, p in enumerate(intersection.phases) if p.is_green]
    labels = [a.label for a in movements.approaches]
    main, basis = _main_street(movements, intersection, greens)
    shown = [_shown(intersection.phases[i].state, vehicles) for i in greens]
    green_names = [
        tuple(m.name for m in movements.movements if _green_in(m, intersection.phases[i].state))
        for i in greens
    ]
    through = {m.approach for m in vehicles if m.turn == "T"}
    keys = [
        tuple(
            m.name
            for m, _ in sorted(
                (pair for pair in s if _is_key(*pair, through)),
                key=lambda pair: (label_order(pair[0].approach), "LTRU".index(pair[0].turn)),
            )
        )
        for s in shown
    ]
    odd_labels = [label for label in labels if label not in _AXES]
    if odd_labels:
        reason = (
            f"{len(labels)} approaches ({', '.join(labels)}): the dual ring numbers two roads "
            "of at most two approaches each"
        )
        return _no_fit(intersection.tls_id, main, basis, greens, keys, green_names, reason)
    number_of = _approach_numbers(main, labels)
    phase_numbers = []
    for k, shown_k in enumerate(shown):
        numbers: dict[int, list[str]] = defaultdict(list)
        for m, protected in shown_k:
            if _is_key(m, protected, through):
                numbers[_number(m, protected, number_of, through)].append(m.name)
        for m, _ in shown_k:  # a stem's right turn is named with the phase that serves the stem
            if m.turn == "R" and m.approach not in through and number_of[m.approach][0] in numbers:
                numbers[number_of[m.approach][0]].append(m.name)
        phase_numbers.append(tuple(sorted(numbers)))
        keys[k] = tuple(name for n in sorted(numbers) for name in numbers[n])
    reason = _misfit(greens, phase_numbers, keys)
    if reason:
        return _no_fit(intersection.tls_id, main, basis, greens, keys, green_names, reason)
    own = {
        m.name: _number(m, any(p for s in shown for mm, p in s if mm is m), number_of, through)
        for m in vehicles
    }
    return NemaFit(
        tls_id=intersection.tls_id,
        main_street=main,
        main_basis=basis,
        phases=tuple(
            NemaPhase(i, nums, key, names)
            for i, nums, key, names in zip(greens, phase_numbers, keys, green_names)
        ),
        movement_numbers=own,
    )


def _green_in(m: NamedMovement, state: str) -> bool:
    return any(state[k] in "Gg" for k in m.links if k < len(state))


def _shown(state: str, vehicles: list[NamedMovement]) -> list[tuple[NamedMovement, bool]]:
    """List the vehicle movements green in ``state``, each with whether it has priority (``G``)."""
    return [
        (m, any(state[k] == "G" for k in m.links if k < len(state)))
        for m in vehicles
        if _green_in(m, state)
    ]


def _is_key(m: NamedMovement, protected: bool, through: set[str]) -> bool:
    """Whether a green movement gives its phase a NEMA number (others ride along with one)."""
    if m.turn == "T":
        return True
    # A right turn runs with a phase (or as an overlap); it never defines one.
    return m.turn in ("L", "U") and (protected or m.approach not in through)


def _number(
    m: NamedMovement, protected: bool, number_of: dict[str, tuple[int, int]], through: set[str]
) -> int:
    """Return the NEMA phase of a movement.

    Its approach's odd phase for a protected left or U-turn on an approach with a through, else
    the even one.
    """
    even, odd = number_of[m.approach]
    if m.approach in through and m.turn in ("L", "U") and protected:
        return odd
    return even


def _approach_numbers(main: tuple[str, ...], labels: list[str]) -> dict[str, tuple[int, int]]:
    """(even, odd) NEMA phases of each approach label."""
    axis = _AXES[main[0]] if main else "EW"
    two = "NB" if axis == "NS" else "EB"
    four = _CLOCKWISE[two]
    evens = {two: 2, four: 4, _OPPOSITE[two]: 6, _OPPOSITE[four]: 8}
    # The protected left that crosses phase n's through runs in ring with it: phase n - 1.
    odds = {_OPPOSITE[two]: 1, two: 5, _OPPOSITE[four]: 3, four: 7}
    return {label: (evens[label], odds[label]) for label in labels}


def _main_street(
    movements: SignalMovements, intersection: Intersection, greens: list[int]
) -> tuple[tuple[str, ...], str]:
    """Pick the main street's approach labels and say which property decided."""
    axes: dict[str, list] = defaultdict(list)
    for a in movements.approaches:
        axes[_axis(a.label)].append(a)
    if not axes:
        return (), "no approach"
    through = {m.approach for m in movements.movements if m.turn == "T"}
    first_green: dict[str, int] = {}
    for rank, i in enumerate(greens):
        state = intersection.phases[i].state
        for m in movements.movements:
            if m.turn == "T" and not m.is_crossing and _green_in(m, state):
                first_green.setdefault(_axis(m.approach), rank)
    criteria = (
        ("it has through movements", lambda a: float(any(x.label in through for x in a))),
        ("higher edge priority", lambda a: float(max(x.priority for x in a))),
        ("more lanes", lambda a: float(sum(x.lanes for x in a))),
        ("higher speed limit (m/s)", lambda a: max(x.speed_m_s for x in a)),
        ("the program serves it first", lambda a: -float(first_green.get(_axis(a[0].label), 99))),
    )
    ranked = sorted(axes, key=lambda ax: tuple(f(axes[ax]) for _, f in criteria), reverse=True)
    best = ranked[0]
    main = tuple(sorted((a.label for a in axes[best]), key=_LABEL_ORDER.index))
    if len(ranked) == 1:
        return main, "the only road"
    other = ranked[1]
    for k, (name, f) in enumerate(criteria):
        a, b = f(axes[best]), f(axes[other])
        if a != b:
            return main, name if k in (0, len(criteria) - 1) else f"{name}: {a:g} vs {b:g}"
    return main, "a tie on every property"


def _axis(label: str) -> str:
    return _AXES.get(label, label)


def _misfit(greens: list[int], numbers: list[tuple[int, ...]], keys: list[tuple[str, ...]]) -> str:
    """Why these phase numbers break the dual ring, or ``""`` when they fit."""
    for i, nums, key in zip(greens, numbers, keys):
        if not nums:
            return f"phase {i} serves no through or protected turn (only rights or crossings)"
        for ring in (RING_1, RING_2):
            both = [n for n in nums if n in ring]
            if len(both) > 1:
                return f"phase {i} ({'/'.join(key)}) runs NEMA {both[0]} and {both[1]}, one ring"
        sides = {n in MAIN_STREET_PHASES for n in nums}
        if len(sides) > 1:
            return f"phase {i} ({'/'.join(key)}) serves main and side street across the barrier"
    sides_seq = [nums[0] in MAIN_STREET_PHASES for nums in numbers]
    changes = sum(a != b for a, b in zip(sides_seq, sides_seq[1:] + sides_seq[:1]))
    if changes > 2:
        return f"the program crosses the barrier {changes} times a cycle (at most 2 fit)"
    for n in sorted({n for nums in numbers for n in nums}):
        on = [n in nums for nums in numbers]
        starts = sum(a and not b for a, b in zip(on, on[-1:] + on[:-1]))
        if starts > 1:
            where = [i for i, o in zip(greens, on) if o]
            return f"NEMA {n} is green in phases {where} with other greens between them"
    return ""


def _no_fit(
    tls: str,
    main: tuple[str, ...],
    basis: str,
    greens: list[int],
    keys: list[tuple[str, ...]],
    green_names: list[tuple[str, ...]],
    reason: str,
) -> NemaFit:
    phases = tuple(NemaPhase(i, (), key, names) for i, key, names in zip(greens, keys, green_names))
    return NemaFit(tls, main, basis, phases, {}, f"{tls}: does not fit NEMA: {reason}")
