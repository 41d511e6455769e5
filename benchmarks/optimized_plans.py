"""`optimized` fixed-time plans against `fixed` and `webster` on every scenario, several seeds.

Target (issue 4): on every bundled scenario and every shared RESCO scenario, `optimized` has a
lower mean delay (mean over the seeds) than both `fixed` (the network's own programs) and
`webster` (SUMO's tlsCycleAdaptation.py). The optimized controller checks its candidate cycles
in SUMO with seeds of its own (982451653-5), never with the evaluation seeds.

Writes `benchmarks/results/optimized_plans.csv` (one row per scenario, controller and seed) and
`optimized_plans.md` (mean ± 95% CI, % change against `fixed`, and the target per scenario);
exit code 1 when the target is missed anywhere or a run fails.

    python benchmarks/optimized_plans.py [--seeds 1-5] [--jobs 2] \
[--scenarios corridor,cologne1,...]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import parse_args, run_scenarios, write_report  # noqa: E402  (same scenarios and options as the baselines)

CONTROLLERS = ["fixed", "webster", "optimized"]


def main() -> int:
    args = parse_args(__doc__)

    from citybrain_traffic.harness.seeds import parse_seeds
    from citybrain_traffic.harness.stats import comparison
    from citybrain_traffic.report import comparison_markdown
    from citybrain_traffic.sim.metrics import KPI_COLUMNS

    seeds = parse_seeds(args.seeds)
    started = time.perf_counter()
    summary, prepared = run_scenarios(args, CONTROLLERS)
    notes = [f"- {note}" for note in prepared if ": optimized" in note]
    table = comparison(summary, metrics=list(KPI_COLUMNS), baseline="fixed")
    args.out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(args.out / "optimized_plans.csv", index=False, float_format="%.4f")

    means = summary.pivot_table(
        index="scenario", columns="controller", values="mean_delay_s", sort=False
    )
    lines = [
        "| scenario | fixed (s) | webster (s) | optimized (s) "
        "| vs fixed | vs webster | target met |",
        "|---|---|---|---|---|---|---|",
    ]
    missed = []
    for name, row in means.iterrows():
        ok = row["optimized"] < row["fixed"] and row["optimized"] < row["webster"]
        if not ok:
            missed.append(name)
        lines.append(
            f"| {name} | {row['fixed']:.1f} | {row['webster']:.1f} | {row['optimized']:.1f} | "
            f"{100 * (row['optimized'] / row['fixed'] - 1):+.1f}% | "
            f"{100 * (row['optimized'] / row['webster'] - 1):+.1f}% | "
            f"{'yes' if ok else 'NO'} |"
        )
    from importlib.metadata import version

    text = [
        "# Optimized fixed-time plans against fixed and webster",
        "",
        f"Command: `python benchmarks/optimized_plans.py --seeds {args.seeds} --jobs {args.jobs}` "
        f"(SUMO {version('eclipse-sumo')}, {len(seeds)} seeds, teleports disabled, whole run "
        f"{(time.perf_counter() - started) / 60:.0f} min on {os.cpu_count()} shared cores). "
        "Target: `optimized` below both `fixed` and `webster` in mean delay on every scenario.",
        "",
        *lines,
        "",
        "## All KPIs (mean ± 95% CI over the seeds, % change against `fixed`)",
        "",
        comparison_markdown(table, baseline="fixed"),
        "## What the optimized controller chose",
        "",
        *notes,
        "",
    ]
    return write_report(
        args.out,
        "optimized_plans",
        text,
        [", ".join(missed)] if missed else [],
        label="TARGET MISSED on",
    )


if __name__ == "__main__":
    sys.exit(main())
