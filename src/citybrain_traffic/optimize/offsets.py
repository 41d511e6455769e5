"""Whole-second offsets of least red-arrival cost: CP-SAT, warm-started by a local search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from ortools.sat.python import cp_model

from .platoons import PairCosts

#: CP-SAT's search budget for the offsets, in its deterministic time units (roughly seconds of
#: one core; results are reproducible). The warm start is a complete plan, so the search only
#: improves on it.
DEFAULT_OFFSET_SEARCH_BUDGET = 0.5
#: Wall-clock stop, as a multiple of the budget, for a heavily loaded machine.
_WALL_CLOCK_FACTOR = 3.0


def solve_offsets(
    signals: Sequence[str],
    pairs: PairCosts,
    cycle: int,
    search_budget: float,
) -> tuple[dict[str, int], str]:
    """Choose whole-second offsets that minimise the summed pair costs.

    One signal per linked component is fixed at offset 0. The warm start is the better of a
    greedy placement and all offsets 0, each improved by coordinate descent; CP-SAT then
    searches from it within ``search_budget`` (its deterministic time units, roughly seconds of
    one core), and its answer is kept only if it is no worse.

    Parameters
    ----------
    signals
        The signals of the group, in order.
    pairs
        Costs per signal pair by offset difference (``platoons.pair_costs``).
    cycle
        The common cycle in whole seconds.
    search_budget
        CP-SAT's deterministic time budget.

    Returns
    -------
    offsets, status
        Offset (s) per signal, and CP-SAT's status name, ``"no links"``, or why the warm start
        was kept.
    """
    if not pairs:
        return dict.fromkeys(signals, 0), "no links"
    model = cp_model.CpModel()
    offset = {tls: model.new_int_var(0, cycle - 1, f"offset_{tls}") for tls in signals}
    for root in _component_roots(signals, pairs):
        model.add(offset[root] == 0)
    starts = (_greedy_offsets(signals, pairs, cycle), dict.fromkeys(signals, 0))
    start = min(
        (_descend(signals, pairs, cycle, s) for s in starts), key=lambda o: _total(pairs, cycle, o)
    )
    terms = []
    for (a, b), combined in _combined(pairs, cycle).items():
        delta = model.new_int_var(0, cycle - 1, f"delta_{a}_{b}")
        wrap = model.new_bool_var(f"wrap_{a}_{b}")
        model.add(delta == offset[b] - offset[a] + cycle * wrap)
        table = combined.tolist()
        term = model.new_int_var(min(table), max(table), f"cost_{a}_{b}")
        model.add_element(delta, table, term)
        terms.append(term)
        # A complete hint is a first solution the search starts from.
        hinted = (start[b] - start[a]) % cycle
        model.add_hint(delta, hinted)
        model.add_hint(wrap, int(start[b] < start[a]))
        model.add_hint(term, table[hinted])
    for tls, value in start.items():
        model.add_hint(offset[tls], value)
    model.minimize(sum(terms))
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = search_budget
    solver.parameters.max_time_in_seconds = _WALL_CLOCK_FACTOR * search_budget
    solver.parameters.num_workers = 1
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return start, "warm start (CP-SAT found no solution within its budget)"
    found = {tls: int(solver.value(var)) for tls, var in offset.items()}
    if _total(pairs, cycle, found) > _total(pairs, cycle, start):
        return start, "warm start (CP-SAT found nothing better within its budget)"
    return found, solver.status_name(status)


def _total(pairs: PairCosts, cycle: int, offsets: Mapping[str, int]) -> int:
    """Sum the pair costs as CP-SAT sees them (``_combined``) at these offsets."""
    return int(
        sum(
            table[(offsets[b] - offsets[a]) % cycle]
            for (a, b), table in _combined(pairs, cycle).items()
        )
    )


def _descend(
    signals: Sequence[str], pairs: PairCosts, cycle: int, start: Mapping[str, int]
) -> dict[str, int]:
    """Improve offsets by coordinate descent: one signal at a time to its best offset.

    It stops when no move helps: a local optimum, found in milliseconds, that CP-SAT then
    improves on.
    """
    offsets = dict(start)
    combined = _combined(pairs, cycle)
    roots = set(_component_roots(signals, pairs))
    shift = np.arange(cycle)
    moved = True
    while moved:
        moved = False
        for tls in signals:
            if tls in roots:
                continue
            score = np.zeros(cycle)
            for (a, b), table in combined.items():
                if a == tls:
                    score += table[(offsets[b] - shift) % cycle]
                elif b == tls:
                    score += table[(shift - offsets[a]) % cycle]
            best = int(np.argmin(score))
            if score[best] < score[offsets[tls]]:
                offsets[tls] = best
                moved = True
    return offsets


def _combined(pairs: PairCosts, cycle: int) -> dict[tuple[str, str], np.ndarray]:
    """Weigh pair costs as CP-SAT sees them: whole veh·s/h of wait, above all lateness together."""
    scale = 2 * cycle * len(pairs) + 1
    return {
        key: np.rint(cost).astype(np.int64) * scale + late for key, (cost, late) in pairs.items()
    }


def _component_roots(signals: Sequence[str], pairs: PairCosts) -> list[str]:
    """Pick the first signal of each group of signals linked to one another."""
    parent = {tls: tls for tls in signals}

    def find(tls: str) -> str:
        while parent[tls] != tls:
            parent[tls] = parent[parent[tls]]
            tls = parent[tls]
        return tls

    for a, b in pairs:
        parent[find(b)] = find(a)
    return list(dict.fromkeys(find(tls) for tls in signals))


def _greedy_offsets(signals: Sequence[str], pairs: PairCosts, cycle: int) -> dict[str, int]:
    """Place offsets greedily, for a warm start.

    Walk outward from each component's first signal, each new signal taking the offset that best
    fits the links to the signals already placed.
    """
    combined = _combined(pairs, cycle)
    placed: dict[str, int] = {}
    for root in _component_roots(signals, pairs):
        placed[root] = 0
        grown = True
        while grown:
            grown = False
            for tls in signals:
                if tls in placed:
                    continue
                score = np.zeros(cycle)
                touching = False
                for (a, b), table in combined.items():
                    if a == tls and b in placed:
                        touching = True
                        score += table[(placed[b] - np.arange(cycle)) % cycle]
                    elif b == tls and a in placed:
                        touching = True
                        score += table[(np.arange(cycle) - placed[a]) % cycle]
                if touching:
                    placed[tls] = int(np.argmin(score))
                    grown = True
    return placed
