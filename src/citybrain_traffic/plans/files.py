"""Read a plan file of either format, JSON or SUMO XML, told apart by its content."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .jsonfile import read_json
from .plan import TimingPlan
from .tllogic import read_tl_logics


def read_plans(path: Path) -> list[TimingPlan]:
    """Read plans from a JSON plan file or a SUMO additional/network file (by content).

    Raises
    ------
    InputError
        When the file is missing or cannot be read as plans.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"plan file not found: {path}")
    head = path.read_text(errors="replace")[:200].lstrip()
    return read_json(path) if head.startswith("{") else read_tl_logics(path)
