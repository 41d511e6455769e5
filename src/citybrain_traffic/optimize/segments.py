"""Cut a circular day profile into contiguous periods of least squared error, and count them.

A profile is (bins x series): e.g. every signal's flow (veh/h) in each bin of the day. The
segmentation is exact (dynamic programming over every rotation of the day, so a period may span
midnight) with a shortest period; the number of periods is the knee of the error curve, capped
where more periods only fit noise (BIC).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def segment_day(profile: np.ndarray, *, min_slots: int) -> dict[int, tuple[float, list[int]]]:
    """Cut a circular day profile into k contiguous periods of least squared error, every k.

    ``profile`` is (slots x series), e.g. each signal's flow per bin. Returns, per k from 1 to
    as many as periods of at least ``min_slots`` allow, the sum of squared deviations from the
    period means and the first slot of every period, ascending.
    """
    n = profile.shape[0]
    k_max = n // min_slots
    best: dict[int, tuple[float, list[int]]] = {1: (_sse(profile), [0])}
    for shift in range(n):
        rolled = np.roll(profile, -shift, axis=0)
        costs = _segment_costs(rolled, min_slots)
        total = costs[0].copy()  # total[j]: best cost of slots [0, j) in k periods
        choices = []
        for k in range(2, k_max + 1):
            candidates = total[:, None] + costs
            choices.append(candidates.argmin(axis=0))
            total = candidates.min(axis=0)
            if total[n] < best.get(k, (math.inf, []))[0] - 1e-9:
                starts, j = [], n
                for choice in reversed(choices):
                    j = int(choice[j])
                    starts.append(j)
                best[k] = (float(total[n]), sorted((s + shift) % n for s in [0, *starts]))
    return best


def knee(errors: Sequence[float]) -> int:
    """Return the number of periods at the knee of the error curve (1-based).

    ``errors[k - 1]`` is the least squared error with k periods. With both axes scaled to
    [0, 1], the knee is the point farthest below the chord from the first point to the last
    (the "Kneedle" criterion of Satopaa et al., 2011): beyond it, another period buys less fit
    than the average over the whole range.
    """
    y = np.asarray(errors, dtype=float)
    if len(y) < 3 or y[0] <= y.min():
        return len(y) if len(y) < 3 and y[-1] < y[0] else 1
    x = np.linspace(0.0, 1.0, len(y))
    scaled = (y - y.min()) / (y[0] - y.min())
    chord = scaled[0] + (scaled[-1] - scaled[0]) * x
    return int(np.argmax(chord - scaled)) + 1


def period_count(
    fits: Mapping[int, tuple[float, list[int]]], *, noise_var: float, slots: int, series: int
) -> int:
    """Return how many periods to use: the knee of the error curve, if significant.

    The knee is taken over every k ``fits`` holds (``knee``); it is capped at the k of least
    BIC = error / ``noise_var`` + k (series + 1) ln(values), so that noise never makes a period
    (a flat profile stays one). ``noise_var`` is the variance of one profile value ((veh/h)^2)
    and there are ``slots`` x ``series`` values.
    """
    log_n = math.log(slots * series)
    bic = {k: e / noise_var + k * (series + 1) * log_n for k, (e, _) in fits.items()}
    significant = min(bic, key=bic.__getitem__)
    return min(knee([fits[k][0] for k in sorted(fits)]), significant)


def _sse(x: np.ndarray) -> float:
    return float(((x - x.mean(axis=0)) ** 2).sum())


def _segment_costs(x: np.ndarray, min_slots: int) -> np.ndarray:
    """Cost[i, j]: squared error of slots [i, j) about their mean; inf when shorter than allowed."""
    n = x.shape[0]
    s1 = np.vstack([np.zeros(x.shape[1]), np.cumsum(x, axis=0)])
    s2 = np.concatenate([[0.0], np.cumsum((x**2).sum(axis=1))])
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    length = np.maximum(j - i, 1)
    sums = s1[j] - s1[i]
    cost = (s2[j] - s2[i]) - (sums**2).sum(axis=2) / length
    cost[j - i < min_slots] = math.inf
    return np.maximum(cost, 0.0)
