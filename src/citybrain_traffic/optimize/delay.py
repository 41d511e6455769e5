"""Signal delay model: uniform delay (Webster/HCM) plus HCM incremental delay, per green phase."""

from __future__ import annotations

import numpy as np

#: Length of the analysis period T of the incremental delay (h): one control interval.
DEFAULT_ANALYSIS_PERIOD_H = 0.25

#: HCM incremental-delay factor k for pretimed control.
_K_PRETIMED = 0.5
#: HCM upstream filtering factor I for an isolated signal (random arrivals).
_I_ISOLATED = 1.0


def phase_delay(
    cycle_s,
    green_s,
    critical_ratio,
    lanes,
    saturation_veh_h_lane,
    *,
    analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the degree of saturation and mean delay (s/veh) of a phase's critical lane group.

    With green ratio λ = g / C, degree of saturation x = y / λ and capacity
    c = saturation × lanes × λ (veh/h), the delay is the HCM control delay without initial queue:

    - uniform delay d1 = 0.5 C (1 − λ)² / (1 − min(1, x) λ);
    - incremental (overflow) delay d2 = 900 T [(x − 1) + √((x − 1)² + 8 k I x / (c T))] with the
      analysis period T in h, k = 0.5 (pretimed) and I = 1 (random arrivals). Unlike Webster's
      second term it stays finite for x ≥ 1, growing with the queue built up over T.

    The phase's critical lane group stands for all the vehicles the phase serves (a conservative
    approximation: other lane groups of the phase have lower x). Arguments broadcast as numpy
    arrays; a green spanning the whole cycle has no uniform delay.

    Parameters
    ----------
    cycle_s, green_s
        Cycle length and effective green (s).
    critical_ratio
        Critical flow ratio y of the phase (flow / saturation flow).
    lanes, saturation_veh_h_lane
        Lanes of the critical lane group and saturation flow per lane (veh/h/lane).
    analysis_period_h
        Analysis period T (h).

    Returns
    -------
    x, delay_s
        Degree of saturation (v/c) and mean delay per vehicle (s).
    """
    cycle = np.asarray(cycle_s, dtype=float)
    green = np.asarray(green_s, dtype=float)
    y = np.asarray(critical_ratio, dtype=float)
    ratio = green / cycle
    x = y / ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        # min(1, x) λ is min(λ, y): the same uniform delay without a second division.
        d1 = np.where(
            ratio < 1.0, 0.5 * cycle * (1.0 - ratio) ** 2 / (1.0 - np.minimum(ratio, y)), 0.0
        )
        capacity = (
            np.asarray(saturation_veh_h_lane, dtype=float) * np.asarray(lanes, dtype=float) * ratio
        )
        t = analysis_period_h
        d2 = (
            900.0
            * t
            * (
                (x - 1.0)
                + np.sqrt((x - 1.0) ** 2 + 8.0 * _K_PRETIMED * _I_ISOLATED * x / (capacity * t))
            )
        )
    return x, d1 + d2
