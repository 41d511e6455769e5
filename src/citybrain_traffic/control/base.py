"""The controller protocol: options in, a fitted setup out, then decisions during a run."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

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
    scenario's own (a ``tlLogic`` there becomes the running program); ``notes`` are shown to the
    user; ``schedule`` holds timing plans to run, as (from simulation time s, plan) pairs.
    """

    net_file: Path | None = None
    additional_files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    schedule: tuple[tuple[float, TimingPlan], ...] = ()


@dataclass
class RunContext:
    """What a controller gets when its run starts: SUMO's API, the network, its signals."""

    api: Any
    network: Network
    signals: dict[str, TrafficSignal] = field(default_factory=dict)


class Controller:
    """Base class of controllers; as it stands it leaves the signals to their programs.

    Controllers follow scikit-learn's estimator convention. Options are keyword parameters of
    ``__init__``, stored unchanged under their own names (:meth:`get_params`). :meth:`fit` does
    the seed-independent work before any run (write a program, rebuild a net), once per
    scenario and demand, and keeps what it learns in attributes ending in ``_``, ``setup_``
    among them. The fitted instance goes to the run's process, where :meth:`start` and
    :meth:`step` act; both take the simulation time (s) and return the next time the
    controller wants to act, or ``None`` for never. Controllers never run simulations
    themselves: choosing by simulation is the ``experiments`` layer's job.
    """

    name = ""
    description = ""
    #: Whether ``start`` needs TrafficSignal objects (building them costs TraCI calls).
    needs_signals = False
    #: Whether ``ctraffic controllers`` lists it (measuring tools are not signal controllers).
    listed = True
    #: Whether it runs programs of its own (or switches states live) in place of the network's.
    replaces_programs = False
    #: Whether those programs come from a phase design of its own (netconvert's).
    designs_phases = False

    setup_: SimSetup

    # -- parameters (scikit-learn's get_params / set_params / clone) ---------------------------
    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters and their current values."""
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters by name; an unknown one is an ``InputError``."""
        known = self.get_params()
        for key, value in params.items():
            if key not in known:
                raise InputError(
                    f"controller {self.name!r} has no option {key!r}"
                    + (f"; its options: {', '.join(known)}" if known else "")
                )
            setattr(self, key, value)
        return self

    def clone(self, **params: Any) -> Self:
        """Return a new, unfitted controller with the same parameters, ``params`` changed."""
        return type(self)(**{**self.get_params(), **params})

    @property
    def setup(self) -> SimSetup:
        """The fitted setup, or an empty one before :meth:`fit` (the network as it is)."""
        return getattr(self, "setup_", SimSetup())

    # -- preparation ---------------------------------------------------------------------------
    def fit(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Self:
        """Do the seed-independent work for ``scenario`` at ``demand_scale``; return self."""
        self.setup_ = SimSetup()
        return self

    def check_applicable(self, scenario: Scenario, network: Network) -> None:
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
                f"{self.name} cannot run signal(s) {', '.join(nema[:5])}: they run NEMA "
                "programs, whose yellow and all-red are phase attributes that the standard "
                "programs it builds would lose; run fixed or actuated-rebuilt on this network"
            )
        switched = waut_signals(scenario)
        if switched:
            _, path = next(iter(switched.items()))
            raise NotApplicableError(
                f"{self.name} cannot run signal(s) {', '.join(list(switched)[:5])}: a WAUT in "
                f"{path.name} switches their programs at its own times, which would cut "
                f"{self.name}'s short; run fixed, or remove the WAUT"
            )

    # -- the run (in the run's process) --------------------------------------------------------
    def start(self, context: RunContext, now: float) -> float | None:
        """Take over the signals at simulation time ``now`` (s); return when to act next."""
        return None

    def step(self, now: float) -> float | None:
        """Act at simulation time ``now`` (s); return when to act next, ``None`` for never."""
        return None

    def report(self) -> Any:
        """Return what the controller hands back from its run (picklable), e.g. a log."""
        return None

    def failures(self) -> int:
        """Return how many decisions failed during the run (the running plan was kept)."""
        return 0
