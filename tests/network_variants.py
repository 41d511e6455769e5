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
        text = text.replace(
            '<phase duration="28" state="GGGgrrrrGGGgrrrr"/>',
            '<phase duration="78" minDur="5" maxDur="50" state="GGGgrrrrGGGgrrrr"/>',
            1,
        )
        return text.replace(
            '<phase duration="10" state="rrrGrrrrrrrGrrrr"/>',
            '<phase duration="6" minDur="7" maxDur="50" state="rrrGrrrrrrrGrrrr"/>',
            1,
        )

    return _edit(folder, "contradicting", edit)


def unused_state(folder: Path) -> Path:
    """Link index 3 of the signal moved to a new index 16, leaving state 3 unused (SUMO's
    tlsCycleAdaptation.py fails on it with an IndexError)."""

    def edit(text: str) -> str:
        text = text.replace('tl="C" linkIndex="3"', 'tl="C" linkIndex="16"')
        return _PHASE_STATE.sub(
            lambda m: f'{m.group(1)}{m.group(2)[:3]}r{m.group(2)[4:]}{m.group(2)[3]}"', text
        )

    return _edit(folder, "unused-state", edit)


def no_yellow(folder: Path) -> Path:
    """Yellows replaced by all-red: green goes to red, as in networks converted from other tools."""
    return _edit(
        folder,
        "no-yellow",
        lambda text: _PHASE_STATE.sub(
            lambda m: m.group(1) + re.sub("[yY]", "r", m.group(2)) + '"', text
        ),
    )


def long_minimum_greens(folder: Path) -> Path:
    """Greens of 60-70 s with minimum greens of 45-60 s: their minimums and change intervals
    need a 226 s cycle, above the optimizer's longest (180 s). SUMO runs the program as it is."""

    def edit(text: str) -> str:
        for state, (duration, min_dur) in {
            "GGGgrrrrGGGgrrrr": (70, 60),
            "rrrGrrrrrrrGrrrr": (50, 45),
            "rrrrGGGgrrrrGGGg": (70, 60),
            "rrrrrrrGrrrrrrrG": (50, 45),
        }.items():
            text = re.sub(
                rf'<phase duration="\d+"\s+state="{state}"/>',
                f'<phase duration="{duration}" minDur="{min_dur}" maxDur="{duration}" '
                f'state="{state}"/>',
                text,
            )
        return text

    return _edit(folder, "long-minimum-greens", edit)


def missing_internal_connection(folder: Path) -> Path:
    """The connection from the first half of the north approach's left turn to its second half
    (``:C_3`` -> ``C_E`` via ``:C_16_0``) removed: SUMO 1.28 crashes (SIGSEGV) when a vehicle
    turns there. ``netconvert`` rebuilds the junction whole."""
    return _edit(
        folder,
        "missing-internal-connection",
        lambda text: re.sub(
            r'\s*<connection from=":C_3" to="C_E"[^>]*via=":C_16_0"[^>]*/>', "", text
        ),
    )


def mixed_demand(folder: Path) -> Path:
    """A second route file for `single`: a bicycle flow, a car flow given by its end edges (SUMO
    routes it), and pedestrians walking across the junction."""
    path = folder / "mixed.rou.xml"
    path.write_text(
        "<routes>\n"
        '    <vType id="bike" vClass="bicycle"/>\n'
        '    <flow id="bikes" type="bike" begin="0" end="3600" period="40" from="W_C" to="C_E"/>\n'
        '    <flow id="cars" begin="0" end="3600" vehsPerHour="120" from="S_C" to="C_W"/>\n'
        '    <personFlow id="walkers" begin="0" end="3600" period="60">\n'
        '        <walk from="N_C" to="C_S"/>\n'
        "    </personFlow>\n"
        "</routes>\n"
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
        [
            sumo_binary("sumo"),
            "-n",
            "single.net.xml.gz",
            "-r",
            "single.rou.xml,mixed.rou.xml",
            "--begin",
            begin,
            "--end",
            end,
            "--step-length",
            "0.5",
            "--save-configuration",
            config.name,
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return config


def _sumo(tool: str, *args: str, cwd: Path) -> None:
    import subprocess
    import sys

    from citybrain_traffic.sim.session import sumo_binary, sumo_tool

    command = (
        [sys.executable, str(sumo_tool(tool))] if tool.endswith(".py") else [sumo_binary(tool)]
    )
    subprocess.run([*command, *args], cwd=cwd, check=True, capture_output=True)


def random_demand(
    folder: Path, net: Path, *, end_s: int = 900, pedestrians: bool = False, seed: int = 1
) -> str:
    """Route files for ``net`` from SUMO's randomTrips.py (cars every 2 s; with ``pedestrians``,
    a walker every 4 s too), as a comma-separated list."""
    cars = folder / f"{net.stem}.cars.rou.xml"
    _sumo(
        "randomTrips.py",
        "-n",
        str(net),
        "-o",
        str(cars),
        "-e",
        str(end_s),
        "-p",
        "2",
        "--seed",
        str(seed),
        "--validate",
        "--fringe-factor",
        "5",
        cwd=folder,
    )
    files = [cars]
    if pedestrians:
        walkers = folder / f"{net.stem}.walkers.rou.xml"
        _sumo(
            "randomTrips.py",
            "-n",
            str(net),
            "-o",
            str(walkers),
            "-e",
            str(end_s),
            "-p",
            "4",
            "--seed",
            str(seed + 1),
            "--pedestrians",
            "--prefix",
            "w",
            cwd=folder,
        )
        files.append(walkers)
    return ",".join(map(str, files))


def crossing_grid(folder: Path, *, layout: str = "opposites") -> Path:
    """A 3x3 grid from netgenerate with sidewalks, pedestrian crossings and signals netconvert
    guessed: every program has a 5 s pedestrian clearance after each green. ``layout`` is
    netgenerate's ``--tls.layout``: ``opposites`` (two greens), ``incoming`` (a green per
    incoming road, three or four)."""
    path = folder / (
        "crossings.net.xml" if layout == "opposites" else f"crossings-{layout}.net.xml"
    )
    _sumo(
        "netgenerate",
        "--grid",
        "--grid.number",
        "3",
        "--grid.length",
        "150",
        "--default.lanenumber",
        "2",
        "--tls.guess",
        "--sidewalks.guess",
        "--crossings.guess",
        "--tls.layout",
        layout,
        "-o",
        str(path),
        cwd=folder,
    )
    return path


def generated_grid(folder: Path, name: str, *options: str) -> Path:
    """A 3x3 two-lane grid with attached fringe roads from netgenerate, signals guessed, plus
    ``options`` (netgenerate's, e.g. ``--tls.default-type actuated``)."""
    path = folder / f"{name}.net.xml"
    _sumo(
        "netgenerate",
        "--grid",
        "--grid.number",
        "3",
        "--grid.length",
        "150",
        "--grid.attach-length",
        "100",
        "--default.lanenumber",
        "2",
        "--tls.guess",
        *options,
        "-o",
        str(path),
        cwd=folder,
    )
    return path


def joined_spider(folder: Path) -> Path:
    """A spider net whose close signalized junctions netconvert joins into clusters (one signal
    controlling several junctions)."""
    path = folder / "joined.net.xml"
    _sumo(
        "netgenerate",
        "--spider",
        "--spider.arm-number",
        "4",
        "--spider.circle-number",
        "2",
        "--spider.space-radius",
        "40",
        "--spider.attach-length",
        "100",
        "--default.lanenumber",
        "2",
        "--tls.guess",
        "--tls.join",
        "--tls.join-dist",
        "50",
        "-o",
        str(path),
        cwd=folder,
    )
    return path


def random_net(folder: Path) -> Path:
    """A random net (netgenerate --rand, seeded) with guessed signals and no internal lanes."""
    path = folder / "random.net.xml"
    _sumo(
        "netgenerate",
        "--rand",
        "--rand.iterations",
        "60",
        "--seed",
        "7",
        "--default.lanenumber",
        "2",
        "--tls.guess",
        "--no-internal-links",
        "-o",
        str(path),
        cwd=folder,
    )
    return path


def single_green(folder: Path) -> Path:
    """A signal on a straight road (a ramp meter or mid-block stop): one green and its yellow."""
    path = folder / "single-green.net.xml"
    _sumo(
        "netgenerate",
        "--grid",
        "--grid.x-number",
        "3",
        "--grid.y-number",
        "1",
        "--grid.length",
        "200",
        "--default.lanenumber",
        "1",
        "--tls.set",
        "B0",
        "-o",
        str(path),
        cwd=folder,
    )
    return path


def state_variety(folder: Path) -> Path:
    """`single` with the states real files have beyond G/g/y/r: right turns on red after a stop
    (``s``), a red-yellow before the second green (``u``), a link off and blinking (``o``), and an
    offset and ``next`` in the program."""

    def edit(text: str) -> str:
        states = [m.group(2) for m in _PHASE_STATE.finditer(text)]
        new = [
            "".join("s" if k in (0, 4, 8, 12) and c == "r" else c for k, c in enumerate(st))[:15]
            + "o"
            for st in states
        ]
        # The all-red before the second green becomes red-yellow for the links it is about to serve.
        new[4] = "".join("u" if b in "Gg" else a for a, b in zip(new[4], new[5]))
        phases = iter(new)
        text = _PHASE_STATE.sub(lambda m: f'{m.group(1)}{next(phases)}"', text)
        text = text.replace(f'state="{new[4]}"/>', f'state="{new[4]}" next="5"/>', 1)
        return text.replace(
            '<tlLogic id="C" type="static" programID="0" offset="0">',
            '<tlLogic id="C" type="static" programID="0" offset="17">',
        )

    return _edit(folder, "state-variety", edit)


def waut_programs(folder: Path, net: Path) -> Path:
    """An additional file giving ``net``'s signals a second program (10 s moved from the last
    green to the first) and a WAUT that switches to it at 270 s and back at 540 s (cycle
    boundaries of the grid's 90 s programs)."""
    from citybrain_traffic.network import read_network

    network = read_network(net)
    root = ["<additional>"]
    for tls, intersection in network.intersections.items():
        root.append(f'    <tlLogic id="{tls}" type="static" programID="evening" offset="0">')
        greens = [k for k, p in enumerate(intersection.phases) if p.is_green]
        for k, p in enumerate(
            intersection.phases
        ):  # the same cycle, 10 s moved from the last green to the first
            duration = p.duration + (
                10 if k == greens[0] else -10 if k == greens[-1] and len(greens) > 1 else 0
            )
            root.append(f'        <phase duration="{duration:g}" state="{p.state}"/>')
        root.append("    </tlLogic>")
    root.append('    <WAUT refTime="0" id="w" startProg="0">')
    # At cycle boundaries (both programs run 90 s): SUMO switches a WAUT's programs at once.
    root.append('        <wautSwitch time="270" to="evening"/>')
    root.append('        <wautSwitch time="540" to="0"/>')
    root.append("    </WAUT>")
    root += [f'    <wautJunction wautID="w" junctionID="{tls}"/>' for tls in network.intersections]
    root.append("</additional>")
    path = folder / f"{net.stem}.waut.add.xml"
    path.write_text("\n".join(root) + "\n")
    return path


#: The corpus: every signal-program feature found in real files, each on a small network.
CORPUS = (
    "static",
    "actuated",
    "delay-based",
    "nema",
    "waut",
    "joined",
    "crossings",
    "unused-state",
    "state-variety",
    "no-internal-lanes",
    "single-green",
    "contradicting-ranges",
    "no-yellow",
)


def corpus_scenario(folder: Path, name: str, *, end_s: float = 600):
    """Scenario ``name`` of ``CORPUS`` in ``folder`` (made there with SUMO's tools), with random
    demand from randomTrips.py up to ``end_s``."""
    from dataclasses import replace

    from citybrain_traffic.scenario import load_scenario

    folder.mkdir(parents=True, exist_ok=True)
    edited = {
        "unused-state": unused_state,
        "state-variety": state_variety,
        "contradicting-ranges": contradicting_ranges,
        "no-yellow": no_yellow,
    }
    additional: tuple[Path, ...] = ()
    if name in edited:
        net, routes = edited[name](folder), str(single_files()[1])
    else:
        if name in ("static", "waut"):
            net = generated_grid(folder, name)
        elif name in ("actuated", "delay-based", "nema"):
            net = generated_grid(
                folder,
                name,
                "--tls.default-type",
                {"delay-based": "delay_based", "nema": "NEMA"}.get(name, name),
            )
        elif name == "joined":
            net = joined_spider(folder)
        elif name == "crossings":
            net = crossing_grid(folder)
        elif name == "no-internal-lanes":
            net = random_net(folder)
        elif name == "single-green":
            net = single_green(folder)
        else:
            raise ValueError(f"unknown corpus network {name!r}: {', '.join(CORPUS)}")
        routes = random_demand(folder, net, end_s=int(end_s), pedestrians=name == "crossings")
        if name == "waut":
            additional = (waut_programs(folder, net),)
    scenario = load_scenario(net=net, routes=routes, end=end_s)
    return replace(scenario, name=name, additional_files=additional)


#: Every controller the corpus runs (adaptive forecasts from the run's own counts: no history).
CORPUS_CONTROLLERS = (
    "fixed",
    "actuated",
    "actuated-rebuilt",
    "webster",
    "max-pressure",
    "optimized",
    "adaptive",
)


def corpus_matrix(
    folder: Path, names=CORPUS, controllers=CORPUS_CONTROLLERS, *, end_s: float = 600, jobs: int = 2
) -> list[dict]:
    """Every controller on every corpus network, seed 1: one row each with ``outcome`` ``ok``
    (run, with its delay, arrivals and safety violations counted on SUMO's states), ``refused``
    (the controller's one-line reason) or ``failed`` (anything else, with its message)."""
    from citybrain_traffic.errors import CTrafficError, InputError
    from citybrain_traffic.experiments.simulate import prepare_controllers
    from citybrain_traffic.harness.matrix import run_matrix
    from citybrain_traffic.harness.runner import RunSpec
    from citybrain_traffic.network import read_network

    rows, specs = [], []
    for name in names:
        scenario = corpus_scenario(folder / name, name, end_s=end_s)
        network = read_network(scenario.net_file)
        for controller in controllers:
            row = {"network": name, "controller": controller, "signals": len(network.intersections)}
            try:
                prepared = prepare_controllers(
                    scenario,
                    network,
                    [controller],
                    demand_scale=1.0,
                    workdir=folder / name / "prep",
                    options={"adaptive": {"history_days": 0}},
                )[controller]
            except InputError as exc:
                rows.append({**row, "outcome": "refused", "detail": str(exc)})
                continue
            except (CTrafficError, Exception) as exc:  # noqa: BLE001  (the matrix reports every failure)
                rows.append({**row, "outcome": "failed", "detail": f"{type(exc).__name__}: {exc}"})
                continue
            rows.append(row)
            specs.append(
                (
                    row,
                    RunSpec(
                        scenario=scenario,
                        network=network,
                        controller=prepared,
                        seed=1,
                        workdir=folder / name / controller,
                    ),
                )
            )
    for row, spec in specs:
        try:
            (result,) = run_matrix([spec])
        except Exception as exc:  # noqa: BLE001
            row.update(outcome="failed", detail=f"{type(exc).__name__}: {exc}")
            continue
        row.update(
            outcome="ok",
            detail="; ".join(result.safety_violations[:2]),
            mean_delay_s=result.kpis["mean_delay_s"],
            vehicles_arrived=result.kpis["vehicles_arrived"],
            safety_violations=len(result.safety_violations),
        )
    return rows
