"""Run scenario x controller x seed matrices in worker processes; statistics over seeds."""

from __future__ import annotations

import math
import multiprocessing
import os
import queue as queue_module
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .control.base import SimSetup, make_controller
from .errors import SimulationError
from .network import Network
from .scenario import Scenario
from .sim.metrics import KPI_COLUMNS
from .sim.runner import RunResult, RunSpec, run_simulation

#: Columns of ``summary.csv``: one row per (scenario, controller, seed).
SUMMARY_COLUMNS = ("scenario", "controller", "seed", *KPI_COLUMNS, "wall_time_s", "control_time_s")


def prepare_setups(
    scenario: Scenario, network: Network, controllers: list[str], *, demand_scale: float, workdir: Path
) -> dict[str, SimSetup]:
    """Each controller's seed-independent preparation, once, in ``workdir/<controller>``."""
    setups = {}
    for name in controllers:
        folder = workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        setups[name] = make_controller(name).prepare(scenario, network, folder, demand_scale=demand_scale)
    return setups


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"3"``, ``"1-5"`` or ``"1,4,7"`` (ranges inclusive)."""
    from .errors import InputError

    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                low, high = (int(x) for x in part.split("-", 1))
                if high < low:
                    raise InputError(f"invalid seed range {part!r}: {high} is below {low}")
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise InputError(f"invalid seeds {text!r}: expected N, N-M or N,M,... with whole numbers") from None
    if not seeds or any(s < 0 for s in seeds):
        raise InputError(f"invalid seeds {text!r}: seeds are whole numbers >= 0")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"invalid seeds {text!r}: a seed is repeated")
    return seeds


# --- running --------------------------------------------------------------------------------

_progress_queue = None


def _init_worker(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue


def _run_in_worker(index: int, spec: RunSpec) -> RunResult:
    # SUMO writes warnings straight to the process's stderr; keep them in the run's folder.
    spec.workdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(spec.workdir / "sumo-console.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.close(fd)

    def report(now: float) -> None:
        if _progress_queue is not None:
            _progress_queue.put((index, now))

    report(spec.scenario.begin)
    return run_simulation(spec, progress=report)


def run_matrix(
    specs: list[RunSpec],
    *,
    jobs: int = 1,
    on_progress: Callable[[int, float], None] | None = None,
    on_done: Callable[[int, RunResult], None] | None = None,
) -> list[RunResult]:
    """Run every spec in its own process (libsumo allows one simulation per process).

    Results come back in the order of ``specs``. ``on_progress(index, sim_time)`` and
    ``on_done(index, result)`` are called in this process as runs advance and finish.
    The first failing run stops the matrix and its error is raised.
    """
    ctx = multiprocessing.get_context("spawn")
    progress_queue = ctx.Queue()
    results: list[RunResult | None] = [None] * len(specs)
    with ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(specs))),
        mp_context=ctx,
        max_tasks_per_child=1,
        initializer=_init_worker,
        initargs=(progress_queue,),
    ) as pool:
        futures = {pool.submit(_run_in_worker, i, spec): i for i, spec in enumerate(specs)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_queue, on_progress)
                for future in done:
                    index = futures[future]
                    try:
                        results[index] = future.result()
                    except BrokenProcessPool:
                        raise SimulationError(_crash_message(specs[index])) from None
                    if on_done is not None:
                        on_done(index, results[index])
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return results  # type: ignore[return-value]


def _drain(progress_queue, on_progress) -> None:
    while True:
        try:
            index, now = progress_queue.get_nowait()
        except queue_module.Empty:
            return
        if on_progress is not None:
            on_progress(index, now)


def _crash_message(spec: RunSpec) -> str:
    lines = []
    for name in ("sumo.log", "sumo-console.log"):
        path = spec.workdir / name
        if path.exists():
            lines += [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error")] or lines[-3:]
    detail = " ".join(errors) or "no message"
    return f"SUMO crashed during {spec.scenario.name} / {spec.key}: {detail}"


# --- statistics -----------------------------------------------------------------------------


def summary_frame(results: list[RunResult]) -> pd.DataFrame:
    """One row per run with the ``SUMMARY_COLUMNS``."""
    return pd.DataFrame([r.summary_row() for r in results], columns=list(SUMMARY_COLUMNS))


def mean_ci95(values) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval (Student t over the seeds)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), math.nan
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def comparison(summary: pd.DataFrame, *, metrics: list[str], baseline: str) -> pd.DataFrame:
    """Per scenario and controller: mean, 95% CI and % change against ``baseline`` for each metric.

    Columns: ``scenario``, ``controller``, ``seeds``, then ``<metric>``, ``<metric>_ci95`` and
    ``<metric>_change_pct`` for each metric.
    """
    rows = []
    for (scenario, controller), group in summary.groupby(["scenario", "controller"], sort=False):
        row = {"scenario": scenario, "controller": controller, "seeds": len(group)}
        base = summary[(summary["scenario"] == scenario) & (summary["controller"] == baseline)]
        for metric in metrics:
            mean, half = mean_ci95(group[metric])
            base_mean = base[metric].mean() if len(base) else math.nan
            row[metric] = mean
            row[f"{metric}_ci95"] = half
            row[f"{metric}_change_pct"] = 100.0 * (mean - base_mean) / base_mean if base_mean else math.nan
        rows.append(row)
    return pd.DataFrame(rows)
