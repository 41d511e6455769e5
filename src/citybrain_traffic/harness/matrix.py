"""Run many simulations in worker processes, one SUMO each, and collect results or failures."""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import signal
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, overload

from .. import safety
from ..errors import CTrafficError, SimulationError
from .runner import RunResult, RunSpec, run_simulation


@dataclass(frozen=True)
class RunFailure:
    """A run that failed, or a controller's preparation (``seed`` None), with the reason.

    The reason is one line.
    """

    scenario: str
    controller: str
    seed: int | None
    reason: str
    #: The controller refused the network (it cannot apply there, and said why): not a fault.
    refused: bool = False

    @property
    def what(self) -> str:
        """``"<scenario> <controller> seed <n>"``, or ``"... (preparation)"``."""
        return f"{self.scenario} {self.controller} " + (
            "(preparation)" if self.seed is None else f"seed {self.seed}"
        )


def one_line(exc: BaseException) -> str:
    """Return an error's message on one line (SUMO's and Python tools' span several)."""
    return " ".join(str(exc).split())


def internal_error(what: str) -> SimulationError:
    """Return the exception being handled (a bug, not bad input) as an error naming it.

    Its traceback goes to a file of its own in the temporary folder, not a run's folder that a
    failed command removes (a temporary or a partial --out folder).
    """
    kind, exc, _ = sys.exc_info()
    name = kind.__name__ if kind is not None else "error"
    fd, log = tempfile.mkstemp(prefix="ctraffic-error-", suffix=".log")
    with os.fdopen(fd, "w") as file:
        file.write(traceback.format_exc())
    return SimulationError(f"internal error in {what} ({name}: {exc}); traceback in {log}")


# --- running --------------------------------------------------------------------------------


def _run_in_worker(index: int, spec: RunSpec, events) -> None:
    """Body of a worker process: run one simulation and send back its result or its error."""
    # A forked worker inherits the command's SIGTERM handler (cli.main). run_matrix's terminate()
    # must end it at once, also inside SUMO, not run Python's exit that waits for the queue.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):  # held by _start while it forked this process
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD_SIGNALS)
    spec.workdir.mkdir(parents=True, exist_ok=True)
    # SUMO writes warnings straight to the process's stderr; keep them in the run's folder.
    fd = os.open(spec.workdir / "sumo-console.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        events.put(("progress", index, spec.scenario.begin))
        result = run_simulation(spec, progress=lambda now: events.put(("progress", index, now)))
        events.put(("done", index, result))
    except CTrafficError as exc:
        events.put(("error", index, exc))
    except Exception:  # a bug, not bad input: keep the traceback for the report
        events.put(("error", index, internal_error(spec.key)))


@overload
def run_matrix(
    specs: list[RunSpec],
    *,
    jobs: int = ...,
    on_progress: Callable[[int, float], None] | None = ...,
    on_done: Callable[[int, RunResult], None] | None = ...,
    on_failed: None = ...,
) -> list[RunResult]: ...


@overload
def run_matrix(
    specs: list[RunSpec],
    *,
    jobs: int = ...,
    on_progress: Callable[[int, float], None] | None = ...,
    on_done: Callable[[int, RunResult], None] | None = ...,
    on_failed: Callable[[int, RunFailure], None],
) -> list[RunResult | RunFailure]: ...


def run_matrix(
    specs: list[RunSpec],
    *,
    jobs: int = 1,
    on_progress: Callable[[int, float], None] | None = None,
    on_done: Callable[[int, RunResult], None] | None = None,
    on_failed: Callable[[int, RunFailure], None] | None = None,
) -> list[RunResult] | list[RunResult | RunFailure]:
    """Run every spec in a process of its own, at most ``jobs`` at a time.

    libsumo allows one simulation per process, and a SUMO crash then takes down only that run.
    Results come back in the order of ``specs``; ``on_progress(index, sim_time)`` and
    ``on_done(index, result)`` are called in this process. The first failing run stops the
    matrix and its error is raised, unless ``on_failed`` is given: then a run that fails (SUMO's
    error, a SUMO crash, a controller's internal error) is reported to ``on_failed(index,
    failure)``, its place in the results holds the ``RunFailure``, and the other runs go on.
    """
    pool = _Pool(specs, jobs=jobs, on_failed=on_failed)
    try:
        while pool.waiting or pool.running:
            pool.fill()
            event = pool.next_event()
            if event is None:
                continue
            kind, index, payload = event
            if kind == "progress":
                if on_progress is not None:
                    on_progress(index, payload)
                continue
            pool.running.pop(index).join()
            if kind == "error":
                pool.failed(index, payload)
                continue
            pool.results[index] = payload
            if on_done is not None:
                on_done(index, payload)
    finally:
        pool.stop()
    results = pool.results
    return results  # type: ignore[return-value]


class _Pool:
    """The worker processes of one ``run_matrix`` call and what they reported."""

    def __init__(
        self,
        specs: list[RunSpec],
        *,
        jobs: int,
        on_failed: Callable[[int, RunFailure], None] | None,
    ) -> None:
        self.ctx = _worker_context()
        if self.ctx.get_start_method() == "fork":
            # Each run checks its signal states against the network's programs and conflicts:
            # read them once here (a city network takes seconds); the forked workers inherit them.
            for net_file in {spec.net_file for spec in specs}:
                safety.preload(net_file)
        self.specs, self.jobs, self.on_failed = specs, max(1, jobs), on_failed
        self.events = self.ctx.Queue()
        self.waiting = list(enumerate(specs))
        self.running: dict[int, multiprocessing.process.BaseProcess] = {}
        self.results: list[RunResult | RunFailure | None] = [None] * len(specs)

    def fill(self) -> None:
        """Start waiting runs while fewer than ``jobs`` run."""
        while self.waiting and len(self.running) < self.jobs:
            index, spec = self.waiting.pop(0)
            # A forked child would flush what this process still has buffered a second time.
            sys.stdout.flush()
            sys.stderr.flush()
            process = self.ctx.Process(
                target=_run_in_worker, args=(index, spec, self.events), daemon=True
            )
            _start(process)
            self.running[index] = process

    def next_event(self) -> tuple[str, int, Any] | None:
        """Return a running worker's next report, or None after reaping crashed workers."""
        try:
            kind, index, payload = self.events.get(timeout=0.2)
        except queue_module.Empty:
            for index, process in list(self.running.items()):
                if process.exitcode not in (None, 0):
                    self.running.pop(index)
                    crash = _crash_message(self.specs[index], process.exitcode)
                    self.failed(index, SimulationError(crash))
            return None
        if index not in self.running:  # from a run already reported as crashed
            return None
        return kind, index, payload

    def failed(self, index: int, error: CTrafficError) -> None:
        """Record a failed run, or raise its error when no one asked for failures."""
        if self.on_failed is None:
            raise error
        spec = self.specs[index]
        failure = RunFailure(spec.scenario.name, spec.controller_name, spec.seed, one_line(error))
        self.results[index] = failure
        self.on_failed(index, failure)

    def stop(self) -> None:
        """End every worker still running."""
        for process in self.running.values():
            process.terminate()
            process.join()


#: Signals held while a worker starts: one that arrives while fork runs its at-fork handlers in
#: this process is swallowed there ("Exception ignored in _releaseLock"), and SIGTERM or Ctrl-C
#: would not stop the command.
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _start(process: multiprocessing.process.BaseProcess) -> None:
    """Start a worker with SIGINT and SIGTERM held; they arrive once it has started."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no fork, no mask
        process.start()
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _worker_context():
    """Fork when it is safe, else spawn.

    A forked worker starts at once with this process's imports (a spawned one spends about a
    second importing them again). Forking is safe here because this process never loads libsumo
    (only workers do) and only while no other thread runs (a thread could hold a lock the child
    inherits, e.g. the live progress display's).
    """
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _crash_message(spec: RunSpec, exitcode: int) -> str:
    lines = []
    for name in ("sumo.log", "sumo-console.log"):
        path = spec.workdir / name
        if path.exists():
            lines += [
                ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()
            ]
    errors = [ln for ln in lines if ln.startswith("Error")] or lines[-3:]
    detail = " ".join(errors) or "no message from SUMO"
    code = str(exitcode)
    if exitcode < 0:  # killed by a signal: name it (SIGSEGV says more than -11)
        code = f"{exitcode}, {signal.Signals(-exitcode).name}"
    return f"SUMO crashed (exit code {code}) during {spec.scenario.name} / {spec.key}: {detail}"
