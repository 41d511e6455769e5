"""`adaptive --phases rebuilt` against `actuated-rebuilt`: the same netconvert phases (issue 14).

Both run on the phases `netconvert --tls.rebuild` derives from the junctions' conflicts:
`actuated-rebuilt` as SUMO's gap-actuated programs, `adaptive` with its sequencer (free order,
empty greens skipped). This script runs `adaptive --phases rebuilt` (default options otherwise:
forecaster trained on 14 simulated days, cached) on every scenario and takes `actuated-rebuilt`'s
per-seed rows from the committed `benchmarks/results/baselines.csv` (runs are deterministic by
seed). Target per scenario: `adaptive --phases rebuilt`'s mean delay below `actuated-rebuilt`'s,
with 0 safety violations. Writes `adaptive_rebuilt.csv` and `adaptive_rebuilt.md`; exit code 1 on
a miss or a failed run.

    python benchmarks/adaptive_rebuilt.py [--seeds 1-5] [--jobs 2] [--scenarios single,...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import argument_parser, scenario_specs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    args = argument_parser(__doc__).parse_args()
    from citybrain_traffic.experiments.simulate import simulate_scenario
    from citybrain_traffic.harness.seeds import parse_seeds
    from citybrain_traffic.harness.stats import mean_ci95
    from citybrain_traffic.network import read_network
    from citybrain_traffic.scenario import load_scenario

    seeds = parse_seeds(args.seeds)
    committed = pd.read_csv(ROOT / "benchmarks" / "results" / "baselines.csv")
    rows, table, missed = [], [], 0
    for spec in scenario_specs(args.scenarios.split(",") if args.scenarios else None):
        scenario = load_scenario(spec)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            outcome = simulate_scenario(
                scenario,
                read_network(scenario.net_file),
                controllers=["adaptive"],
                seeds=seeds,
                workdir=Path(tmp),
                jobs=args.jobs,
                write_files=False,
                controller_options={"adaptive": {"phases": "rebuilt"}},
            )
        mine = outcome.summary.assign(controller="adaptive --phases rebuilt")
        if len(mine) != len(seeds):
            print(f"{scenario.name}: {len(seeds) - len(mine)} run(s) failed", flush=True)
            missed += 1
        theirs = committed[
            (committed["scenario"] == scenario.name)
            & (committed["controller"] == "actuated-rebuilt")
            & (committed["seed"].isin(seeds))
        ]
        rows += [mine, theirs]
        a, b = mine["mean_delay_s"].mean(), theirs["mean_delay_s"].mean()
        unsafe = int(mine["safety_violations"].sum())
        met = a < b and unsafe == 0 and len(theirs) == len(seeds)
        missed += not met
        ours_ci, theirs_ci = mean_ci95(mine["mean_delay_s"]), mean_ci95(theirs["mean_delay_s"])
        table.append(
            f"| {scenario.name} | {ours_ci[0]:.1f} ± {ours_ci[1]:.1f} | "
            f"{theirs_ci[0]:.1f} ± {theirs_ci[1]:.1f} | {a / b:.3f} | {unsafe} | "
            f"{'met' if met else 'MISSED'} |"
        )
        print(
            f"{scenario.name:<12} {time.perf_counter() - t0:6.0f} s  adaptive --phases rebuilt "
            f"{a:.1f} s, actuated-rebuilt {b:.1f} s",
            flush=True,
        )
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(rows, ignore_index=True).to_csv(out / "adaptive_rebuilt.csv", index=False)
    (out / "adaptive_rebuilt.md").write_text(
        "# `adaptive --phases rebuilt` against `actuated-rebuilt` (same netconvert phases)\n\n"
        f"Command: `python benchmarks/adaptive_rebuilt.py --seeds {args.seeds} --jobs {args.jobs}`"
        " (SUMO 1.28). `actuated-rebuilt`'s rows: the committed `baselines.csv`. Cells: mean ± "
        "95% CI of mean delay (s/veh) over the seeds.\n\n"
        "| scenario | adaptive --phases rebuilt | actuated-rebuilt | ratio | safety violations "
        "| target |\n|---|---:|---:|---:|---:|---|\n" + "\n".join(table) + "\n"
    )
    print("\n".join(table))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
