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
        pytest.skip("shared data folder absent (../shared or $CTRAFFIC_SHARED): real-city fixtures not available")
    return path


@pytest.fixture
def resco(shared):
    def config(name: str) -> Path:
        return shared / "data" / "resco" / name / f"{name}.sumocfg"

    return config


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``ctraffic`` as a user would, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "citybrain_traffic.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
