"""Controllers by name: the only module that imports every controller."""

from __future__ import annotations

from typing import Any

from ..control.actuated import ActuatedController, RebuiltActuatedController
from ..control.adaptive import AdaptiveController
from ..control.base import Controller
from ..control.fixed import FixedController
from ..control.max_pressure import MaxPressureController, MaxPressureQueueController
from ..control.optimized import OptimizedController
from ..control.webster import WebsterController
from ..errors import InputError
from .calibrate import DischargeRecorder
from .preparation import AdaptivePreparation, OptimizedPreparation, Preparation

#: Every controller, in the order ``ctraffic controllers`` lists them.
CONTROLLERS: dict[str, type[Controller]] = {
    cls.name: cls
    for cls in (
        FixedController,
        ActuatedController,
        RebuiltActuatedController,
        WebsterController,
        MaxPressureController,
        MaxPressureQueueController,
        OptimizedController,
        AdaptiveController,
        DischargeRecorder,
    )
}

#: Controllers whose preparation simulates (training, choices checked in SUMO).
_PREPARATIONS: dict[str, type[Preparation]] = {
    "adaptive": AdaptivePreparation,
    "optimized": OptimizedPreparation,
}


def controller_names() -> list[str]:
    """Return the names of the signal controllers users choose from."""
    return [name for name, cls in CONTROLLERS.items() if cls.listed]


def controller_class(name: str) -> type[Controller]:
    """Return the controller class called ``name``.

    Raises
    ------
    InputError
        For an unknown name, listing the known ones.
    """
    if name not in CONTROLLERS:
        raise InputError(
            f"unknown controller {name!r}: expected one of {', '.join(controller_names())}"
        )
    return CONTROLLERS[name]


def preparation(name: str, **options: Any) -> Preparation:
    """Return how the controller ``name`` is made ready, its ``options`` checked now.

    Raises
    ------
    InputError
        For an unknown name, or options the controller does not take or cannot combine.
    """
    cls = controller_class(name)
    if name in _PREPARATIONS:
        return _PREPARATIONS[name](**options)
    if options:
        raise InputError(f"controller {name!r} takes no options; got {', '.join(sorted(options))}")
    return Preparation(cls())
