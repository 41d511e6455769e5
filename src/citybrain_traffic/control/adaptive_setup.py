"""The adaptive controller's preparation: its options, counting loops and opening counts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..clock import SIM_DAY_ZERO
from ..errors import InputError, NotApplicableError
from ..model_folder import read_metadata
from ..sim.detectors import MovementLoop, movement_loops

if TYPE_CHECKING:
    from ..network import Network
    from ..scenario import Scenario

#: How the real-time layer treats the plans' cycles and offsets: ``free`` lets gap-outs shorten
#: the cycle, ``held`` runs coordinated-actuated (``PlanSwitcher``).
OFFSETS = ("free", "held")


def check_params(model: Path | None, *, interval_min: float, offsets: str) -> None:
    """Refuse adaptive options that cannot work together (see ``AdaptiveController``).

    Raises
    ------
    InputError
    An interval out of range, an unknown offsets mode, or a model that does not
    forecast one control interval ahead on counts of that interval.
    """
    minutes = float(interval_min)
    if not 1 <= minutes <= 120:
        raise InputError(f"--interval {minutes:g} min: expected 1 to 120 minutes")
    if offsets not in OFFSETS:
        raise InputError(f"--offsets {offsets!r}: expected one of {', '.join(OFFSETS)}")
    if model is None:
        return
    try:
        meta = read_metadata(model)
    except InputError as exc:
        raise InputError(f"--model {model}: {exc}") from None
    horizons, bin_min = meta.get("horizons_min", []), float(meta.get("bin_minutes", minutes))
    if abs(bin_min - minutes) > 1e-9:
        raise InputError(
            f"--model {model} was trained on {bin_min:g}-min counts, but the controller "
            f"counts per control interval ({minutes:g} min): set --interval {bin_min:g}, or "
            f"train on {minutes:g}-min counts (ctraffic collect --bin {minutes:g})"
        )
    if not any(abs(float(h) - minutes) < 1e-9 for h in horizons):
        raise InputError(
            f"--model {model} forecasts "
            f"{', '.join(f'{float(h):g}' for h in horizons)} min ahead, but the control "
            f"interval is {minutes:g} min: train it with --horizons {minutes:g}, or set "
            "--interval to one of its horizons"
        )


def counting_loops(scenario: Scenario, network: Network) -> list[MovementLoop]:
    """Return the loops counting each movement; refuse a network that has none.

    Raises
    ------
    NotApplicableError
        When no signalized movement has a junction lane to count on.
    """
    loops = movement_loops(network)
    if not loops:
        # It counts each movement on the junction lane only that movement uses; a network
        # built without internal lanes has none.
        raise NotApplicableError(
            f"{scenario.name}: no signalized movement has a junction lane to count on (the "
            "network was built without internal lanes); adaptive counts movements there"
        )
    return loops


def opening_counts(history: Path, begin_s: float) -> list[list[Any]]:
    """Return the mean count per movement in the first interval of the history's like days.

    The history bins each simulated day from the scenario's begin; the run itself is simulated
    on ``SIM_DAY_ZERO``, so its weekday or weekend days are the ones that describe it.
    """
    counts = pd.read_csv(history, parse_dates=["timestamp"])
    offset = pd.Timedelta(seconds=begin_s % 86_400)
    weekend = SIM_DAY_ZERO.day_of_week >= 5
    stamps = counts["timestamp"]
    first = counts[
        (stamps - stamps.dt.normalize() == offset) & ((stamps.dt.day_of_week >= 5) == weekend)
    ]
    if first.empty:
        return []
    days = first["timestamp"].nunique()
    total = first.groupby(["intersection", "movement"], as_index=False)["count"].sum()
    return [[str(i), str(m), float(c) / days] for i, m, c in total.itertuples(index=False)]
