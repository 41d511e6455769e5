"""``ctraffic collect``: a simulated history of per-movement counts, for the forecasters."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from ..errors import InputError
from ._common import RunProgress, console, fresh_out_file


@click.command("collect")
@click.argument("scenario", required=False)
@click.option("--days", type=click.IntRange(min=1), required=True, help="Number of simulated days.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Counts file to write (.csv, .csv.gz or .parquet; must not exist); the days' "
    "variation goes beside it as <name>.days.csv.",
)
@click.option(
    "--bin",
    "bin_min",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="Count bin, minutes.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the day-to-day variation and the days' SUMO seeds.",
)
@click.option(
    "--start", default="2026-01-05", show_default=True, help="Date of the first day (YYYY-MM-DD)."
)
@click.option("-j", "--jobs", type=int, help="Days simulated in parallel [default: CPU count].")
def collect_command(
    scenario: str | None,
    days: int,
    out: str,
    bin_min: int,
    seed: int,
    start: str,
    jobs: int | None,
) -> None:
    """Simulate a history of DAYS days of SCENARIO and write its per-movement counts.

    Every day runs the scenario's window under the network's own signal programs with its own
    seed, a demand level by day of week (weekends lighter), a random day-to-day scale and, on
    some days, an incident that slows one approach for 20-40 minutes. Counts are vehicles per
    bin and movement (<incoming edge>><outgoing edge>) at every signal's stop line; timestamps
    put simulation time 0 at each day's midnight.
    """
    import pandas as pd

    from ..experiments.history import collect_history
    from ..network import read_network
    from ..scenario import load_scenario

    target = fresh_out_file(out, suffixes=(".csv", ".csv.gz", ".parquet"))
    days_file = fresh_out_file(
        target.with_name(target.name.split(".")[0] + ".days.csv"), suffixes=(".csv",)
    )
    try:
        first_day = pd.Timestamp(start)
    except ValueError:
        raise InputError(f"--start {start!r} is not a date (expected YYYY-MM-DD)") from None
    sc = load_scenario(scenario)
    network = read_network(sc.net_file)
    terminal = console()
    terminal.print(
        f"[bold]{sc.name}[/]: collecting {days} days of counts, {bin_min}-minute bins, "
        f"window {sc.begin:g}-{sc.end:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="ctraffic-") as tmp, RunProgress(terminal) as progress:
        counts, table = collect_history(
            sc,
            network,
            days=days,
            workdir=Path(tmp),
            seed=seed,
            bin_s=bin_min * 60.0,
            start=first_day,
            jobs=jobs or os.cpu_count() or 1,
            on_prepared=progress.prepared,
            on_progress=progress.advance,
            on_done=progress.done,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".parquet":
        counts.to_parquet(target, index=False)
    else:
        counts.to_csv(target, index=False)
    table.to_csv(days_file, index=False)
    incidents = int((table["incident_edge"] != "").sum())
    terminal.print(
        f"wrote {len(counts):,} counts ({counts['intersection'].nunique()} signals, "
        f"{counts['movement'].nunique()} movements) to {target}; "
        f"days and incidents ({incidents}) in {days_file}"
    )
