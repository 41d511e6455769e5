"""User-facing error types; the CLI maps each to one clear line and an exit code."""


class CTrafficError(Exception):
    """Base class for errors a user can act on; never shown as a traceback."""

    exit_code = 2


class InputError(CTrafficError):
    """Bad user input: a missing or malformed file, an unknown name, an invalid value."""


class NotApplicableError(InputError):
    """A controller that cannot run this network safely, and says why.

    It is left out while the other controllers run.
    """


class InfeasibleError(CTrafficError):
    """Timing constraints that no plan can satisfy."""


class UnsafePlanError(CTrafficError):
    """An unsafe signal program.

    One that would change the phase structure, or cut a change interval or a minimum green.
    """


class SimulationError(CTrafficError):
    """SUMO reported an error while loading or running a simulation."""
