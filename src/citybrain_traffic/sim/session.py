"""Start, step and close one SUMO simulation through libsumo (default) or TraCI (for the GUI)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SimulationError


def sumo_home() -> Path:
    """Return the SUMO installation that comes with the ``eclipse-sumo`` wheel."""
    import sumo  # type: ignore[import-untyped]  # the wheel ships no type information

    return Path(sumo.SUMO_HOME)


def sumo_binary(name: str = "sumo") -> str:
    """Return the path of a SUMO executable (``sumo``, ``sumo-gui``, ``netconvert``...)."""
    path = sumo_home() / "bin" / name
    if not path.exists():
        raise SimulationError(f"SUMO executable {name!r} not found in {path.parent}")
    return str(path)


def sumo_tool(name: str) -> Path:
    """Return the path of a script in SUMO's ``tools`` folder, e.g. ``tlsCycleAdaptation.py``."""
    path = sumo_home() / "tools" / name
    if not path.exists():
        raise SimulationError(f"SUMO tool {name!r} not found in {path.parent}")
    return path


def sumo_env() -> dict[str, str]:
    """Return the environment for SUMO's programs: ``SUMO_HOME`` set to the wheel's copy."""
    return {**os.environ, "SUMO_HOME": str(sumo_home())}


def run_sumo_tool(args: list[str], *, cwd: Path, what: str) -> None:
    """Run a SUMO executable or tool script; on failure raise SUMO's own message.

    Parameters
    ----------
    args
        Command line; a first element ending in ``.py`` is run with this Python.
    cwd
        Working folder (outputs with relative names land here).
    what
        What the command does, for the error message ("rebuilding the network as actuated").
    """
    import sys

    if args[0].endswith(".py"):
        args = [sys.executable, *args]
    proc = subprocess.run(args, cwd=cwd, env=sumo_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        message = _sumo_message(proc.stderr + proc.stdout) or f"exit code {proc.returncode}"
        raise SimulationError(f"SUMO failed while {what}: {message}")


def _sumo_message(text: str) -> str:
    """Return the error lines of SUMO's output, joined into one readable message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    picked = errors or lines[-3:]
    return " ".join(picked)


@dataclass(frozen=True)
class SumoCommand:
    """Everything needed to launch one SUMO run."""

    args: tuple[str, ...]
    error_log: Path
    gui: bool = False


class Session:
    """One running SUMO simulation.

    ``api`` is the ``libsumo`` module or a ``traci`` connection; both offer the same domains
    (``api.trafficlight``, ``api.lane``, ``api.simulation``). libsumo allows one simulation per
    process, so the harness runs every simulation in a process of its own.
    """

    def __init__(self, command: SumoCommand):
        self.command = command
        # The libsumo module or the traci module, both without type information; None: not running.
        self.api: Any = None

    def __enter__(self) -> "Session":
        args = list(self.command.args)
        if self.command.gui:
            self.api = _start_gui(args, self.command.error_log)
            return self
        try:
            import libsumo

            libsumo.start(args)
            self.api = libsumo
        except Exception as exc:
            raise SimulationError(f"SUMO could not start: {self.error_message() or exc}") from exc
        return self

    def __exit__(self, *exc_info) -> None:
        if self.api is not None:
            try:
                self.api.close()
            finally:
                self.api = None

    @property
    def time(self) -> float:
        """The simulation time (s)."""
        return self.api.simulation.getTime()

    def vehicle_classes(self) -> dict[str, str]:
        """Return the vehicle class (``passenger``, ``bicycle``...) of each vehicle type loaded."""
        types = self.api.vehicletype
        return {type_id: types.getVehicleClass(type_id) for type_id in types.getIDList()}

    def run_until(self, t: float) -> None:
        """Advance the simulation to time ``t`` (s); SUMO errors become ``SimulationError``."""
        try:
            self.api.simulationStep(t)
        except Exception as exc:
            raise SimulationError(
                f"SUMO stopped at {self.time:.0f} s: {self.error_message() or exc}"
            ) from exc

    def error_message(self) -> str:
        """Return SUMO's own error lines from this run's error log ("" when there are none)."""
        try:
            return _sumo_message(self.command.error_log.read_text(errors="replace"))
        except OSError:
            return ""


#: Seconds sumo-gui has to open its TraCI port: as long as traci.start waits (60 retries, 1 s
#: apart).
GUI_START_TIMEOUT_S = 60.0


def _start_gui(args: list[str], error_log: Path) -> Any:
    """Start sumo-gui on the sumo command line ``args``; return the ``traci`` module connected.

    traci.start restarts a sumo-gui that exits at once about 60 times, printing "Retrying in 1
    seconds" for a minute, and drops its reason (without a display: "unable to open display").
    Here sumo-gui starts once, its console goes to a file beside ``error_log``, and an early exit
    raises its own message at once.
    """
    import traci
    from traci.exceptions import FatalTraCIError, TraCIException

    port = traci.getFreeSocketPort()
    console = error_log.with_name("sumo-gui-console.log")
    with open(console, "w") as out:
        process = subprocess.Popen(
            [
                sumo_binary("sumo-gui"),
                *args[1:],
                "--start",
                "--quit-on-end",
                "--remote-port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + GUI_START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            logs = [
                path.read_text(errors="replace") for path in (console, error_log) if path.exists()
            ]
            reason = _sumo_message("\n".join(logs)) or f"exit code {process.returncode}"
            raise SimulationError(f"sumo-gui could not start: {reason}")
        try:
            traci.init(
                port, numRetries=0, proc=process
            )  # one attempt, without traci's retry messages
            return traci
        except (FatalTraCIError, TraCIException):
            if time.monotonic() > deadline:
                process.kill()
                raise SimulationError(
                    f"sumo-gui did not open its TraCI port within {GUI_START_TIMEOUT_S:g} s"
                ) from None
            time.sleep(0.1)
