"""Optimizer speed: one signal, the coordinated 16-signal grid, and 1,000 signals' splits.

Each case is timed end to end from flows (demand ratios + optimization), medians of repeats:

- one isolated signal (every signal type of the bundled and RESCO nets, the slowest one's
  median counts), random flows of 0-900 veh/h per movement: target <= 50 ms;
- the bundled `grid` (16 signals) coordinated (common cycle, splits, roads read from the net,
  CP-SAT offsets) with its peak-quarter flows from the routes: target <= 2 s;
- 1,000 signals' splits: the bundled and RESCO signals replicated with random flows of
  0-900 veh/h per movement: target <= 10 s.

Exit code 1 when a target is missed.

    python benchmarks/optimize_speed.py [--repeats 5] [--out benchmarks/results/optimize_speed.md]
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS_S = {"one signal": 0.050, "grid, coordinated": 2.0, "1,000 signals, splits": 10.0}
SIGNALS = 1000


def networks():
    from citybrain_traffic.network import read_network

    paths = [
        ROOT / "scenarios" / "sumo" / name / f"{name}.net.xml"
        for name in ("single", "corridor", "grid")
    ]
    shared = Path(os.environ.get("CTRAFFIC_SHARED", ROOT.parent / "shared")) / "data" / "resco"
    if shared.is_dir():
        paths += sorted(shared.glob("*/*.net.xml"))
    else:
        print("shared data absent: the bundled nets only")
    return {path.stem.removesuffix(".net"): read_network(path) for path in paths}


def random_flows(intersection, rng: random.Random) -> dict[str, float]:
    return {
        m: rng.uniform(0.0, 900.0) for m in sorted({link.movement for link in intersection.links})
    }


def time_one_signal(nets, repeats: int) -> tuple[float, str, int]:
    """Median time per signal, for the slowest signal: (seconds, which, signals timed)."""
    from citybrain_traffic.optimize import intersection_demand, optimize_splits

    rng = random.Random(1)
    medians = {}
    for name, network in nets.items():
        for tls, intersection in network.intersections.items():
            flows = random_flows(intersection, rng)
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                optimize_splits(
                    intersection, intersection_demand(intersection, network.lanes, flows)
                )
                runs.append(time.perf_counter() - start)
            # Some real-city signal ids run to hundreds of characters.
            label = tls if len(tls) <= 32 else tls[:29] + "..."
            medians[f"{name}/{label}"] = statistics.median(runs)
    slowest = max(medians, key=medians.get)
    return medians[slowest], slowest, len(medians)


def time_grid(nets, repeats: int) -> tuple[float, str]:
    from citybrain_traffic.flows import flows_from_routes
    from citybrain_traffic.optimize import coordinate, flows_by_signal, intersection_demand

    network = nets["grid"]
    table = flows_from_routes(
        ROOT / "scenarios" / "sumo" / "grid" / "grid.rou.xml", network, begin=3600, end=4500
    )
    flows = flows_by_signal(table)
    runs, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        demands = {
            tls: intersection_demand(network.intersections[tls], network.lanes, movement_flows)
            for tls, movement_flows in flows.items()
        }
        result = coordinate(network, demands)
        runs.append(time.perf_counter() - start)
    saved = 1 - result.red_arrival_delay_veh_s_h / result.uncoordinated_red_arrival_delay_veh_s_h
    detail = (
        f"cycle {result.cycle_s:g} s, {len(result.links)} links, offsets {result.status}, "
        f"red-arrival wait {saved:.0%} below all-zero offsets"
    )
    return statistics.median(runs), detail


def time_many(nets, repeats: int) -> tuple[float, str]:
    from citybrain_traffic.optimize import intersection_demand, optimize_splits

    pool = [(network, i) for network in nets.values() for i in network.intersections.values()]
    rng = random.Random(2)
    work = [
        (network, i, random_flows(i, rng))
        for network, i in (pool[k % len(pool)] for k in range(SIGNALS))
    ]
    runs, statuses = [], collections.Counter()
    for _ in range(repeats):
        statuses.clear()
        start = time.perf_counter()
        for network, intersection, flows in work:
            timing = optimize_splits(
                intersection, intersection_demand(intersection, network.lanes, flows)
            )
            statuses[timing.status] += 1
        runs.append(time.perf_counter() - start)
    mix = ", ".join(f"{n} {status}" for status, n in statuses.most_common())
    return statistics.median(runs), f"{len(pool)} distinct signals replicated; {mix}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "optimize_speed.md"
    )
    args = parser.parse_args()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    nets = networks()
    one, slowest, count = time_one_signal(nets, args.repeats)
    grid, grid_detail = time_grid(nets, args.repeats)
    many, many_detail = time_many(nets, max(1, args.repeats // 2))
    rows = [
        ("one signal", one, f"slowest of {count} signals: {slowest}"),
        ("grid, coordinated", grid, grid_detail),
        ("1,000 signals, splits", many, many_detail),
    ]
    missed = [case for case, seconds, _ in rows if seconds > TARGETS_S[case]]

    header = f"{'case':<24}{'median':>12}{'target':>10}  result  detail"
    print(header)
    for case, seconds, detail in rows:
        verdict = "MISSED" if case in missed else "ok"
        print(
            f"{case:<24}{seconds * 1000:>9.1f} ms"
            f"{TARGETS_S[case] * 1000:>7.0f} ms  {verdict:<6}  {detail}"
        )

    lines = [
        "# Optimizer speed",
        "",
        f"Command: `python benchmarks/optimize_speed.py --repeats {args.repeats}`; "
        f"medians of repeats (the 1,000-signal case: {max(1, args.repeats // 2)} repeats). "
        "Each time runs from flows: demand ratios + optimization (+ reading the roads between "
        "signals, for the grid).",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
        f"load average {load:.1f} at the start; Python {platform.python_version()}.",
        "",
        "| case | median | target | result | detail |",
        "|---|---:|---:|---|---|",
    ]
    for case, seconds, detail in rows:
        verdict = "missed" if case in missed else "ok"
        lines.append(
            f"| {case} | {seconds * 1000:.1f} ms | {TARGETS_S[case] * 1000:.0f} ms | "
            f"{verdict} | {detail} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    if missed:
        print(f"target missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
