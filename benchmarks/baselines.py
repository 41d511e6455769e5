"""The baselines on the bundled scenarios and the shared RESCO scenarios, several seeds.

Writes `benchmarks/results/baselines.csv` (one row per scenario, controller and seed, the
`summary.csv` columns) and `baselines.md` (mean ± 95% CI over the seeds and % change against
`fixed`). As a check that the harness measures what it says, `fixed` on each RESCO scenario must
reproduce the reference mean delay in shared/README.md (measured there with plain SUMO 1.28,
5 seeds) within 5%; exit code 1 otherwise or when a run fails.

`--controllers` runs only those named (a new baseline, say): their rows replace theirs in the
existing `baselines.csv`, every other row is kept as it is, and `baselines.md` is written from
the merged rows.

    python benchmarks/baselines.py [--seeds 1-5] [--jobs 2] [--scenarios corridor,cologne1,...]
        [--controllers max-pressure-queue]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CONTROLLERS = [
    "fixed",
    "actuated",
    "actuated-rebuilt",
    "webster",
    "max-pressure",
    "max-pressure-queue",
]
#: Mean delay (s) of the nets' own programs, from shared/README.md (plain SUMO 1.28, 5 seeds).
RESCO_REFERENCE_DELAY_S = {
    "cologne1": 42.9,
    "cologne3": 36.1,
    "ingolstadt1": 29.7,
    "ingolstadt7": 84.5,
    "grid4x4": 91.4,
}
REFERENCE_TOLERANCE = 0.05


def scenario_specs(only: list[str] | None) -> list[str]:
    from citybrain_traffic.scenario import bundled_scenarios

    specs = list(bundled_scenarios())
    shared = Path(os.environ.get("CTRAFFIC_SHARED", ROOT.parent / "shared")) / "data" / "resco"
    if shared.is_dir():
        specs += [str(p) for p in sorted(shared.glob("*/*.sumocfg"))]
    else:
        print("shared data absent: bundled scenarios only")
    if only:
        specs = [s for s in specs if Path(s).stem in only or s in only]
    return specs


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """The options every scenario-matrix benchmark takes (a script may add its own)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="1-5")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--scenarios", help="comma-separated names to run (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    return parser


def parse_args(doc: str) -> argparse.Namespace:
    return argument_parser(doc).parse_args()


def simulate_spec(
    spec: str,
    controllers: list[str],
    seeds: list[int],
    *,
    jobs: int,
    demand_scale: float = 1.0,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """One scenario x ``controllers`` x ``seeds`` in a scratch folder; the summary rows.

    The controllers' preparation notes are appended to ``notes``, prefixed with the scenario's name.
    """
    from citybrain_traffic.network import read_network
    from citybrain_traffic.scenario import load_scenario
    from citybrain_traffic.experiments.simulate import simulate_scenario

    scenario = load_scenario(spec)
    sink = notes if notes is not None else []
    with tempfile.TemporaryDirectory() as tmp:
        outcome = simulate_scenario(
            scenario,
            read_network(scenario.net_file),
            controllers=controllers,
            seeds=seeds,
            workdir=Path(tmp),
            jobs=jobs,
            demand_scale=demand_scale,
            write_files=False,
            on_prepared=lambda found, _runs: sink.extend(
                f"{scenario.name}: {note}" for note in found
            ),
        )
    return outcome.summary


def run_scenarios(
    args: argparse.Namespace, controllers: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Every scenario x ``controllers`` x the seeds; the summary rows and the controllers' notes."""
    from citybrain_traffic.harness.seeds import parse_seeds

    seeds = parse_seeds(args.seeds)
    summaries, notes = [], []
    for spec in scenario_specs(args.scenarios.split(",") if args.scenarios else None):
        t0 = time.perf_counter()
        summary = simulate_spec(spec, controllers, seeds, jobs=args.jobs, notes=notes)
        summaries.append(summary)
        delays = summary.groupby("controller", sort=False)["mean_delay_s"].mean()
        print(
            f"{summary['scenario'].iloc[0]:<12} {time.perf_counter() - t0:6.0f} s  mean delay: "
            + ", ".join(f"{c} {d:.1f}" for c, d in delays.items()),
            flush=True,
        )
    return pd.concat(summaries, ignore_index=True), notes


def merge_rows(committed: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """``committed`` with the rows of ``fresh``'s scenarios and controllers replaced by ``fresh``.

    The other rows are kept unchanged, with the committed columns. Rows are ordered by scenario
    (the committed order, then new ones), controller (``CONTROLLERS``' order) and seed, so that
    a new controller's rows stand beside the others of its scenario.

    Raises
    ------
    SystemExit
        When ``fresh`` has a column the committed rows lack with a value other than 0: it could
        not be written without changing the committed rows.
    """
    extra = [c for c in fresh.columns if c not in committed.columns]
    telling = [c for c in extra if (fresh[c].fillna(0) != 0).any()]
    if telling:
        raise SystemExit(
            f"the fresh rows have non-zero {', '.join(telling)}, which the committed CSV lacks: "
            "rerun every controller"
        )
    replaced = committed["scenario"].isin(fresh["scenario"]) & committed["controller"].isin(
        fresh["controller"]
    )
    merged = pd.concat([committed[~replaced], fresh[list(committed.columns)]], ignore_index=True)
    scenarios = list(dict.fromkeys([*committed["scenario"], *fresh["scenario"]]))
    controllers = list(dict.fromkeys([*CONTROLLERS, *merged["controller"]]))
    order = merged.assign(
        _s=merged["scenario"].map(scenarios.index), _c=merged["controller"].map(controllers.index)
    ).sort_values(["_s", "_c", "seed"], kind="stable")
    return merged.loc[order.index].reset_index(drop=True)


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument(
        "--controllers",
        help="comma-separated controllers to run, their rows merged into the existing CSV "
        "(default: every baseline, the CSV written anew)",
    )
    args = parser.parse_args()

    from citybrain_traffic.harness.seeds import parse_seeds
    from citybrain_traffic.harness.stats import comparison
    from citybrain_traffic.report import comparison_markdown
    from citybrain_traffic.sim.metrics import KPI_COLUMNS

    seeds = parse_seeds(args.seeds)
    started = time.perf_counter()
    controllers = args.controllers.split(",") if args.controllers else CONTROLLERS
    summary, _ = run_scenarios(args, controllers)
    command = f"python benchmarks/baselines.py --seeds {args.seeds} --jobs {args.jobs}"
    minutes = (time.perf_counter() - started) / 60
    provenance = f"whole run {minutes:.0f} min on {os.cpu_count()} shared cores"
    if args.controllers:
        summary = merge_rows(pd.read_csv(args.out / "baselines.csv"), summary)
        provenance = (
            f"the rows of {', '.join(f'`{c}`' for c in controllers)} run with `--controllers "
            f"{args.controllers}` ({minutes:.0f} min on {os.cpu_count()} shared cores) and merged "
            "into those of the other controllers, kept from the previous run"
        )
    table = comparison(summary, metrics=list(KPI_COLUMNS), baseline="fixed")
    args.out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(args.out / "baselines.csv", index=False, float_format="%.4f")

    problems = []
    check_lines = [
        "| scenario | fixed mean delay (s) | shared README reference (s) | within 5% |",
        "|---|---|---|---|",
    ]
    for name, reference in RESCO_REFERENCE_DELAY_S.items():
        rows = summary[(summary["scenario"] == name) & (summary["controller"] == "fixed")]
        if rows.empty:
            continue
        ours = rows["mean_delay_s"].mean()
        ok = abs(ours - reference) <= REFERENCE_TOLERANCE * reference
        check_lines.append(f"| {name} | {ours:.1f} | {reference:.1f} | {'yes' if ok else 'NO'} |")
        if not ok:
            problems.append(f"{name}: fixed mean delay {ours:.1f} s, reference {reference:.1f} s")

    from importlib.metadata import version

    text = [
        "# Baselines: every baseline controller on every scenario",
        "",
        f"Command: `{command}` (SUMO {version('eclipse-sumo')}, {len(seeds)} seeds, teleports "
        f"disabled; {provenance}). "
        "Each cell: mean ± 95% CI over the seeds, (% change against `fixed`). "
        "Delay counts vehicles still running and never inserted; see the README for every KPI's "
        "definition. Per-seed rows: `baselines.csv`.",
        "",
        comparison_markdown(table, baseline="fixed"),
        "## Check: `fixed` reproduces the shared reference figures",
        "",
        *check_lines,
        "",
    ]
    return write_report(args.out, "baselines", text, problems, label="CHECK FAILED")


def write_report(out: Path, name: str, lines: list[str], problems: list[str], *, label: str) -> int:
    """Write ``out/<name>.md`` (its CSV is written beside it already), print each problem;
    the exit code."""
    (out / f"{name}.md").write_text("\n".join(lines))
    print(f"written {out / (name + '.md')} and {name}.csv")
    for problem in problems:
        print(f"{label}: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
