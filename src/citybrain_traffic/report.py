"""Write run results as files (JSON, CSV, PNG, Markdown) and show them as terminal tables."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .harness.matrix import RunFailure
from .harness.runner import RunResult
from .harness.stats import failure_frame

#: KPIs shown in the terminal table: (column, heading with unit, decimals).
HEADLINE = (
    ("mean_delay_s", "Delay s/veh", 1),
    ("mean_travel_time_s", "Travel time s", 1),
    ("throughput_veh_h", "Throughput veh/h", 0),
    ("mean_stops", "Stops /veh", 2),
    ("congestion_index", "Congestion index", 2),
    ("backlog", "Backlog veh", 0),
)

#: KPIs shown after the headline (a motor vehicle's) when some row has one that is not zero: the
#: other modes, and collisions (never folded into teleports).
BESIDE = (
    ("mean_delay_bicycle_s", "Bicycle delay s/bike", 1),
    ("bicycles_not_inserted", "Bicycles not inserted", 0),
    ("mean_time_loss_pedestrian_s", "Pedestrian time loss s/ped", 1),
    ("mean_waiting_pedestrian_s", "Pedestrian waiting s/ped", 1),
    ("collisions", "Collisions", 0),
    ("mean_emergency_travel_time_s", "Emergency travel time s", 1),
)

#: Figures shown last, as the worst seed's value (no interval, no change): the longest red a
#: waiting vehicle saw (``harness.stats.comparison``'s ``max_red_s``).
WORST = (("max_red_s", "Max red s", 0),)


def write_run_files(result: RunResult, folder: Path) -> None:
    """Write the files of one run into ``folder``.

    ``kpis.json`` (the run's ``summary.csv`` row, and ``max_red_waiting_s``: per signal, the
    longest red a waiting vehicle saw, s; with the adaptive sequencer, ``max_red_bound_s``, the
    bound it kept, and ``sequencing.json``, its counts of skips and forced changes),
    ``intersections.csv``, ``timeseries.csv``,
    ``timeseries.png`` and, when the run counted, ``counts.csv`` (per-movement counts);
    ``plans.jsonl`` when its controller logged the plans it applied; ``safety.txt`` when the
    signal states SUMO showed left the safety envelope (one line each); ``emergency.csv`` when
    the run had emergency vehicles (``harness.emergency.EMERGENCY_COLUMNS``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if result.emergency is not None:
        result.emergency.to_csv(folder / "emergency.csv", index=False, float_format="%.2f")
    if result.counts is not None:
        result.counts.to_csv(folder / "counts.csv", index=False)
    report = result.controller_report
    if isinstance(report, dict) and report.get("plans"):
        from .plans import plans_json_default

        # One line per plan a controller applied, for audit (the adaptive controller's log).
        (folder / "plans.jsonl").write_text(
            "".join(
                json.dumps(record, default=plans_json_default) + "\n" for record in report["plans"]
            )
        )
    # A mode the run did not have has NaN figures: null in JSON (NaN is not JSON).
    row = {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in result.summary_row().items()
    }
    row["max_red_waiting_s"] = result.max_red_waiting_s
    if isinstance(report, dict) and report.get("sequencing"):
        # The adaptive sequencer's bound beside the measurement, and its counts per signal.
        row["max_red_bound_s"] = {
            tls: stats["max_red_bound_s"] for tls, stats in report["sequencing"].items()
        }
        (folder / "sequencing.json").write_text(json.dumps(report["sequencing"], indent=1) + "\n")
    (folder / "kpis.json").write_text(json.dumps(row, indent=2) + "\n")
    if result.safety_violations:
        (folder / "safety.txt").write_text(
            "".join(line + "\n" for line in result.safety_violations)
        )
    result.approaches.to_csv(folder / "intersections.csv", index=False, float_format="%.2f")
    result.series.to_csv(folder / "timeseries.csv", index=False, float_format="%.3f")
    plot_time_series(
        result.series,
        folder / "timeseries.png",
        title=f"{result.scenario}: {result.controller}, seed {result.seed}",
    )


def plot_time_series(series: pd.DataFrame, path: Path, *, title: str) -> None:
    """Plot three stacked panels over time (h): vehicles in the network, mean speed, queue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = series["time_s"] / 3600.0
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    panels = (
        ("vehicles_running", "vehicles in network"),
        ("mean_speed_m_s", "mean speed (m/s)"),
        ("queue_veh", "halting vehicles"),
    )
    for ax, (column, label) in zip(axes, panels):
        ax.step(hours, series[column], where="post")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("simulation time (h), 5-minute means")
    axes[0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_cell(
    mean: float, half: float, change: float | None, decimals: int, *, sep: str = " "
) -> str:
    """Return ``mean ± half`` then ``(+x.x%)`` after ``sep``; no change for the baseline itself."""
    if not math.isfinite(mean):
        return "n/a"
    text = f"{mean:,.{decimals}f}"
    if math.isfinite(half):
        text += f" ± {half:,.{decimals}f}"
    if change is not None and math.isfinite(change):
        text += f"{sep}({change:+.1f}%)"
    return text


def _shown(table: pd.DataFrame) -> tuple[tuple[str, str, int], ...]:
    """Return the headline KPIs, then those of ``BESIDE`` some row of ``table`` has, not zero."""
    return HEADLINE + tuple(
        kpi
        for kpi in BESIDE
        if kpi[0] in table and ((table[kpi[0]] != 0) & table[kpi[0]].notna()).any()
    )


def _worst(table: pd.DataFrame) -> tuple[tuple[str, str, int], ...]:
    """Return the figures of ``WORST`` that ``table`` has."""
    return tuple(kpi for kpi in WORST if kpi[0] in table)


def _cells(
    row: pd.Series, baseline: str, sep: str, shown: tuple[tuple[str, str, int], ...]
) -> list[str]:
    if row["seeds"] == 0:  # nothing measured: the reason stands where the figures would
        return [
            f"{'refused' if row.get('refused') else 'failed'}: {row['failure']}",
            *[""] * (len(shown) - 1),
        ]
    cells = []
    worst = {name for name, _, _ in WORST}
    for metric, _, decimals in shown:
        if metric in worst:
            cells.append(format_cell(row[metric], math.nan, None, decimals))
            continue
        change = None if row["controller"] == baseline else row[f"{metric}_change_pct"]
        cells.append(format_cell(row[metric], row[f"{metric}_ci95"], change, decimals, sep=sep))
    return cells


def comparison_markdown(table: pd.DataFrame, *, baseline: str) -> str:
    """Return the comparison as a Markdown table, one row per scenario and controller."""
    shown = _shown(table) + _worst(table)
    head = ["scenario", "controller", "seeds", *(heading for _, heading, _ in shown)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in table.iterrows():
        seeds = (
            f"{row['seeds']} ({row['failed']} failed)"
            if row["seeds"] and row["failed"]
            else str(row["seeds"])
        )
        cells = [row["scenario"], row["controller"], seeds, *_cells(row, baseline, " ", shown)]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_rich(table: pd.DataFrame, *, baseline: str, title: str):
    """Return the comparison as a rich renderable for the terminal: a table.

    The ``WORST`` figures get columns of their own where the terminal has room for them beside
    the others, else a line each below the table.
    """
    worst = _worst(table)
    wide = _rich_table(table, baseline=baseline, title=title, shown=_shown(table) + worst)
    if not worst or not table["seeds"].any():
        return wide  # nothing to show below the table when no run finished
    lines = [
        f"{heading} (worst seed): "
        + ", ".join(
            f"{row['controller']} {format_cell(row[name], math.nan, None, decimals)}"
            for _, row in table.iterrows()
            if row["seeds"]
        )
        for name, heading, decimals in worst
    ]
    narrow = _rich_table(
        table, baseline=baseline, title=title, shown=_shown(table), caption="\n".join(lines)
    )
    return _Fitting(wide, narrow)


class _Fitting:
    """Render ``wide`` where the console has room for all of it, else ``narrow``."""

    def __init__(self, wide, narrow):
        self.wide, self.narrow = wide, narrow

    def __rich_console__(self, console, options):
        from rich.measure import Measurement

        # Measured unbounded: a measurement within the console's width is cut to it.
        needed = Measurement.get(console, options.update(max_width=1 << 16), self.wide).maximum
        yield self.wide if needed <= options.max_width else self.narrow


def _rich_table(
    table: pd.DataFrame,
    *,
    baseline: str,
    title: str,
    shown: tuple[tuple[str, str, int], ...],
    caption: str | None = None,
):
    """Return the rich Table of the comparison with the ``shown`` columns and a ``caption``."""
    from rich.table import Table
    from rich.text import Text

    out = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    out.add_column("Controller", style="bold", no_wrap=True)
    for _, heading, _ in shown:
        out.add_column(heading, justify="right")
    for _, row in table.iterrows():
        name = (
            f"{row['controller']} ({row['failed']} failed)"
            if row["seeds"] and row["failed"]
            else row["controller"]
        )
        # Text, not markup: SUMO's and Python's messages may hold [brackets]. A failure's reason is
        # cut to the row (the command prints it whole below the table).
        cells = [
            Text(cell, no_wrap=row["seeds"] == 0, overflow="ellipsis")
            for cell in _cells(row, baseline, "\n", shown)
        ]
        out.add_row(name, *cells, style="red" if row["seeds"] == 0 else None)
    return out


def plot_comparison(
    table: pd.DataFrame, path: Path, *, metrics: tuple[tuple[str, str], ...]
) -> None:
    """Plot grouped bars, a group per scenario and a bar per controller, with 95% CI whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scenarios = list(dict.fromkeys(table["scenario"]))
    controllers = list(dict.fromkeys(table["controller"]))
    width = 0.8 / len(controllers)
    fig, axes = plt.subplots(
        len(metrics), 1, figsize=(max(8, 1.6 * len(scenarios)), 3.2 * len(metrics)), squeeze=False
    )
    for ax, (metric, label) in zip(axes[:, 0], metrics):
        for k, controller in enumerate(controllers):
            rows = table[table["controller"] == controller].set_index("scenario").reindex(scenarios)
            x = np.arange(len(scenarios)) + (k - (len(controllers) - 1) / 2) * width
            ax.bar(
                x,
                rows[metric],
                width,
                yerr=rows[f"{metric}_ci95"].fillna(0),
                capsize=2,
                label=controller,
            )
        ax.set_xticks(np.arange(len(scenarios)), scenarios)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(ncol=min(len(controllers), 4), fontsize="small")
    axes[0, 0].set_title("mean over seeds, 95% confidence interval")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_failures(failures: Sequence[RunFailure], folder: Path) -> None:
    """Write ``failures.csv``, one row per failed run or preparation, when anything failed."""
    if failures:
        failure_frame(failures).to_csv(folder / "failures.csv", index=False)


def write_emergency(results: Sequence[RunResult], folder: Path) -> None:
    """Write ``emergency.csv``: every run's emergency vehicles, with scenario, controller, seed.

    Nothing when no run had emergency vehicles.
    """
    tables = [
        r.emergency.assign(scenario=r.scenario, controller=r.controller, seed=r.seed)
        for r in results
        if r.emergency is not None
    ]
    if tables:
        table = pd.concat(tables, ignore_index=True)
        first = ["scenario", "controller", "seed"]
        table = table[first + [c for c in table.columns if c not in first]]
        table.to_csv(folder / "emergency.csv", index=False, float_format="%.2f")


def write_benchmark(
    summary: pd.DataFrame,
    table: pd.DataFrame,
    out: Path,
    *,
    baseline: str,
    header: str,
    failures: Sequence[RunFailure] = (),
) -> None:
    """Write the files of a benchmark into ``out``.

    ``results.csv`` (one row per measured run), ``results.md`` (the comparison),
    ``results.png`` and, when anything failed, ``failures.csv``.
    """
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "results.csv", index=False, float_format="%.4f")
    write_failures(failures, out)
    (out / "results.md").write_text(header + "\n\n" + comparison_markdown(table, baseline=baseline))
    plot_comparison(
        table,
        out / "results.png",
        metrics=(("mean_delay_s", "mean delay (s/veh)"), ("congestion_index", "congestion index")),
    )
