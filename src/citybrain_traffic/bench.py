"""Run scenario x controller x seed matrices in worker processes; statistics over seeds."""

from __future__ import annotations

import math
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, overload

import numpy as np
import pandas as pd

from . import safety
from .control.base import SimSetup, make_controller
from .errors import CTrafficError, NotApplicableError, SimulationError
from .network import Network
from .scenario import Scenario
from .sim.metrics import KPI_COLUMNS
from .sim.runner import RunResult, RunSpec, run_simulation

#: Columns of ``summary.csv``: one row per (scenario, controller, seed).
SUMMARY_COLUMNS = (
    "scenario",
    "controller",
    "seed",
    *KPI_COLUMNS,
    "safety_violations",
    "wall_time_s",
    "control_time_s",
)
#: Columns of ``failures.csv``: one row per failed run, or per failed preparation (no seed);
#: ``refused``: the controller cannot apply to the network (``NotApplicableError``), no fault.
FAILURE_COLUMNS = ("scenario", "controller", "seed", "reason", "refused")


@dataclass(frozen=True)
class RunFailure:
    """A run that failed, or a controller's preparation that failed (``seed`` None: no seed ran),
    with the reason in one line.
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


def prepare_setups(
    scenario: Scenario,
    network: Network,
    controllers: list[str],
    *,
    demand_scale: float,
    workdir: Path,
    options: dict[str, dict] | None = None,
    on_preparing: Callable[[str, str], None] | None = None,
    on_failed: Callable[[RunFailure], None] | None = None,
) -> dict[str, SimSetup]:
    """Each controller's seed-independent preparation, once, in ``workdir/<controller>``.

    ``options`` maps a controller name to the keyword options of its ``configure``;
    ``on_preparing`` is called with the scenario's and the controller's name as each starts (a
    preparation may simulate: the adaptive controller's history and checks take minutes).

    The first preparation that fails raises its error, unless ``on_failed`` is given: then a
    failing preparation (a SUMO tool's error, an infeasible optimization, a controller that
    cannot apply to the network, a bug) is reported to it as a ``RunFailure`` without a seed,
    left out of the result, and the other controllers are prepared. Options are applied first,
    outside of that: a bad option is the caller's error, never a controller's failure.
    """
    setups = {}
    # Absolute: the preparations run SUMO's tools in their folder (cwd) and name files in it.
    workdir = Path(workdir).resolve()
    for name in controllers:
        folder = workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        controller = make_controller(name).configure(**(options or {}).get(name, {}))
        if on_preparing is not None:
            on_preparing(scenario.name, name)
        try:
            controller.check_applicable(scenario, network)
            setups[name] = controller.prepare(scenario, network, folder, demand_scale=demand_scale)
        except Exception as exc:
            if on_failed is None:
                raise
            if not isinstance(exc, CTrafficError):
                exc = _internal_error(f"preparing {name} on {scenario.name}")
            on_failed(
                RunFailure(
                    scenario.name,
                    name,
                    None,
                    one_line(exc),
                    refused=isinstance(exc, NotApplicableError),
                )
            )
    return setups


def one_line(exc: BaseException) -> str:
    """An error's message on one line (SUMO's and Python tools' messages span several)."""
    return " ".join(str(exc).split())


def _internal_error(what: str) -> SimulationError:
    """The exception being handled, a bug rather than bad input, as an error naming it; its
    traceback goes to a file of its own in the temporary folder, not a run's folder that a
    failed command removes (a temporary or a partial --out folder).
    """
    kind, exc, _ = sys.exc_info()
    fd, log = tempfile.mkstemp(prefix="ctraffic-error-", suffix=".log")
    with os.fdopen(fd, "w") as file:
        file.write(traceback.format_exc())
    return SimulationError(f"internal error in {what} ({kind.__name__}: {exc}); traceback in {log}")


#: Most seeds one command runs: each is a SUMO run per controller, so a typo such as 0-100000
#: would start days of simulation. A 95% confidence interval over 30 seeds is already tight.
MAX_SEEDS = 1000
#: SUMO's --seed is a C int.
MAX_SEED = 2**31 - 1


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"3"``, ``"1-5"`` or ``"1,4,7"`` (ranges inclusive), at most ``MAX_SEEDS`` of them."""
    from .errors import InputError

    too_many = (
        f"--seeds {text!r} names more than {MAX_SEEDS} seeds (each is one SUMO run per controller)"
    )
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                low, high = (int(x) for x in part.split("-", 1))
                if high < low:
                    raise InputError(f"invalid seed range {part!r}: {high} is below {low}")
                # Checked before the range is expanded, so 0-10**12 fails at once instead of filling memory.
                if len(seeds) + high - low + 1 > MAX_SEEDS:
                    raise InputError(too_many)
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise InputError(
                f"invalid seeds {text!r}: expected N, N-M or N,M,... with whole numbers"
            ) from None
    if len(seeds) > MAX_SEEDS:
        raise InputError(too_many)
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise InputError(
            f"invalid seeds {text!r}: seeds are whole numbers from 0 to {MAX_SEED} (SUMO's --seed)"
        )
    if len(set(seeds)) != len(seeds):
        raise InputError(f"invalid seeds {text!r}: a seed is repeated")
    return seeds


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
        events.put(("error", index, _internal_error(spec.key)))


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
    ctx = _worker_context()
    if ctx.get_start_method() == "fork":
        # Each run checks its signal states against the network's programs and conflicts: read
        # them once here (a city network takes seconds) and let the forked workers inherit them.
        for net_file in {spec.setup.net_file or spec.network.path for spec in specs}:
            safety.preload(net_file)
    events = ctx.Queue()
    waiting = list(enumerate(specs))
    running: dict[int, multiprocessing.process.BaseProcess] = {}
    results: list[RunResult | RunFailure | None] = [None] * len(specs)

    def failed(index: int, error: CTrafficError) -> None:
        if on_failed is None:
            raise error
        spec = specs[index]
        results[index] = RunFailure(
            spec.scenario.name, spec.controller_name, spec.seed, one_line(error)
        )
        on_failed(index, results[index])

    try:
        while waiting or running:
            while waiting and len(running) < max(1, jobs):
                index, spec = waiting.pop(0)
                # A forked child would flush what this process still has buffered a second time.
                sys.stdout.flush()
                sys.stderr.flush()
                process = ctx.Process(
                    target=_run_in_worker, args=(index, spec, events), daemon=True
                )
                _start(process)
                running[index] = process
            try:
                kind, index, payload = events.get(timeout=0.2)
            except queue_module.Empty:
                for index, process in list(running.items()):
                    if process.exitcode not in (None, 0):
                        running.pop(index)
                        failed(
                            index, SimulationError(_crash_message(specs[index], process.exitcode))
                        )
                continue
            if index not in running:  # from a run already reported as crashed
                continue
            if kind == "progress":
                if on_progress is not None:
                    on_progress(index, payload)
                continue
            running.pop(index).join()
            if kind == "error":
                failed(index, payload)
                continue
            results[index] = payload
            if on_done is not None:
                on_done(index, payload)
    finally:
        for process in running.values():
            process.terminate()
            process.join()
    return results  # type: ignore[return-value]


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
    if exitcode < 0:  # killed by a signal: name it (SIGSEGV says more than -11)
        exitcode = f"{exitcode}, {signal.Signals(-exitcode).name}"
    return f"SUMO crashed (exit code {exitcode}) during {spec.scenario.name} / {spec.key}: {detail}"


# --- statistics -----------------------------------------------------------------------------


def summary_frame(results: list[RunResult]) -> pd.DataFrame:
    """One row per run with the ``SUMMARY_COLUMNS``."""
    return pd.DataFrame([r.summary_row() for r in results], columns=list(SUMMARY_COLUMNS))


def failure_frame(failures: Sequence[RunFailure]) -> pd.DataFrame:
    """One row per failure with the ``FAILURE_COLUMNS`` (``seed`` empty for a preparation)."""
    frame = pd.DataFrame([vars(f) for f in failures], columns=list(FAILURE_COLUMNS))
    return frame.astype({"seed": "Int64"})


def mean_ci95(values) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (Student t over the seeds)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), math.nan
    from scipy.special import stdtrit  # Student t quantile; scipy.stats takes seconds to import

    half = stdtrit(len(x) - 1, 0.975) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def comparison(
    summary: pd.DataFrame, *, metrics: list[str], baseline: str, failures: Sequence[RunFailure] = ()
) -> pd.DataFrame:
    """Per scenario and controller: mean, 95% CI and % change against ``baseline`` for each metric.

    Columns: ``scenario``, ``controller``, ``seeds`` (the runs measured), ``failed`` (runs that
    failed, from ``failures``), ``failure`` (the first one's reason, else empty), ``refused``
    (every failure is a refusal of the network), then
    ``<metric>``, ``<metric>_ci95`` and ``<metric>_change_pct`` for each metric. A controller
    none of whose runs was measured (its preparation or every run failed) has a row with 0 seeds
    and NaN figures, after the others.
    """
    failed: dict[tuple[str, str], list[RunFailure]] = {}
    for failure in failures:
        failed.setdefault((failure.scenario, failure.controller), []).append(failure)
    rows = []
    for scenario, controller in dict.fromkeys(
        [*zip(summary["scenario"], summary["controller"]), *failed]
    ):
        group = summary[(summary["scenario"] == scenario) & (summary["controller"] == controller)]
        reasons = [f.reason for f in failed.get((scenario, controller), [])]
        row = {
            "scenario": scenario,
            "controller": controller,
            "seeds": len(group),
            "failed": len(reasons),
            "failure": reasons[0] if reasons else "",
            "refused": bool(reasons) and all(f.refused for f in failed[scenario, controller]),
        }
        base = summary[(summary["scenario"] == scenario) & (summary["controller"] == baseline)]
        for metric in metrics:
            mean, half = mean_ci95(group[metric])
            base_mean = base[metric].mean() if len(base) else math.nan
            row[metric] = mean
            row[f"{metric}_ci95"] = half
            row[f"{metric}_change_pct"] = (
                100.0 * (mean - base_mean) / base_mean if base_mean else math.nan
            )
        rows.append(row)
    return pd.DataFrame(rows)
