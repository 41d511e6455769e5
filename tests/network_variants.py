"""Hand-edited variants of the bundled `single` network, each with a feature real files have."""

from __future__ import annotations

import re
from pathlib import Path

from citybrain_traffic.scenario import load_scenario

_PHASE_STATE = re.compile(r'(<phase [^>]*state=")([rRyYgGsuoO]+)"')


def single_files() -> tuple[Path, Path]:
    """The bundled `single` scenario's network and routes."""
    sc = load_scenario("single")
    return sc.net_file, sc.route_files[0]


def _edit(folder: Path, name: str, edit) -> Path:
    net, _ = single_files()
    path = folder / f"{name}.net.xml"
    path.write_text(edit(net.read_text()))
    return path


def contradicting_ranges(folder: Path) -> Path:
    """A static program whose minDur/maxDur contradict its durations: a 78 s green with maxDur 50,
    and a 6 s green with minDur 7 (SUMO ignores both on a static program)."""
    def edit(text: str) -> str:
        text = text.replace('<phase duration="28" state="GGGgrrrrGGGgrrrr"/>',
                            '<phase duration="78" minDur="5" maxDur="50" state="GGGgrrrrGGGgrrrr"/>', 1)
        return text.replace('<phase duration="10" state="rrrGrrrrrrrGrrrr"/>',
                            '<phase duration="6" minDur="7" maxDur="50" state="rrrGrrrrrrrGrrrr"/>', 1)

    return _edit(folder, "contradicting", edit)


def unused_state(folder: Path) -> Path:
    """Link index 3 of the signal moved to a new index 16, leaving state 3 unused (SUMO's
    tlsCycleAdaptation.py fails on it with an IndexError)."""
    def edit(text: str) -> str:
        text = text.replace('tl="C" linkIndex="3"', 'tl="C" linkIndex="16"')
        return _PHASE_STATE.sub(lambda m: f'{m.group(1)}{m.group(2)[:3]}r{m.group(2)[4:]}{m.group(2)[3]}"', text)

    return _edit(folder, "unused-state", edit)


def no_yellow(folder: Path) -> Path:
    """Yellows replaced by all-red: green goes to red, as in networks converted from other tools."""
    return _edit(folder, "no-yellow", lambda text: _PHASE_STATE.sub(
        lambda m: m.group(1) + re.sub("[yY]", "r", m.group(2)) + '"', text))


def mixed_demand(folder: Path) -> Path:
    """A second route file for `single`: a bicycle flow, a car flow given by its end edges (SUMO
    routes it), and pedestrians walking across the junction."""
    path = folder / "mixed.rou.xml"
    path.write_text(
        '<routes>\n'
        '    <vType id="bike" vClass="bicycle"/>\n'
        '    <flow id="bikes" type="bike" begin="0" end="3600" period="40" from="W_C" to="C_E"/>\n'
        '    <flow id="cars" begin="0" end="3600" vehsPerHour="120" from="S_C" to="C_W"/>\n'
        '    <personFlow id="walkers" begin="0" end="3600" period="60">\n'
        '        <walk from="N_C" to="C_S"/>\n'
        '    </personFlow>\n'
        '</routes>\n'
    )
    return path


def sumo_saved_config(folder: Path, *, begin: str = "0:0:0", end: str = "0:10:0") -> Path:
    """A configuration as SUMO 1.28 writes it (``sumo --save-configuration``): root
    ``<sumoConfiguration>``, a gzipped net, two route files, times as h:m:s, step length 0.5 s."""
    import gzip
    import shutil
    import subprocess

    from citybrain_traffic.sim.session import sumo_binary

    net, routes = single_files()
    with open(net, "rb") as src, gzip.open(folder / "single.net.xml.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    shutil.copy(routes, folder / "single.rou.xml")
    mixed_demand(folder)
    config = folder / "saved.sumocfg"
    subprocess.run(
        [sumo_binary("sumo"), "-n", "single.net.xml.gz", "-r", "single.rou.xml,mixed.rou.xml", "--begin", begin,
         "--end", end, "--step-length", "0.5", "--save-configuration", config.name],
        cwd=folder, check=True, capture_output=True,
    )
    return config


def _sumo(tool: str, *args: str, cwd: Path) -> None:
    import subprocess
    import sys

    from citybrain_traffic.sim.session import sumo_binary, sumo_tool

    command = [sys.executable, str(sumo_tool(tool))] if tool.endswith(".py") else [sumo_binary(tool)]
    subprocess.run([*command, *args], cwd=cwd, check=True, capture_output=True)


def random_demand(folder: Path, net: Path, *, end_s: int = 900, pedestrians: bool = False, seed: int = 1) -> str:
    """Route files for ``net`` from SUMO's randomTrips.py (cars every 2 s; with ``pedestrians``,
    a walker every 4 s too), as a comma-separated list."""
    cars = folder / f"{net.stem}.cars.rou.xml"
    _sumo("randomTrips.py", "-n", str(net), "-o", str(cars), "-e", str(end_s), "-p", "2", "--seed", str(seed),
          "--validate", "--fringe-factor", "5", cwd=folder)
    files = [cars]
    if pedestrians:
        walkers = folder / f"{net.stem}.walkers.rou.xml"
        _sumo("randomTrips.py", "-n", str(net), "-o", str(walkers), "-e", str(end_s), "-p", "4", "--seed",
              str(seed + 1), "--pedestrians", "--prefix", "w", cwd=folder)
        files.append(walkers)
    return ",".join(map(str, files))


def crossing_grid(folder: Path) -> Path:
    """A 3x3 grid from netgenerate with sidewalks, pedestrian crossings and signals netconvert
    guessed: every program has a 5 s pedestrian clearance after each green."""
    path = folder / "crossings.net.xml"
    _sumo("netgenerate", "--grid", "--grid.number", "3", "--grid.length", "150", "--default.lanenumber", "2",
          "--tls.guess", "--sidewalks.guess", "--crossings.guess", "-o", str(path), cwd=folder)
    return path
