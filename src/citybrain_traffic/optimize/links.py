"""Roads between signals: which signal of a group feeds which, over what length and travel time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..network import Network

#: Signals further apart than this (m) are not linked: platoons have dispersed by then (the
#: MUTCD/HCM rule of thumb leaves signals beyond about half a mile uncoordinated).
DEFAULT_MAX_LINK_LENGTH_M = 1000.0


@dataclass(frozen=True)
class SignalLink:
    """A road from one signal of the group to another, over non-signal edges in between.

    ``edges`` runs from the upstream signal's outgoing edge to the downstream signal's
    incoming (approach) edge; ``travel_time_s`` is their length over their speed limit.
    """

    upstream: str
    downstream: str
    edges: tuple[str, ...]
    length_m: float
    travel_time_s: float


def signal_links(
    network: Network,
    tls_ids: Sequence[str],
    *,
    max_length_m: float = DEFAULT_MAX_LINK_LENGTH_M,
) -> list[SignalLink]:
    """Find the roads linking signals of the group, read from the network file.

    From every outgoing edge of a signal the road is followed downstream through junctions
    without a signal, along every branch, until it reaches an approach of another signal of the
    group (a link), a signal outside the group, or ``max_length_m``. The shortest road is kept
    for each (upstream signal, approach) pair. Lengths are in m, travel times in s. A static fact
    of the network: found once per process for a file, group and length (a re-plan asks again).
    """
    key = (str(network.path), network.path.stat().st_mtime_ns, tuple(tls_ids), max_length_m)
    if key not in _FOUND:
        if len(_FOUND) >= _FOUND_MAX:
            _FOUND.pop(next(iter(_FOUND)))
        _FOUND[key] = tuple(_find_links(network, tls_ids, max_length_m))
    return list(_FOUND[key])


#: Links already found in this process: (net file, its mtime, signals, max length) -> links.
_FOUND: dict[tuple[str, int, tuple[str, ...], float], tuple[SignalLink, ...]] = {}
_FOUND_MAX = 16


def _find_links(network: Network, tls_ids: Sequence[str], max_length_m: float) -> list[SignalLink]:
    """Follow every road out of the group's signals in the network file (``signal_links``)."""
    import sumolib

    net = sumolib.net.readNet(str(network.path))
    approach_of = {
        link.in_edge: tls for tls in tls_ids for link in network.intersections[tls].links
    }
    found: dict[tuple[str, str], SignalLink] = {}
    for tls in tls_ids:
        for out_edge in dict.fromkeys(link.out_edge for link in network.intersections[tls].links):
            # (sumolib edge, edge ids so far, length (m) and travel time (s) before the edge)
            stack: list[tuple[Any, tuple[str, ...], float, float]] = [
                (net.getEdge(out_edge), (out_edge,), 0.0, 0.0)
            ]
            while stack:
                edge, path, length, travel = stack.pop()
                length += edge.getLength()
                travel += edge.getLength() / edge.getSpeed()
                if length > max_length_m:
                    continue
                target = approach_of.get(edge.getID())
                if target is not None and target != tls:
                    key = (tls, edge.getID())
                    if key not in found or found[key].length_m > length:
                        found[key] = SignalLink(tls, target, path, length, travel)
                    continue
                if edge.getToNode().getType().startswith("traffic_light"):
                    continue
                for successor in edge.getOutgoing():
                    if successor.getID() not in path:
                        stack.append((successor, path + (successor.getID(),), length, travel))
    return sorted(found.values(), key=lambda link: (link.upstream, link.downstream, link.edges))
