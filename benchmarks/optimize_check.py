"""The plans `ctraffic optimize` writes, run as `adapter sumo --plans` runs them, against `fixed`
and `optimized`, on every scenario and several seeds.

Target (issue 21): on every bundled scenario and every shared RESCO scenario, the plans that
`ctraffic optimize SCENARIO` writes (after its own check in SUMO on seeds of its own) have a mean
delay over the evaluation seeds no higher than `fixed`'s (the network's own programs) and no
higher than `optimized`'s (15-minute plans, checked the same way). When `optimize` refuses to
write because the network's own program did better in its check (exit 1, nothing written), the
signals keep their program: its delay is `fixed`'s. Beside the delays, the check's modelled and
simulated delay per approach (`check.csv`), summarised per scenario and listed in full.

Writes `benchmarks/results/optimize_check.csv` (one row per scenario, controller and seed; the
plans are `optimize-plans`) and `optimize_check.md`; exit code 1 when the target is missed
anywhere or a run fails. The RESCO scenarios are skipped, with the reason printed, when the
shared data is absent (CTRAFFIC_SHARED).

    python benchmarks/optimize_check.py [--seeds 1-5] [--jobs 2] [--scenarios single,corridor]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import parse_args, scenario_specs, simulate_spec, write_report  # noqa: E402  (same scenarios and options as the baselines)

PLANS = "optimize-plans"


def main() -> int:
    args = parse_args(__doc__)

    from citybrain_traffic.harness.seeds import parse_seeds

    seeds = parse_seeds(args.seeds)
    if not os.environ.get("CTRAFFIC_SHARED"):
        print("CTRAFFIC_SHARED is not set: RESCO scenarios only if ../shared exists")
    started = time.perf_counter()
    rows, lines, details, notes, problems = [], [], [], [], []
    for spec in scenario_specs(args.scenarios.split(",") if args.scenarios else None):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="optimize-check-") as tmp:
            outcome = _optimize(spec, Path(tmp) / "plans")
            t_opt = time.perf_counter() - t0
            summary = simulate_spec(spec, ["fixed", "optimized"], seeds, jobs=args.jobs)
            name = summary["scenario"].iloc[0]
            if outcome["returncode"] == 0:
                summary = pd.concat(
                    [summary, _run_plans(spec, Path(tmp) / "plans", seeds, jobs=args.jobs)],
                    ignore_index=True,
                )
                kept = outcome["kept"]
            elif outcome["refused"]:
                # Nothing written: the signals keep their program, which is what `fixed` runs.
                fixed = summary[summary["controller"] == "fixed"]
                summary = pd.concat([summary, fixed.assign(controller=PLANS)], ignore_index=True)
                kept = "nothing written (own program kept)"
            else:
                problems.append(f"{name}: optimize failed: {outcome['error']}")
                print(f"{name:<12} optimize failed: {outcome['error']}", flush=True)
                continue
            check = outcome["check"]
        rows.append(summary)
        notes.append(f"- {name}: {outcome['note']}")
        means = summary.groupby("controller", sort=False)["mean_delay_s"].mean()
        ok = means[PLANS] <= means["fixed"] and means[PLANS] <= means["optimized"]
        if not ok:
            problems.append(
                f"{name}: plans {means[PLANS]:.1f} s/veh, fixed {means['fixed']:.1f}, "
                f"optimized {means['optimized']:.1f}"
            )
        lines.append(
            f"| {name} | {means['fixed']:.1f} | {means[PLANS]:.1f} | {means['optimized']:.1f} | "
            f"{means[PLANS] / means['fixed']:.3f} | {means[PLANS] / means['optimized']:.3f} | "
            f"{kept} | {_model_vs_sumo(check)} | {t_opt:.0f} | {'yes' if ok else 'NO'} |"
        )
        details += _approach_lines(name, check)
        print(
            f"{name:<12} {time.perf_counter() - t0:6.0f} s (optimize {t_opt:.0f} s)  mean delay: "
            + ", ".join(f"{c} {d:.1f}" for c, d in means.items())
            + f"; kept {kept}",
            flush=True,
        )
    if not rows:
        return write_report(args.out, "optimize_check", [], problems, label="TARGET MISSED on")
    args.out.mkdir(parents=True, exist_ok=True)
    pd.concat(rows, ignore_index=True).to_csv(
        args.out / "optimize_check.csv", index=False, float_format="%.4f"
    )
    from importlib.metadata import version

    text = [
        "# Plans of `ctraffic optimize`, checked in SUMO, against fixed and optimized",
        "",
        f"Command: `python benchmarks/optimize_check.py --seeds {args.seeds} --jobs {args.jobs}` "
        f"(SUMO {version('eclipse-sumo')}, {len(seeds)} evaluation seeds, teleports disabled, "
        f"whole run {(time.perf_counter() - started) / 60:.0f} min on {os.cpu_count()} shared "
        "cores). `optimize` checks its candidates on 3 seeds of its own (982451653-5); the "
        "written plans then run on the evaluation seeds as `ctraffic adapter sumo --plans` runs "
        "them. Target: plans' mean delay <= `fixed`'s and <= `optimized`'s on every scenario.",
        "",
        "| scenario | fixed (s/veh) | optimize plans (s/veh) | optimized (s/veh) | plans/fixed "
        "| plans/optimized | kept by the check | model vs SUMO per approach (check seeds) "
        "| optimize (s) | target met |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *lines,
        "",
        "Model vs SUMO: flow-weighted mean delay over the approaches, modelled / simulated "
        "(s/veh), and the approach where they differ most.",
        "",
        "## What the check found",
        "",
        *notes,
        "",
        "## Modelled and simulated delay per approach (the check's `check.csv`)",
        "",
        *details,
    ]
    return write_report(args.out, "optimize_check", text, problems, label="TARGET MISSED on")


def _optimize(spec: str, out: Path) -> dict:
    """Run `ctraffic optimize` as a user would; what it wrote and what its check found."""
    proc = subprocess.run(
        [sys.executable, "-m", "citybrain_traffic.cli", "optimize", spec, "--out", str(out)],
        capture_output=True,
        text=True,
    )
    text = " ".join(proc.stdout.split())
    refused = proc.returncode == 1 and "no plan written" in text
    check = None
    if (out / "check.csv").is_file():
        check = pd.read_csv(out / "check.csv")
    kept = ""
    if proc.returncode == 0:
        from citybrain_traffic.plans import read_plans

        kept = read_plans(out / "plans.json")[0].provenance.get("check", {}).get("written", "")
    found = re.search(r"checked in SUMO \(.*?best plan: .*? the network's own program", text)
    error = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or [""])[-1]
    return {
        "returncode": proc.returncode,
        "refused": refused,
        "kept": kept,
        "check": check,
        "note": found.group(0) if found else "no check",
        "error": error,
    }


def _run_plans(spec: str, folder: Path, seeds: list[int], *, jobs: int) -> pd.DataFrame:
    """Run the written plans on ``seeds`` the way `ctraffic adapter sumo --plans` does."""
    from citybrain_traffic.harness.matrix import run_matrix
    from citybrain_traffic.harness.runner import RunSpec
    from citybrain_traffic.network import read_network
    from citybrain_traffic.plans import read_plans, validate_all
    from citybrain_traffic.scenario import load_scenario
    from citybrain_traffic.service.adapter import DirectPlans, schedule_from

    sc = load_scenario(spec)
    network = read_network(sc.net_file)
    plans = validate_all(read_plans(folder / "plans.json"), network)
    schedule = schedule_from(plans, begin=sc.begin, end=sc.end)
    with tempfile.TemporaryDirectory(prefix="plans-") as tmp:
        controller = DirectPlans(schedule=tuple(schedule)).fit(
            sc, network, Path(tmp), demand_scale=1.0
        )
        specs = [
            RunSpec(sc, network, controller, seed, Path(tmp) / f"seed-{seed}") for seed in seeds
        ]
        results = run_matrix(specs, jobs=jobs)
    return pd.DataFrame([r.summary_row() | {"controller": PLANS} for r in results])


def _model_vs_sumo(check: pd.DataFrame | None) -> str:
    if check is None or check.empty:
        return "no check"
    served = check.dropna(subset=["modeled_delay_s_veh", "simulated_delay_s_veh"])
    weights = served["modeled_flow_veh_h"]
    model = (served["modeled_delay_s_veh"] * weights).sum() / weights.sum()
    sumo = (served["simulated_delay_s_veh"] * weights).sum() / weights.sum()
    gap = (served["simulated_delay_s_veh"] - served["modeled_delay_s_veh"]).abs()
    worst = served.loc[gap.idxmax()]
    return (
        f"{model:.1f} / {sumo:.1f}; worst {worst['intersection']} {worst['approach']} "
        f"{worst['modeled_delay_s_veh']:.1f} / {worst['simulated_delay_s_veh']:.1f}"
    )


def _approach_lines(name: str, check: pd.DataFrame | None) -> list[str]:
    if check is None or check.empty:
        return [f"### {name}", "", "No `check.csv`: nothing written (see the check above).", ""]
    out = [
        f"### {name}",
        "",
        "| signal | approach | flow model (veh/h) | flow SUMO (veh/h) | delay model (s/veh) "
        "| delay SUMO (s/veh) | LOS model | LOS SUMO | delay existing (s/veh) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in check.itertuples(index=False):
        out.append(
            f"| {r.intersection} | {r.approach} | {r.modeled_flow_veh_h:.0f} | "
            f"{r.simulated_flow_veh_h:.0f} | {r.modeled_delay_s_veh:.1f} | "
            f"{r.simulated_delay_s_veh:.1f} | {_text(r.modeled_los)} | {_text(r.simulated_los)} "
            f"| {r.existing_delay_s_veh:.1f} |"
        )
    return [*out, ""]


def _text(value: object) -> str:
    return "" if pd.isna(value) else str(value)


if __name__ == "__main__":
    sys.exit(main())
