"""The adaptive controller's preparation: its options, counting loops and opening counts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from ..clock import SIM_DAY_ZERO
from ..errors import InputError, NotApplicableError
from ..model_folder import read_metadata
from ..sim.detectors import MovementLoop, movement_loops
from .realtime import MAX_GREEN_FACTOR, MIN_GREEN_SHARE
from .greens import MAX_RED_CYCLES
from .sequencing import SEQUENCE_MODES, TICK_S

if TYPE_CHECKING:
    from ..network import Network
    from ..scenario import Scenario

#: How the real-time layer treats the plans' cycles and offsets: ``free`` lets gap-outs shorten
#: the cycle, ``held`` runs coordinated-actuated (``PlanSwitcher``).
OFFSETS = ("free", "held")
#: The real-time layer's sequence modes: the sequencer's (``free``, ``cyclic``), or ``plan``
#: (each plan as SUMO's gap-actuated program, in its order).
SEQUENCES = ("free", "cyclic", "plan")


def check_params(
    model: Path | None,
    *,
    interval_min: float,
    offsets: str,
    sequence: str = "free",
    max_red_s: float | None = None,
    phases: str = "own",
    realtime: bool = True,
) -> None:
    """Refuse adaptive options that cannot work together (see ``AdaptiveController``).

    Raises
    ------
    InputError
    An interval out of range, an unknown offsets, sequence or phases mode, rebuilt phases
    without the sequencer, a maximum red that is not a positive number of seconds, or a model
    that does not forecast one control interval ahead on counts of that interval.
    """
    minutes = float(interval_min)
    if not 1 <= minutes <= 120:
        raise InputError(f"--interval {minutes:g} min: expected 1 to 120 minutes")
    if offsets not in OFFSETS:
        raise InputError(f"--offsets {offsets!r}: expected one of {', '.join(OFFSETS)}")
    if sequence not in SEQUENCES:
        raise InputError(f"--sequence {sequence!r}: expected one of {', '.join(SEQUENCES)}")
    if max_red_s is not None and not (math.isfinite(max_red_s) and max_red_s > 0):
        raise InputError(f"--max-red {max_red_s!r}: expected a positive number of seconds")
    if phases not in ("own", "rebuilt"):
        raise InputError(f"--phases {phases!r}: expected own or rebuilt")
    if phases == "rebuilt" and not (realtime and sequence in SEQUENCE_MODES):
        raise InputError(
            "--phases rebuilt runs with --sequence free or cyclic (the plans of --sequence "
            "plan and --fixed-plans are installed over the network's own programs)"
        )
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


def describe(controller: Any, network: Network) -> str:
    """Return one line on how the fitted ``controller`` (an ``AdaptiveController``) will run."""
    parts = [f"adaptive: every {controller.interval_min:g} min"]
    if controller.opening_:
        parts.append("the first interval's plans come from the history's mean of that time")
    if controller.own_program:
        parts.append("the network's own program runs unchanged (it did best on the checks)")
    elif not controller.realtime:
        parts.append("plans run as fixed time (coordinated offsets)")
    elif controller.sequenced:
        bound = (
            f"{controller.max_red_s:g} s"
            if controller.max_red_s is not None
            else f"{MAX_RED_CYCLES:g}x the plan's cycle"
        )
        parts.append(
            f"real-time layer: {controller.sequence} sequence, every {TICK_S:g} s the green that "
            "serves the vehicles on the approaches fastest (change interval and start-up "
            "counted; empty greens skipped), each green from its minimum up to "
            f"{MAX_GREEN_FACTOR:g}x its plan (at least the signal's own green), maximum red "
            f"for a waiting vehicle {bound}"
        )
    elif controller.hold_offsets_:
        parts.append(
            "real-time layer: coordinated-actuated, cycles and offsets held (each signal's "
            "longest green ends at its planned point in the cycle; the other greens gap out "
            f"from {MIN_GREEN_SHARE:g}x their planned length, at least the minimum green, up "
            "to it, and the time they free goes to the longest green)"
        )
    else:
        parts.append(
            f"real-time layer: gap-actuated greens from {MIN_GREEN_SHARE:g}x (at least the "
            f"minimum green) to {MAX_GREEN_FACTOR:g}x the planned green (at least the "
            "signal's own green), cycles free"
        )
    if (
        controller.realtime
        and not controller.sequenced
        and controller.offsets == "held"
        and len(network.intersections) == 1
    ):
        parts.append("--offsets held: one signal, no offsets to hold")
    if controller.phases == "rebuilt":
        parts.append("on the phases netconvert --tls.rebuild derives from the junctions' conflicts")
    if controller.blind_:
        parts.append(
            f"{sum(map(len, controller.blind_.values()))} green phases without a SUMO detector "
            "run their planned length"
        )
    return "; ".join(parts)


def forecast_counts(
    forecaster: Any, counts: pd.DataFrame, origin: pd.Timestamp, interval_s: float
) -> tuple[pd.DataFrame, str]:
    """Return every movement's expected count in the interval from ``origin``, and its source.

    The forecaster's P50 where it has one, else the movement's mean count over the last
    hour of ``counts`` (``timestamp``, ``intersection``, ``movement``, ``count``).
    """
    last_hour = counts[counts["timestamp"] >= origin - pd.Timedelta(hours=1)]
    # as_index=False: a frame with the keys as columns (pandas-stubs types it a Series).
    profile = cast(
        pd.DataFrame,
        last_hour.groupby(["intersection", "movement"], as_index=False)["count"].mean(),
    )
    if forecaster is None:
        return profile, "recent mean"
    predicted = forecaster.predict(counts, at=origin, horizons=[int(round(interval_s / 60))])
    predicted = predicted.dropna(subset=["p50"])[["intersection", "movement", "p50"]].rename(
        columns={"p50": "count"}
    )
    merged = profile.merge(
        predicted, on=["intersection", "movement"], how="left", suffixes=("_recent", "")
    )
    merged["count"] = merged["count"].fillna(merged["count_recent"])
    return merged[["intersection", "movement", "count"]], "lightgbm"


def blind_greens(scenario: Scenario, network: Network, workdir: Path) -> dict[str, frozenset[int]]:
    """Return, per signal, the greens of its bounded programs that SUMO places no detector for.

    SUMO gap-controls a green only through detectors on lanes whose every link it serves; a
    green it has none for keeps the plan's length (``--sequence plan``).
    """
    from ..plans import TimingPlan, write_tl_logics
    from .actuated import phases_without_detector
    from .realtime import bounded_plan

    probe = write_tl_logics(
        workdir / "adaptive-probe.add.xml",
        [
            bounded_plan(
                TimingPlan(tls_id=tls, program_id="ctraffic-adaptive-probe", phases=i.phases),
                i.phases,
            )
            for tls, i in network.intersections.items()
        ],
    )
    blind = phases_without_detector(scenario, probe, workdir)
    return {tls: frozenset(indices) for tls, indices in blind.items()}


def check_max_red(max_red_s: float, network: Network) -> None:
    """Refuse a maximum red no signal could keep when every green has vehicles waiting.

    A signal needs its program's cycle at minimum greens to serve each of its greens once (its
    change intervals at their lengths); a shorter bound would have to cut a minimum green.

    Raises
    ------
    InputError
        Naming the signal that needs the most, and how much.
    """
    needs = {
        tls: sum(p.min_green if p.is_green else p.duration for p in i.phases)
        for tls, i in network.intersections.items()
    }
    tls, need = max(needs.items(), key=lambda item: item[1])
    if max_red_s < need:
        raise InputError(
            f"--max-red {max_red_s:g} s cannot be kept: signal {tls} needs {need:g} s to serve "
            "each of its greens once at its minimum, with its yellow and all-red; give at least "
            f"{need:g} s"
        )
