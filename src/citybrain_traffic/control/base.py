"""The controller protocol, and the registry of controllers by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, NotApplicableError

if TYPE_CHECKING:
    from ..network import Network
    from ..plans import TimingPlan
    from ..scenario import Scenario
    from .signal import TrafficSignal


@dataclass(frozen=True)
class SimSetup:
    """What a controller changes about a run before it starts (made once, shared by all seeds).

    ``net_file`` replaces the scenario's network; ``additional_files`` are loaded after the
    scenario's own (a ``tlLogic`` there becomes the running program); ``notes`` are shown to the user.
    """

    net_file: Path | None = None
    additional_files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    #: Timing plans to run: (from simulation time s, plan), validated in ``prepare``.
    schedule: tuple[tuple[float, "TimingPlan"], ...] = ()
    #: Whatever else the controller hands from ``prepare`` to its runs: (key, JSON text) pairs.
    data: tuple[tuple[str, str], ...] = ()


class Controller:
    """Base class of controllers; as it stands it leaves the signals to their programs.

    Subclasses override what they need:

    - ``prepare``: seed-independent work before any run (write a program, rebuild a net), in the
      main process, once per scenario and demand;
    - ``start`` and ``step``: during a run, in the run's process, with ``self.setup`` set to
      what ``prepare`` returned. Both get the simulation time (s) and return the next time the
      controller wants to act, or ``None`` for never; the harness advances SUMO straight there.
    """

    setup: SimSetup = SimSetup()

    name = ""
    description = ""
    #: Whether ``start`` needs TrafficSignal objects (building them costs TraCI calls).
    needs_signals = False
    #: Whether ``ctraffic controllers`` lists it (measuring tools are not signal controllers).
    listed = True
    #: Whether it runs programs of its own (or switches states live) in place of the network's.
    replaces_programs = False
    #: Whether those programs come from a phase design of their own (netconvert's), not the network's.
    designs_phases = False

    def configure(self, **options) -> "Controller":
        """Apply command-line options meant for this controller (most take none)."""
        if options:
            raise InputError(
                f"controller {self.name!r} takes no options; got {', '.join(sorted(options))}"
            )
        return self

    def prepare(
        self, scenario: "Scenario", network: "Network", workdir: Path, *, demand_scale: float
    ) -> SimSetup:
        return SimSetup()

    def check_applicable(self, scenario: "Scenario", network: "Network") -> None:
        """Refuse, with one line, a network whose signals this controller cannot run safely.

        A controller that replaces programs builds standard SUMO programs from the network's
        phases, whose change intervals are phases. A NEMA program keeps its yellow and all-red in
        phase attributes instead (they would be lost), and a WAUT switches a signal's program
        at its own times (it would cut the controller's program short).

        Raises
        ------
        NotApplicableError
            Naming the first signals concerned and what to run instead.
        """
        if not self.replaces_programs:
            return
        from ..scenario import waut_signals

        nema = [tls for tls, i in network.intersections.items() if i.program_type == "NEMA"]
        if nema and not self.designs_phases:
            raise NotApplicableError(
                f"{self.name} cannot run signal(s) {', '.join(nema[:5])}: they run NEMA programs, whose yellow and "
                "all-red are phase attributes that the standard programs it builds would lose; run fixed or "
                "actuated-rebuilt on this network"
            )
        switched = waut_signals(scenario)
        if switched:
            tls, path = next(iter(switched.items()))
            raise NotApplicableError(
                f"{self.name} cannot run signal(s) {', '.join(list(switched)[:5])}: a WAUT in {path.name} switches "
                f"their programs at its own times, which would cut {self.name}'s short; run fixed, or remove the WAUT"
            )

    def start(self, signals: dict[str, "TrafficSignal"], now: float) -> float | None:
        return None

    def step(self, now: float) -> float | None:
        return None

    def report(self):
        """What the controller wants to hand back from its run (picklable), e.g. a log."""
        return None


def controller_names() -> list[str]:
    return [name for name, cls in _registry().items() if cls.listed]


def make_controller(name: str) -> Controller:
    """A new controller by name; an unknown name is an ``InputError`` listing the known ones."""
    registry = _registry()
    if name not in registry:
        raise InputError(
            f"unknown controller {name!r}: expected one of {', '.join(controller_names())}"
        )
    return registry[name]()


def _registry() -> dict[str, type[Controller]]:
    from ..calibrate import DischargeRecorder
    from .actuated import ActuatedController, RebuiltActuatedController
    from .adaptive import AdaptiveController
    from .fixed import FixedController
    from .max_pressure import MaxPressureController
    from .optimized import OptimizedController
    from .webster import WebsterController

    classes = [
        FixedController,
        ActuatedController,
        RebuiltActuatedController,
        WebsterController,
        MaxPressureController,
        OptimizedController,
        AdaptiveController,
        DischargeRecorder,
    ]
    return {cls.name: cls for cls in classes}
