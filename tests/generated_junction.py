"""A four-leg signalized junction built by netconvert: one lane per approach, the west one narrow.

Every approach has a single lane shared by its right, through and left movements; netconvert's
program gives through and right priority green and the left a permitted green (``g``) opposite
the other approach's through traffic.
"""

from __future__ import annotations

from pathlib import Path

from citybrain_traffic.sim.session import run_sumo_tool, sumo_binary

#: Width (m) of the west approach's lane: under the HCM's 10 ft (3.05 m).
NARROW_M = 2.8
#: Length (m) and speed limit (m/s) of every approach.
LEG_M, SPEED_M_S = 200.0, 13.89


def build_junction(folder: Path) -> Path:
    """Write the junction's plain files into ``folder`` and return its ``.net.xml``."""
    nodes = folder / "j.nod.xml"
    edges = folder / "j.edg.xml"
    nodes.write_text(
        "<nodes>\n"
        '  <node id="C" x="0" y="0" type="traffic_light"/>\n'
        + "".join(
            f'  <node id="{n}" x="{x}" y="{y}" type="priority"/>\n'
            for n, x, y in (("W", -LEG_M, 0), ("E", LEG_M, 0), ("N", 0, LEG_M), ("S", 0, -LEG_M))
        )
        + "</nodes>\n"
    )
    rows = []
    for leg in "WENS":
        width = f' width="{NARROW_M}"' if leg == "W" else ""
        rows.append(
            f'  <edge id="{leg}_C" from="{leg}" to="C" numLanes="1" speed="{SPEED_M_S}"{width}/>'
        )
        rows.append(f'  <edge id="C_{leg}" from="C" to="{leg}" numLanes="1" speed="{SPEED_M_S}"/>')
    edges.write_text("<edges>\n" + "\n".join(rows) + "\n</edges>\n")
    net = folder / "j.net.xml"
    run_sumo_tool(
        [
            sumo_binary("netconvert"),
            "--node-files",
            str(nodes),
            "--edge-files",
            str(edges),
            "--no-turnarounds",
            "true",
            "--output-file",
            str(net),
        ],
        cwd=folder,
        what="building the test junction (netconvert)",
    )
    return net


def write_routes(path: Path, vehicles: list[tuple[float, str, str]], vtypes: str = "") -> Path:
    """Write a routes file: ``vtypes`` (XML) then vehicles (depart s, edges, type id or '')."""
    body = [vtypes]
    for k, (depart, edges, vtype) in enumerate(sorted(vehicles)):
        kind = f' type="{vtype}"' if vtype else ""
        body.append(
            f'  <vehicle id="v{k}" depart="{depart:.2f}"{kind}><route edges="{edges}"/></vehicle>'
        )
    path.write_text("<routes>\n" + "\n".join(body) + "\n</routes>\n")
    return path
