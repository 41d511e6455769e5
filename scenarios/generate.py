"""Generate the bundled SUMO scenarios ``single``, ``corridor`` and ``grid``.

Every scenario is built only with SUMO's own tools, so the result is what
SUMO itself considers a sensible default:

* the network comes from ``netconvert`` (plain XML nodes/edges/connections
  written by this script) or ``netgenerate --grid``; signal programs are
  SUMO's default static programs, shaped by a fixed set of ``--tls.*``
  options (90 s cycle, 3 s yellow, 1 s all-red, protected left phases);
* the demand comes from ``jtrrouter``: Poisson flows on every entry edge,
  piecewise constant per 15-minute slice (build-up, peak, decay), routed
  with explicit turning ratios at every junction.  jtrrouter expands the
  flows into ``<vehicle>`` elements that reference explicit ``<route>``
  definitions (never bare trips), which is what ``tlsCycleAdaptation.py``
  and our own tools read.

All random choices use fixed seeds and the leading ``<!-- generated on ...
-->`` comment that SUMO writes into its outputs (date, absolute paths) is
removed, so running the script twice gives byte-identical files.  Only the
final files (``<name>.net.xml``, ``<name>.rou.xml``, ``<name>.sumocfg``,
``scenario.json``) are written to the output folder; everything else lives
in a temporary directory.  Each scenario's ``README.md`` is maintained by
hand next to the generated files and is not touched here.

Usage::

    python scenarios/generate.py [--out DIR] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sumo
import sumolib

SUMO_HOME = Path(sumo.SUMO_HOME)
DEFAULT_OUT = Path(__file__).resolve().parent / "sumo"

BEGIN, END = 0, 7200
SLICE = 900  # demand is piecewise constant per 15-minute slice
# Share of the peak-hour rate in each 15-minute slice of the two hours:
# build-up over 45 min, the peak from 45 to 75 min, then decay.
PROFILE: tuple[float, ...] = (0.40, 0.55, 0.75, 0.95, 1.00, 0.85, 0.60, 0.45)
SEED = 42
DEFAULT_SCENARIO = "corridor"

V50 = 13.89  # 50 km/h in m/s
V40 = 11.11  # 40 km/h in m/s

# Options shared by netconvert and netgenerate.  SUMO builds its default
# "opposites" program from them: main green for two opposing approaches
# (lefts permissive 'g'), then a protected left phase for those approaches
# wherever they have an exclusive left lane, each change followed by 3 s
# yellow and 1 s all-red; greens are stretched to fill the 90 s cycle.
TLS_OPTIONS: tuple[str, ...] = (
    "--tls.default-type",
    "static",
    "--tls.layout",
    "opposites",
    "--tls.cycle.time",
    "90",
    "--tls.left-green.time",
    "10",
    "--tls.yellow.time",
    "3",
    "--tls.allred.time",
    "1",
    # U-turns at signals would need their own phase logic and are not modelled.
    "--no-turnarounds",
)

# Turning shares by approach class; jtrrouter renormalises them over the
# movements an approach actually has.
Shares = dict[str, float]
ARTERIAL_SHARES: Shares = {"l": 0.12, "s": 0.78, "r": 0.10}
SIDE_SHARES: Shares = {"l": 0.20, "s": 0.60, "r": 0.20}
SINGLE_SHARES: Shares = {"l": 0.15, "s": 0.73, "r": 0.12}
GRID_SHARES: Shares = {"l": 0.15, "s": 0.72, "r": 0.13}


@dataclass(frozen=True)
class Scenario:
    """Everything needed to build and describe one scenario."""

    name: str
    description: str
    build_net: Callable[[Path, Path], None]  # (work dir, net file to write)
    # Peak-hour rate in veh/h for each entry edge (None: unknown edge).
    entry_rate: Callable[[str], float | None]
    # Turning shares for an edge that ends at a junction with several exits.
    shares: Callable[[str], Shares]


# ---------------------------------------------------------------------------
# Running SUMO tools and cleaning their output
# ---------------------------------------------------------------------------


def run_tool(tool: str, args: Sequence[str], cwd: Path) -> None:
    """Run a SUMO binary (inside ``cwd``, so that paths stay relative)."""
    cmd = [str(SUMO_HOME / "bin" / tool), *args]
    env = {**os.environ, "SUMO_HOME": str(SUMO_HOME)}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


_HEADER = re.compile(rb"\A(<\?xml[^>]*\?>\s*)<!--.*?-->\s*", re.DOTALL)


def install(src: Path, dst: Path) -> None:
    """Copy a SUMO output to ``dst`` without its generation comment.

    SUMO has no option to suppress the comment (only to replace it with
    metadata elements, which also carry the date), so it is cut out here.
    """
    data = src.read_bytes()
    cleaned, count = _HEADER.subn(rb"\1", data, count=1)
    if count != 1:
        raise RuntimeError(f"{src.name}: no SUMO header comment found")
    dst.write_bytes(cleaned)


# ---------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------


@dataclass
class PlainNet:
    """Plain-XML network description (nodes, edges, connections) for netconvert."""

    nodes: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    edges: list[str] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)

    def node(self, node_id: str, x: float, y: float, signal: bool = False) -> None:
        self.nodes[node_id] = (x, y, "traffic_light" if signal else "priority")

    def road(self, frm: str, to: str, lanes: int, speed: float, bay: float = 0.0) -> None:
        """One direction of a road ``frm`` -> ``to``.

        With ``bay > 0`` the last ``bay`` metres get an extra leftmost lane
        (an exclusive left-turn bay): the edge is split at a bay-start node
        and the inner lane of the upstream part feeds both the inner through
        lane and the bay.
        """
        edge_id = f"{frm}_{to}"
        if bay <= 0:
            self._edge(edge_id, frm, to, lanes, speed)
            return
        (x0, y0, _), (x1, y1, _) = self.nodes[frm], self.nodes[to]
        frac = bay / math.hypot(x1 - x0, y1 - y0)
        split = f"{edge_id}_bs"
        self.node(split, x1 + (x0 - x1) * frac, y1 + (y0 - y1) * frac)
        self._edge(edge_id, frm, split, lanes, speed)
        self._edge(f"{edge_id}_bay", split, to, lanes + 1, speed)
        for lane in range(lanes):
            self._connection(edge_id, f"{edge_id}_bay", lane, lane)
        self._connection(edge_id, f"{edge_id}_bay", lanes - 1, lanes)

    def two_way(
        self, a: str, b: str, lanes: int, speed: float, bay_ab: float = 0.0, bay_ba: float = 0.0
    ) -> None:
        self.road(a, b, lanes, speed, bay_ab)
        self.road(b, a, lanes, speed, bay_ba)

    def _edge(self, edge_id: str, frm: str, to: str, lanes: int, speed: float) -> None:
        self.edges.append(
            f'    <edge id="{edge_id}" from="{frm}" to="{to}" numLanes="{lanes}" '
            f'speed="{speed:.2f}"/>'
        )

    def _connection(self, frm: str, to: str, from_lane: int, to_lane: int) -> None:
        self.connections.append(
            f'    <connection from="{frm}" to="{to}" fromLane="{from_lane}" toLane="{to_lane}"/>'
        )

    def convert(self, work: Path, net_file: Path) -> None:
        """Write the plain files into ``work`` and run netconvert on them."""
        nodes = [
            f'    <node id="{nid}" x="{x:.2f}" y="{y:.2f}" type="{kind}"/>'
            for nid, (x, y, kind) in self.nodes.items()
        ]
        for suffix, root, lines in (
            ("nod", "nodes", nodes),
            ("edg", "edges", self.edges),
            ("con", "connections", self.connections),
        ):
            (work / f"plain.{suffix}.xml").write_text(
                f"<{root}>\n" + "\n".join(lines) + f"\n</{root}>\n", encoding="utf-8"
            )
        run_tool(
            "netconvert",
            [
                "--node-files",
                "plain.nod.xml",
                "--edge-files",
                "plain.edg.xml",
                "--connection-files",
                "plain.con.xml",
                # Keep the coordinates written above (centre junction at 0,0).
                "--offset.disable-normalization",
                *TLS_OPTIONS,
                "--output-file",
                net_file.name,
            ],
            work,
        )


def build_single(work: Path, net_file: Path) -> None:
    """One four-leg signal, 450 m approaches, 2 through lanes + 90 m left bay each."""
    net = PlainNet()
    net.node("C", 0, 0, signal=True)
    for arm, (dx, dy) in {"N": (0, 1), "E": (1, 0), "S": (0, -1), "W": (-1, 0)}.items():
        net.node(arm, 450 * dx, 450 * dy)
        net.road(arm, "C", 2, V50, bay=90)
        net.road("C", arm, 2, V50)
    net.convert(work, net_file)


# Corridor layout: signal x positions (spacings 300/380/260/340 m), and per
# signal the side-street lanes per direction and the north/south leg lengths.
CORRIDOR_X = (0.0, 300.0, 680.0, 940.0, 1280.0)
CORRIDOR_SIDE_LANES = (1, 2, 1, 2, 1)
CORRIDOR_SIDE_LEN = ((220.0, 250.0), (300.0, 280.0), (200.0, 230.0), (280.0, 300.0), (240.0, 210.0))
CORRIDOR_END_LEN = 400.0
CORRIDOR_BAY = 70.0


def build_corridor(work: Path, net_file: Path) -> None:
    """West-east arterial J1..J5, 2 lanes + left bays, 1-2 lane side streets."""
    net = PlainNet()
    net.node("W", CORRIDOR_X[0] - CORRIDOR_END_LEN, 0)
    net.node("E", CORRIDOR_X[-1] + CORRIDOR_END_LEN, 0)
    signals = [f"J{i + 1}" for i in range(len(CORRIDOR_X))]
    for sig, x in zip(signals, CORRIDOR_X):
        net.node(sig, x, 0, signal=True)
    for a, b in zip(["W", *signals], [*signals, "E"]):
        net.two_way(
            a,
            b,
            2,
            V50,
            bay_ab=CORRIDOR_BAY if b != "E" else 0.0,
            bay_ba=CORRIDOR_BAY if a != "W" else 0.0,
        )
    for i, (sig, x) in enumerate(zip(signals, CORRIDOR_X)):
        north, south = f"N{i + 1}", f"S{i + 1}"
        net.node(north, x, CORRIDOR_SIDE_LEN[i][0])
        net.node(south, x, -CORRIDOR_SIDE_LEN[i][1])
        net.two_way(north, sig, CORRIDOR_SIDE_LANES[i], V40)
        net.two_way(south, sig, CORRIDOR_SIDE_LANES[i], V40)
    net.convert(work, net_file)


GRID_SIZE = 4


def grid_signals() -> list[str]:
    """netgenerate names grid junctions column letter + row digit (A0 .. D3)."""
    return [f"{chr(ord('A') + c)}{r}" for c in range(GRID_SIZE) for r in range(GRID_SIZE)]


def build_grid(work: Path, net_file: Path) -> None:
    """4x4 signals, 300 m x 250 m blocks, 2 lanes + 60 m left bay, 250 m legs."""
    run_tool(
        "netgenerate",
        [
            "--grid",
            "--grid.number",
            str(GRID_SIZE),
            "--grid.x-length",
            "300",
            "--grid.y-length",
            "250",
            "--grid.attach-length",
            "250",
            "--default.lanenumber",
            "2",
            "--default.speed",
            str(V50),
            "--turn-lanes",
            "1",
            "--turn-lanes.length",
            "60",
            # Only the 16 grid junctions are signals; the bay starts and the
            # dead ends of the attached legs stay uncontrolled.
            "--default.junctions.type",
            "priority",
            "--tls.set",
            ",".join(grid_signals()),
            *TLS_OPTIONS,
            "--output-file",
            net_file.name,
        ],
        work,
    )


# ---------------------------------------------------------------------------
# Demand
# ---------------------------------------------------------------------------


def write_flows(path: Path, entries: Sequence[tuple[str, float]]) -> None:
    """Poisson flows per entry edge and 15-minute slice (rates in veh/h)."""
    lines = ["<routes>"]
    for k, factor in enumerate(PROFILE):
        begin, end = BEGIN + k * SLICE, BEGIN + (k + 1) * SLICE
        for edge, peak in entries:
            rate = peak * factor / 3600.0
            lines.append(
                f'    <flow id="{edge}.{k}" from="{edge}" begin="{begin}" end="{end}" '
                f'period="exp({rate:.6f})" departLane="best" departSpeed="max"/>'
            )
    lines.append("</routes>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_turns(path: Path, net: sumolib.net.Net, shares: Callable[[str], Shares]) -> None:
    """Turning ratios for every edge with several successors, sinks for the rest."""
    relations: list[str] = []
    sinks: list[str] = []
    for edge in sorted(net.getEdges(), key=lambda e: e.getID()):
        successors = {
            to.getID(): conns[0].getDirection().lower()  # 'L'/'R' (partial) count as l/r
            for to, conns in edge.getOutgoing().items()
        }
        if not successors:
            sinks.append(edge.getID())
            continue
        if len(successors) == 1:
            weights = dict.fromkeys(successors, 1.0)
        else:
            table = shares(edge.getID())
            weights = {to: table[d] for to, d in successors.items()}
        total = sum(weights.values())
        for to in sorted(weights):
            relations.append(
                f'        <edgeRelation from="{edge.getID()}" to="{to}" '
                f'probability="{weights[to] / total:.4f}"/>'
            )
    path.write_text(
        "<edgeRelations>\n"
        f'    <interval begin="{BEGIN}" end="{END}">\n'
        + "\n".join(relations)
        + "\n    </interval>\n"
        f'    <sink edges="{" ".join(sinks)}"/>\n'
        "</edgeRelations>\n",
        encoding="utf-8",
    )


def entry_edges(net: sumolib.net.Net) -> list[str]:
    """Edges no other edge leads into (the network's sources; there are no U-turns)."""
    return sorted(e.getID() for e in net.getEdges() if not e.getIncoming())


# ---------------------------------------------------------------------------
# Scenario definitions
# ---------------------------------------------------------------------------


# Peak-hour entry rates in veh/h.  North-south is the major road.
SINGLE_RATES = {"N_C": 1400.0, "S_C": 1300.0, "E_C": 800.0, "W_C": 700.0}


# Morning-peak direction is eastbound; two-lane cross streets (J2, J4)
# carry more than the one-lane ones.
CORRIDOR_RATES = {"W_J1": 1600.0, "E_J5": 1300.0}
CORRIDOR_SIDE_RATES = {1: 250.0, 2: 450.0}  # by lanes per direction


def corridor_rate(edge: str) -> float | None:
    match = re.fullmatch(r"[NS](\d)_J\1", edge)
    if match:
        return CORRIDOR_SIDE_RATES[CORRIDOR_SIDE_LANES[int(match.group(1)) - 1]]
    return CORRIDOR_RATES.get(edge)


def corridor_shares(edge: str) -> Shares:
    # Arterial approaches are J*_J*_bay / W_J1_bay / E_J5_bay; side streets N*/S*.
    return SIDE_SHARES if edge[0] in "NS" else ARTERIAL_SHARES


# West-east streets are busier than south-north ones.
GRID_RATES = {"horizontal": 1200.0, "vertical": 650.0}


def grid_rate(edge: str) -> float | None:
    # Entry legs are named after their fringe node: left0A0, right3D3, top1B3, ...
    if edge.startswith(("left", "right")):
        return GRID_RATES["horizontal"]
    if edge.startswith(("top", "bottom")):
        return GRID_RATES["vertical"]
    return None


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="single",
            description=(
                "One four-leg signal, 2 through lanes + left bay per approach, protected lefts, "
                "2 h peak demand."
            ),
            build_net=build_single,
            entry_rate=SINGLE_RATES.get,
            shares=lambda edge: SINGLE_SHARES,
        ),
        Scenario(
            name="corridor",
            description=(
                "Five-signal 50 km/h arterial (300/380/260/340 m spacing) with left bays and "
                "side streets, 2 h peak demand."
            ),
            build_net=build_corridor,
            entry_rate=corridor_rate,
            shares=corridor_shares,
        ),
        Scenario(
            name="grid",
            description=(
                "4x4 grid of signals, 2 lanes + left bay per approach, attached entry/exit legs, "
                "2 h peak demand."
            ),
            build_net=build_grid,
            entry_rate=grid_rate,
            shares=lambda edge: GRID_SHARES,
        ),
    )
}


def write_sumocfg(path: Path, name: str) -> None:
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<configuration>\n"
        "    <input>\n"
        f'        <net-file value="{name}.net.xml"/>\n'
        f'        <route-files value="{name}.rou.xml"/>\n'
        "    </input>\n"
        "    <time>\n"
        f'        <begin value="{BEGIN}"/>\n'
        f'        <end value="{END}"/>\n'
        "    </time>\n"
        "</configuration>\n",
        encoding="utf-8",
    )


def generate(scenario: Scenario, out_root: Path) -> Path:
    """Build one scenario into ``out_root/<name>/`` and return that folder."""
    name = scenario.name
    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"scenario-{name}-") as tmp:
        work = Path(tmp)
        net_file = work / f"{name}.net.xml"
        scenario.build_net(work, net_file)
        net = sumolib.net.readNet(str(net_file))

        entries: list[tuple[str, float]] = []
        for edge in entry_edges(net):
            rate = scenario.entry_rate(edge)
            if rate is None:  # a renamed edge must not silently lose its demand
                raise RuntimeError(f"{name}: no demand defined for entry edge {edge}")
            entries.append((edge, rate))
        write_flows(work / "flows.xml", entries)
        write_turns(work / "turns.xml", net, scenario.shares)
        route_file = work / f"{name}.rou.xml"
        run_tool(
            "jtrrouter",
            [
                "--net-file",
                net_file.name,
                "--route-files",
                "flows.xml",
                "--turn-ratio-files",
                "turns.xml",
                "--output-file",
                route_file.name,
                "--begin",
                str(BEGIN),
                "--end",
                str(END),
                "--seed",
                str(SEED),
                # Vehicles reference shared <route id=...> definitions: same routes,
                # a much smaller file.
                "--named-routes",
            ],
            work,
        )

        install(net_file, out / net_file.name)
        install(route_file, out / route_file.name)
        vehicles = sum(1 for _ in sumolib.xml.parse_fast(str(route_file), "vehicle", ["id"]))
        tls_ids = sorted(tls.getID() for tls in net.getTrafficLights())

    write_sumocfg(out / f"{name}.sumocfg", name)
    meta = {
        "name": name,
        "description": scenario.description,
        "generated_by": "scenarios/generate.py",
        "net_file": f"{name}.net.xml",
        "route_file": f"{name}.rou.xml",
        "config_file": f"{name}.sumocfg",
        "begin": BEGIN,
        "end": END,
        "tls_ids": tls_ids,
        "vehicles": vehicles,
        "seed": SEED,
        "default": name == DEFAULT_SCENARIO,
    }
    (out / "scenario.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output root, one sub-folder per scenario (default: scenarios/sumo)",
    )
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="build just this scenario")
    args = parser.parse_args(argv)
    names = [args.only] if args.only else list(SCENARIOS)
    for name in names:
        folder = generate(SCENARIOS[name], args.out)
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
