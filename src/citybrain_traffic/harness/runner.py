"""Run one simulation with one controller and seed, and measure it."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from .. import safety
from ..clock import SIM_DAY_ZERO
from ..control.base import Controller, RunContext
from ..control.signal import TrafficSignal
from ..network import Network, Phase, mark_pedestrian_clearances
from ..scenario import Scenario
from ..sim import metrics
from ..sim.additionals import (
    induction_loops_xml,
    measurement_xml,
    tls_state_output_xml,
    write_additional,
)
from ..sim.detectors import movement_loops, read_movement_counts
from ..sim.emergency import RED_OBEY, EmergencyVehicle, emergency_routes_xml
from ..sim.outputs import run_additionals
from ..sim.session import Session, SumoCommand, sumo_binary
from .emergency import EmergencyMeter, emergency_kpis, split_emergency
from .max_red import MaxRedMeter, sample_period

#: Seconds of simulation between time-series samples from SUMO's summary output.
SUMMARY_PERIOD_S = 10


@dataclass(frozen=True)
class RunSpec:
    """One simulation: scenario, controller, seed and run options.

    ``time_to_teleport`` is SUMO's (s; negative disables teleporting, the default here, so that a
    gridlock shows up in the KPIs instead of vanishing). ``demand_scale`` multiplies the demand
    (SUMO's ``--scale``). ``workdir`` receives SUMO's outputs.
    """

    scenario: Scenario
    network: Network
    #: A fitted controller (it must pickle: a spawned worker receives a copy).
    controller: Controller
    seed: int
    workdir: Path
    #: Additional files of this run alone (an incident of a simulated day), after the controller's.
    additional_files: tuple[Path, ...] = ()
    demand_scale: float = 1.0
    time_to_teleport: float = -1.0
    gui: bool = False
    #: Movement counts per bin of this many s (None: no counting); simulation time 0 is midnight
    #: of ``day`` in the timestamps.
    count_bin_s: float | None = None
    day: pd.Timestamp = SIM_DAY_ZERO
    #: Emergency vehicles added to the run (``sim.emergency``), measured apart from the KPIs.
    emergency: tuple[EmergencyVehicle, ...] = ()
    #: What they do at a red signal: ``sim.emergency.RED_MODES``.
    emergency_red: str = RED_OBEY

    @property
    def controller_name(self) -> str:
        """The controller's name, as the results show it."""
        return self.controller.name

    @property
    def key(self) -> str:
        """``"<controller> seed <n>"``, naming the run in messages."""
        return f"{self.controller_name} seed {self.seed}"

    @property
    def net_file(self) -> Path:
        """The network file SUMO loads: the controller's rebuilt one, else the scenario's."""
        return self.controller.setup.net_file or self.network.path

    @property
    def run_additional_files(self) -> tuple[Path, ...]:
        """The controller's additional files, then the run's own."""
        return (*self.controller.setup.additional_files, *self.additional_files)


@dataclass(frozen=True)
class RunResult:
    """What one run measured: KPIs, per-approach table, time series, and timings (s)."""

    scenario: str
    controller: str
    seed: int
    kpis: dict[str, float]
    approaches: pd.DataFrame
    series: pd.DataFrame
    wall_time_s: float
    control_time_s: float
    workdir: Path
    #: Movement counts (``sim.detectors`` table) when the run counted, else None.
    counts: pd.DataFrame | None = None
    #: What the controller handed back (``Controller.report``).
    controller_report: object = None
    #: Every way the signal states SUMO showed left the safety envelope (``safety.run_violations``).
    safety_violations: tuple[str, ...] = ()
    #: Decisions that failed during the run (a forecast, an optimization); the plan ran on.
    control_failures: int = 0
    #: Per signal, the longest red a vehicle waiting at its stop line saw (s, ``MaxRedMeter``).
    max_red_waiting_s: dict[str, float] = field(default_factory=dict)
    #: One row per emergency vehicle (``harness.emergency.EMERGENCY_COLUMNS``), when it had some.
    emergency: pd.DataFrame | None = None

    @property
    def max_red_s(self) -> float:
        """The longest red any waiting vehicle saw at any signal (s; 0 without signals)."""
        return max(self.max_red_waiting_s.values(), default=0.0)

    def summary_row(self) -> dict:
        """Return the run's row of ``summary.csv``."""
        return {
            "scenario": self.scenario,
            "controller": self.controller,
            "seed": self.seed,
            **self.kpis,
            "safety_violations": len(self.safety_violations),
            "max_red_s": self.max_red_s,
            "control_failures": self.control_failures,
            "wall_time_s": self.wall_time_s,
            "control_time_s": self.control_time_s,
            **({} if self.emergency is None else emergency_kpis(self.emergency)),
        }


def sumo_command(spec: RunSpec) -> SumoCommand:
    """Return a run's SUMO command: scenario, controller's setup, seed, window, outputs."""
    sc, out = spec.scenario, spec.workdir
    measure = [_write_measurement(spec)]
    if spec.count_bin_s is not None:
        loops = [(loop.id, loop.lane) for loop in movement_loops(spec.network)]
        counting = induction_loops_xml(
            loops, period_s=spec.count_bin_s, output=str((out / "movement-loops.xml").resolve())
        )
        measure.append(write_additional(out / "movement-loops.add.xml", counting))
    states = tls_state_output_xml(sorted(spec.network.intersections), out / "tls-states.xml")
    measure.append(write_additional(out / "tls-states.add.xml", states))
    vehicles = []
    if spec.emergency:
        routes = emergency_routes_xml(spec.emergency, red=spec.emergency_red)
        vehicles.append(write_additional(out / "emergency.rou.xml", routes))
    additionals = [
        *run_additionals(sc.additional_files, out),
        *spec.run_additional_files,
        *vehicles,
        *measure,
    ]
    args = [
        sumo_binary("sumo"),
        *sc.sumo_args(net_file=spec.controller.setup.net_file),
        "--begin",
        f"{sc.begin:g}",
        "--end",
        f"{sc.end:g}",
        "--seed",
        str(spec.seed),
        "--time-to-teleport",
        f"{spec.time_to_teleport:g}",
        "--scale",
        f"{spec.demand_scale:g}",
        "--additional-files",
        ",".join(str(Path(p).resolve()) for p in additionals),
        "--tripinfo-output",
        str(out / "tripinfo.xml.gz"),
        "--tripinfo-output.write-unfinished",
        "--tripinfo-output.write-undeparted",
        "--summary-output",
        str(out / "summary.xml.gz"),
        "--summary-output.period",
        str(SUMMARY_PERIOD_S),
        "--statistic-output",
        str(out / "statistics.xml"),
        "--collision-output",
        str(out / "collisions.xml"),
        "--error-log",
        str(out / "sumo.log"),
        "--no-step-log",
        "--duration-log.disable",
    ]
    return SumoCommand(args=tuple(args), error_log=out / "sumo.log", gui=spec.gui)


def _write_measurement(spec: RunSpec) -> Path:
    """Write the additional file asking SUMO for time loss and counts on every approach edge."""
    edges = sorted(
        {e for i in spec.network.intersections.values() for a in i.approaches for e in a.edges}
    )
    return write_additional(
        spec.workdir / "measure.add.xml",
        measurement_xml(
            edges,
            output=(spec.workdir / "edgedata.xml").resolve(),
            begin=spec.scenario.begin,
            end=spec.scenario.end,
        ),
    )


def run_simulation(spec: RunSpec, *, progress: Callable[[float], None] | None = None) -> RunResult:
    """Run one simulation to the end of the window and measure it.

    Parameters
    ----------
    spec
        The run.
    progress
        Called now and then with the simulation time (s).
    """
    spec.workdir.mkdir(parents=True, exist_ok=True)
    controller = spec.controller
    command = sumo_command(spec)
    end = spec.scenario.end
    report_every = max(60.0, spec.scenario.duration_s / 100)
    control_time = 0.0
    started = time.perf_counter()
    with Session(command) as sim:
        signals = (
            _signals(sim.api, spec.network, controller.setup.net_file)
            if controller.needs_signals
            else {}
        )
        measured = _measured_signals(sim.api, spec.network)
        meter = MaxRedMeter(sim.api, measured)
        emergency = (
            EmergencyMeter(sim.api, spec.emergency, red=spec.emergency_red, signals=measured)
            if spec.emergency
            else None
        )
        tick = time.perf_counter()
        wake = controller.start(RunContext(sim.api, spec.network, signals), sim.time)
        control_time += time.perf_counter() - tick
        step = sim.api.simulation.getDeltaT()
        every = sample_period(step)
        next_report = sim.time + report_every
        next_sample = sim.time + every
        while sim.time < end - 1e-9:
            target = min(
                end,
                next_report,
                next_sample,
                math.inf if wake is None else max(wake, sim.time + step),
                math.inf if emergency is None else emergency.wake(sim.time, step),
            )
            sim.run_until(target)
            now = sim.time
            if emergency is not None:
                emergency.sample(now)
            if now >= next_sample - 1e-9:
                # Before the controller acts: the states SUMO showed in the step just run.
                meter.sample(now)
                next_sample += every
            if wake is not None and now >= wake - 1e-9:
                tick = time.perf_counter()
                wake = controller.step(now)
                control_time += time.perf_counter() - tick
            if now >= next_report - 1e-9:
                if progress is not None:
                    progress(now)
                next_report += report_every
        vehicle_classes = sim.vehicle_classes()
        max_red = meter.finish(sim.time)
    wall = time.perf_counter() - started
    out = spec.workdir
    trips, walks = metrics.read_trips(out / "tripinfo.xml.gz", vehicle_classes=vehicle_classes)
    emergency_rows = None
    if emergency is not None:
        trips, emergency_rows = split_emergency(
            trips, spec.emergency, emergency.tracks, out / "collisions.xml"
        )
    kpis = metrics.trip_kpis(
        trips,
        walks=walks,
        window_s=spec.scenario.duration_s,
        teleports=metrics.read_teleports(out / "statistics.xml"),
        collisions=metrics.read_collisions(
            out / "collisions.xml", exclude={v.id for v in spec.emergency}
        ),
    )
    unsafe = tuple(
        safety.run_violations(
            out / "tls-states.xml",
            spec.network,
            [*spec.scenario.additional_files, *spec.run_additional_files],
            net_file=spec.controller.setup.net_file,
        )
    )
    counts = None
    if spec.count_bin_s is not None:
        counts = read_movement_counts(
            out / "movement-loops.xml", movement_loops(spec.network), origin=spec.day
        )
    return RunResult(
        scenario=spec.scenario.name,
        controller=spec.controller_name,
        seed=spec.seed,
        kpis=kpis,
        approaches=metrics.approach_table(out / "edgedata.xml", spec.network),
        series=metrics.time_series(out / "summary.xml.gz", begin=spec.scenario.begin),
        wall_time_s=wall,
        control_time_s=control_time,
        workdir=out,
        counts=counts,
        controller_report=controller.report(),
        safety_violations=unsafe,
        control_failures=controller.failures(),
        max_red_waiting_s=max_red,
        emergency=emergency_rows,
    )


def _measured_signals(api, network: Network) -> list[str]:
    """Return the signals whose waits are measured: the network's that SUMO runs."""
    return [tls for tls in api.trafficlight.getIDList() if tls in network.intersections]


def _signals(api, network: Network, net_file: Path | None = None) -> dict[str, TrafficSignal]:
    """Return a TrafficSignal for every signal of the network, on the running program.

    ``net_file``: the net the run loads instead of the network's (its junctions' foes count).
    """
    tl = api.trafficlight
    foes = safety.network_foes(net_file or network.path)
    signals = {}
    for tls_id in tl.getIDList():
        intersection = network.intersections.get(tls_id)
        if intersection is None:
            continue
        running = tl.getProgram(tls_id)
        logic = next(lg for lg in tl.getAllProgramLogics(tls_id) if lg.programID == running)
        phases = tuple(
            Phase(p.state, float(p.duration), float(p.minDur), float(p.maxDur))
            for p in logic.phases
        )
        phases = mark_pedestrian_clearances(phases, intersection.crossings)
        envelope = safety.envelope(tls_id, phases, foes.get(tls_id, {}))
        signals[tls_id] = TrafficSignal(api, intersection, phases, envelope)
    return signals
