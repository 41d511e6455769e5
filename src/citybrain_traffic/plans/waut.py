"""SUMO WAUT schedules: switch every signal between its loaded programs at given times of day.

A WAUT (SUMO's "Wochenschaltautomatik", weekly switch automatism) names the program in force at
the simulation's start and the times at which every junction assigned to it switches program;
its ``period`` repeats the switches, so one day's (or one week's) schedule runs a simulation of
any length. The programs themselves come from a ``tlLogic`` file loaded before it
(``sumo -a plans.add.xml,waut.add.xml``).

Every junction switches by SUMO's ``GSP`` procedure at its program's good switching point,
``GSP_PARAM`` = 0 s, the start of its cycle: the program runs to the end of its cycle (its last
green's yellow and all-red included) and the next one begins with its first phase, the change a
cycle boundary always makes. SUMO's default procedure switches at once to the new program's
position in its cycle: it cut greens below their minimum and greens without their yellow (241
violations in one day on corridor). The new program then keeps the cycle it started at: SUMO
does not bring it back to its ``offset``, so coordinated offsets drift by the switch's wait.

SUMO (1.28, ``MSTLLogicControl``) takes switch times modulo the period and schedules the first
one later than the simulation's begin: a run that begins after the first period's last switch
(e.g. after Sunday's evening switch of a weekly schedule) keeps one program throughout. Runs
that begin within the first period, before its last switch, switch correctly from then on.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .units import format_seconds


#: The ``tlLogic`` parameter SUMO's GSP switch procedure reads: the position in the cycle (s) at
#: which a program may be left, and at which the next one starts.
GSP_PARAM = {"GSP": "0"}


@dataclass(frozen=True)
class ProgramSwitch:
    """From ``time_s`` (s after the schedule's reference time) on, signals run ``program_id``."""

    time_s: float
    program_id: str


def waut_xml(
    switches: Sequence[ProgramSwitch],
    tls_ids: Sequence[str],
    *,
    period_s: float,
    waut_id: str = "ctraffic-tod",
    ref_time_s: float = 0.0,
) -> str:
    """Return a SUMO additional file with one WAUT that switches ``tls_ids`` by ``switches``.

    Parameters
    ----------
    switches
        When each program starts, in s within ``[0, period_s)`` after ``ref_time_s``. Without a
        switch at 0, the program of the latest switch also runs from the period's start until
        the first switch (a night plan that spans midnight), so it is the WAUT's ``startProg``.
    tls_ids
        The signals the WAUT switches (``wautJunction``, by the ``GSP`` procedure); each must
        have every program loaded, with ``GSP_PARAM``.
    period_s
        The schedule repeats every ``period_s`` s (86400 for a day, 604800 for a week).
    waut_id, ref_time_s
        The WAUT's id, and the simulation time (s) of the period's start (midnight).

    Raises
    ------
    InputError
        For no switch or signal, a switch outside the period, or two switches at one time.
    """
    if not switches or not tls_ids:
        raise InputError("a WAUT needs at least one program switch and one signal")
    if not (math.isfinite(period_s) and period_s > 0):
        raise InputError(f"WAUT period must be a positive number of s, got {period_s!r}")
    ordered = sorted(switches, key=lambda s: s.time_s)
    times = [s.time_s for s in ordered]
    if not all(0 <= t < period_s for t in times) or len(set(times)) != len(times):
        raise InputError(
            f"WAUT switch times {times} must be distinct and within the period 0-{period_s:g} s"
        )
    root = ET.Element("additional")
    waut = ET.SubElement(
        root,
        "WAUT",
        id=waut_id,
        refTime=format_seconds(ref_time_s),
        startProg=ordered[0 if times[0] == 0 else -1].program_id,
        period=format_seconds(period_s),
    )
    for switch in ordered:
        ET.SubElement(waut, "wautSwitch", time=format_seconds(switch.time_s), to=switch.program_id)
    for tls in tls_ids:
        ET.SubElement(root, "wautJunction", wautID=waut_id, junctionID=tls, procedure="GSP")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_waut(
    path: Path,
    switches: Sequence[ProgramSwitch],
    tls_ids: Sequence[str],
    *,
    period_s: float,
    waut_id: str = "ctraffic-tod",
) -> Path:
    """Write ``waut_xml`` to ``path`` and return it."""
    path.write_text(waut_xml(switches, tls_ids, period_s=period_s, waut_id=waut_id))
    return path
