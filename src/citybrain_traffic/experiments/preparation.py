"""Make named controllers ready for a scenario: fit them, train, and choose by simulation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..control.adaptive import AdaptiveController
from ..control.base import Controller, SimSetup
from ..control.switching import OFFSET_MODES
from ..control.optimized import OptimizedController, cycle_floors, demand_periods
from ..errors import InputError
from ..network import Network
from ..scenario import Scenario
from .adaptive_training import HISTORY_DAYS, check_history_interval, trained_forecaster
from .selection import grid_search


class Preparation:
    """How one controller is made ready: its options checked now, the work done in ``build``.

    Parameters
    ----------
    controller
        The controller, unfitted, with its options as parameters.
    """

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def build(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Controller:
        """Return the controller fitted to ``scenario`` (``workdir`` holds what it writes).

        Raises
        ------
        NotApplicableError
            When the controller cannot run this network's signals safely.
        """
        self.controller.check_applicable(scenario, network)
        return self.controller.clone().fit(scenario, network, workdir, demand_scale=demand_scale)


class OptimizedPreparation(Preparation):
    """Optimized plans at the cycle floor that did best in simulation (``selection``).

    Parameters
    ----------
    check_in_sumo
        Simulate the candidates; off, the model's own cycle choice is kept.
    """

    def __init__(self, *, check_in_sumo: bool = True) -> None:
        super().__init__(OptimizedController())
        self.check_in_sumo = check_in_sumo

    def build(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Controller:
        """Return the optimized controller of the best cycle floor, or of the own program."""
        self.controller.check_applicable(scenario, network)
        periods = demand_periods(scenario, network, workdir, demand_scale=demand_scale)
        estimator = OptimizedController(periods=periods)
        if not self.check_in_sumo:
            return estimator.fit(scenario, network, workdir, demand_scale=demand_scale)
        grid = {label: {"cycle_floor_s": f} for label, f in cycle_floors().items()}
        selection = grid_search(
            estimator, grid, scenario, network, workdir, demand_scale=demand_scale
        )
        best = selection.best or estimator.clone(own_program=True).fit(
            scenario, network, workdir, demand_scale=demand_scale
        )
        best.setup_ = _with_note(best, selection.note())
        return best


class AdaptivePreparation(Preparation):
    """The adaptive controller with a trained forecaster and the offsets or floor that did best.

    Parameters
    ----------
    model
        A forecast model folder; None trains one on ``history_days`` simulated days.
    interval_min
        The control interval, min.
    history_days
        Days of simulated history to train on (0: no forecaster).
    check_in_sumo
        Choose by simulation (offsets with the real-time layer, the cycle floor without it).
    realtime
        Run the bounded real-time layer (off: fixed-time plans).
    offsets
        ``auto`` (chosen by simulation), ``free`` or ``held``; with ``sequence="plan"`` only.
    sequence
        The real-time layer's sequence: ``free``, ``cyclic`` or ``plan``.
    max_red_s
        The longest red a waiting vehicle may see (s); None: derived from each plan.
    phases
        ``own`` or ``rebuilt`` (netconvert's phases).
    """

    def __init__(
        self,
        *,
        model: str | Path | None = None,
        interval_min: float | None = None,
        history_days: int | None = None,
        check_in_sumo: bool = True,
        realtime: bool = True,
        offsets: str = "auto",
        sequence: str = "free",
        max_red_s: float | None = None,
        phases: str = "own",
    ) -> None:
        if offsets not in OFFSET_MODES:
            raise InputError(f"--offsets {offsets!r}: expected one of {', '.join(OFFSET_MODES)}")
        params: dict[str, Any] = {
            "realtime": bool(realtime),
            "sequence": sequence,
            "max_red_s": None if max_red_s is None else float(max_red_s),
            "phases": phases,
        }
        if interval_min is not None:
            params["interval_min"] = float(interval_min)
        if model is not None:
            params["model"] = Path(model)
        controller = AdaptiveController(**params)
        controller.check_params()
        self.history_days = HISTORY_DAYS if history_days is None else int(history_days)
        if model is None:
            check_history_interval(controller.interval_min, self.history_days)
        super().__init__(controller)
        self.check_in_sumo = check_in_sumo
        self.offsets = offsets

    def build(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Controller:
        """Train (or load) the forecaster, then fit and choose the controller by simulation."""
        base = self.controller
        assert isinstance(base, AdaptiveController)
        base.check_applicable(scenario, network)
        if base.model is None:
            trained = trained_forecaster(
                scenario,
                network,
                workdir,
                interval_s=base.interval_s,
                history_days=self.history_days,
                demand_scale=demand_scale,
            )
            base = base.clone(model=trained.model, history=trained.history)
            note = trained.note
        else:
            note = f"forecaster {base.model}"
        params, grid = self._choices(base, network)
        base = base.clone(**params)
        if not grid:
            fitted = base.fit(scenario, network, workdir, demand_scale=demand_scale)
            fitted.setup_ = _with_note(fitted, note)
            return fitted
        selection = grid_search(base, grid, scenario, network, workdir, demand_scale=demand_scale)
        best = selection.best or base.clone(own_program=True).fit(
            scenario, network, workdir, demand_scale=demand_scale
        )
        best.setup_ = _with_note(best, note)
        best.setup_ = _with_note(best, selection.note())
        return best

    def _choices(
        self, base: AdaptiveController, network: Network
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Return the parameters the options decide, and the candidates to simulate."""
        if base.sequenced:
            return {}, {}  # no cycle, no offsets: nothing to choose
        if base.realtime:
            several = len(network.intersections) > 1
            if self.offsets == "auto" and several and self.check_in_sumo:
                return {}, {
                    "offsets free": {"offsets": "free"},
                    "offsets held": {"offsets": "held"},
                }
            return {"offsets": "held" if self.offsets == "held" else "free"}, {}
        if not self.check_in_sumo:
            return {}, {}
        return {}, {label: {"cycle_floor_s": f} for label, f in cycle_floors().items()}


def _with_note(controller: Controller, note: str) -> SimSetup:
    """Return the controller's setup with ``note`` joined to its first note."""
    notes = list(controller.setup.notes) or [""]
    notes[0] = "; ".join(n for n in (notes[0], note) if n)
    return replace(controller.setup, notes=tuple(notes))
