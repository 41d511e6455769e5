"""Tables over runs: the summary, the failures, means with 95% intervals, % changes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..sim.metrics import KPI_COLUMNS
from .emergency import EMERGENCY_KPIS
from .matrix import RunFailure
from .runner import RunResult

#: Columns of ``summary.csv``: one row per (scenario, controller, seed). ``max_red_s`` is the
#: longest red any vehicle waiting at a stop line saw in the run, at any signal (s).
SUMMARY_COLUMNS = (
    "scenario",
    "controller",
    "seed",
    *KPI_COLUMNS,
    "safety_violations",
    "max_red_s",
    "control_failures",
    "wall_time_s",
    "control_time_s",
)
#: Columns of ``failures.csv``: one row per failed run, or per failed preparation (no seed);
#: ``refused``: the controller cannot apply to the network (``NotApplicableError``), no fault.
FAILURE_COLUMNS = ("scenario", "controller", "seed", "reason", "refused")


def summary_frame(results: list[RunResult]) -> pd.DataFrame:
    """One row per run with the ``SUMMARY_COLUMNS``, then ``EMERGENCY_KPIS`` if a run had some.

    A run without emergency vehicles has NaN there.
    """
    columns = list(SUMMARY_COLUMNS)
    if any(r.emergency is not None for r in results):
        columns += EMERGENCY_KPIS
    return pd.DataFrame([r.summary_row() for r in results], columns=columns)


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
    ``<metric>``, ``<metric>_ci95`` and ``<metric>_change_pct`` for each metric, then, when
    ``summary`` has it, ``max_red_s``: the longest over the seeds (a bound holds on every run,
    so its worst case is shown, not a mean). A controller
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
        if "max_red_s" in summary and "max_red_s" not in metrics:
            row["max_red_s"] = group["max_red_s"].max() if len(group) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)
