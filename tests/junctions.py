"""Small real junctions for tests: plain-XML nodes, edges and lane connections run through
netconvert (the SUMO wheel's), one signal ``C`` at the origin."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

from citybrain_traffic.network import Network, read_network
from citybrain_traffic.sim.session import sumo_binary, sumo_env

#: Length of each leg (m).
LEG_M = 200.0


def junction(
    folder: Path,
    name: str,
    legs: dict[str, tuple[float, int]],
    *,
    lane_turns: dict[str, list[str]] | None = None,
    options: tuple[str, ...] = (),
) -> Network:
    """Build and read a signalized junction ``C``.

    ``legs`` maps a leg's node name to (bearing from the centre in compass degrees, lanes per
    direction); roads ``<leg>C`` come in, ``C<leg>`` go out. ``lane_turns`` gives, per incoming
    road, each connection as ``"<from lane>:<target leg>:<to lane>"``; without it netconvert
    guesses the lane use. ``options`` are more netconvert options.
    """
    nodes = ['<node id="C" x="0" y="0" type="traffic_light"/>']
    edges = []
    for leg, (bearing, lanes) in legs.items():
        x = LEG_M * math.sin(math.radians(bearing))
        y = LEG_M * math.cos(math.radians(bearing))
        nodes.append(f'<node id="{leg}" x="{x:.2f}" y="{y:.2f}" type="priority"/>')
        for frm, to in ((leg, "C"), ("C", leg)):
            edges.append(
                f'<edge id="{frm}{to}" from="{frm}" to="{to}" numLanes="{lanes}" speed="13.89"/>'
            )
    connections = [
        f'<connection from="{road}" to="C{leg}" fromLane="{lane}" toLane="{to_lane}"/>'
        for road, specs in (lane_turns or {}).items()
        for lane, leg, to_lane in (spec.split(":") for spec in specs)
    ]
    files = {"nod": ("nodes", nodes), "edg": ("edges", edges), "con": ("connections", connections)}
    for suffix, (root, lines) in files.items():
        (folder / f"{name}.{suffix}.xml").write_text(
            f"<{root}>\n" + "\n".join(lines) + f"\n</{root}>\n"
        )
    net = folder / f"{name}.net.xml"
    proc = subprocess.run(
        [
            sumo_binary("netconvert"),
            "--node-files",
            f"{name}.nod.xml",
            "--edge-files",
            f"{name}.edg.xml",
            "--connection-files",
            f"{name}.con.xml",
            "--offset.disable-normalization",
            "--tls.default-type",
            "static",
            "--tls.left-green.time",
            "10",
            *options,
            "--output-file",
            net.name,
        ],
        cwd=folder,
        env=sumo_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return read_network(net)


#: Per leg (north, east, south, west): the legs its right, through and left turns lead to.
TURNS = {"N": ("W", "S", "E"), "E": ("N", "W", "S"), "S": ("E", "N", "W"), "W": ("S", "E", "N")}


def cross_turns(*, uturn: bool = False, wide: str = "EW") -> dict[str, list[str]]:
    """Lane use of a 4-leg cross with an exclusive left lane on every approach.

    Legs in ``wide`` have 3 lanes (right+through, through, left), the others 2 (right+through,
    left). With ``uturn`` the left lane also turns back.
    """
    out = {}
    for leg, (right, through, left) in TURNS.items():
        specs = [f"0:{right}:0", f"0:{through}:0"]
        last = 1
        if leg in wide:
            specs.append(f"1:{through}:1")
            last = 2
        specs.append(f"{last}:{left}:1")
        if uturn:
            specs.append(f"{last}:{leg}:1")
        out[f"{leg}C"] = specs
    return out


def standard_junctions(folder: Path, *, skew30_lanes: tuple[int, int]) -> dict[str, Network]:
    """A cross with exclusive lefts and crossings, a T, a cross skewed 30 degrees (lanes per
    direction on its N-S and E-W roads) and a cross whose left lanes also turn back."""
    no_u = ("--no-turnarounds",)
    ns, ew = skew30_lanes
    return {
        "cross": junction(
            folder,
            "cross",
            {"N": (0, 2), "E": (90, 3), "S": (180, 2), "W": (270, 3)},
            lane_turns=cross_turns(),
            options=("--sidewalks.guess", "--crossings.guess"),
        ),
        "tee": junction(folder, "tee", {"E": (90, 1), "S": (180, 1), "W": (270, 1)}, options=no_u),
        "skew30": junction(
            folder,
            "skew30",
            {"N": (30, ns), "E": (120, ew), "S": (210, ns), "W": (300, ew)},
            options=no_u,
        ),
        "uturn": junction(
            folder,
            "uturn",
            {"N": (0, 3), "E": (90, 3), "S": (180, 3), "W": (270, 3)},
            lane_turns=cross_turns(uturn=True, wide="NESW"),
        ),
    }
