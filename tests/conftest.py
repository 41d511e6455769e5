"""Shared fixtures: the shared data folder (optional), small real scenarios, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """``$CTRAFFIC_SHARED`` or ``../shared`` beside the project; None when absent."""
    path = Path(os.environ.get("CTRAFFIC_SHARED", ROOT.parent / "shared"))
    return path if (path / "data").is_dir() else None


@pytest.fixture
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip(
            "shared data folder absent (../shared or $CTRAFFIC_SHARED): "
            "real-city fixtures not available"
        )
    return path


@pytest.fixture
def resco(shared):
    def config(name: str) -> Path:
        return shared / "data" / "resco" / name / f"{name}.sumocfg"

    return config


def route_counts(scenario, network, folder: Path, *, day, hours: int = 1):
    """A count table of ``scenario``'s routed demand in 15-minute bins over its first ``hours``
    (each vehicle counted when it reaches the signal), and the routed file."""
    import pandas as pd

    from citybrain_traffic.flows import flows_from_routes, route_demand

    routed = route_demand(scenario, folder)
    tables = []
    for start in range(0, 3600 * hours, 900):
        flows = flows_from_routes(routed, network, begin=start, end=start + 900)
        tables.append(
            flows.assign(timestamp=day + pd.Timedelta(seconds=start), count=flows["flow_veh_h"] / 4)
        )
    return pd.concat(tables, ignore_index=True)[
        ["timestamp", "intersection", "movement", "count"]
    ], routed


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``ctraffic`` as a user would, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "citybrain_traffic.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
