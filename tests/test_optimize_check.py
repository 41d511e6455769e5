"""``ctraffic optimize`` checks its plans in SUMO, keeps the best, and never hands over a plan
worse than the network's own program without saying so; ``optimized`` chooses the same way."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from citybrain_traffic.cli._optimize_check import worse_approaches
from citybrain_traffic.cli._optimize_schedule import SCHEDULE_DESIGN, schedule_label
from citybrain_traffic.cli.optimize import MEAN_DESIGN
from citybrain_traffic.control.optimized import cycle_floors
from citybrain_traffic.experiments.plan_check import CHECK_COLUMNS
from citybrain_traffic.experiments.selection import CHECK_SEEDS, OWN_PROGRAM, check_seeds
from citybrain_traffic.network import read_network
from citybrain_traffic.plans import read_plans
from citybrain_traffic.scenario import load_scenario

from conftest import route_counts, run_cli

DAY = pd.Timestamp("2026-01-05")


def test_check_keeps_the_best_and_records_it(tmp_path):
    out = tmp_path / "plans"
    proc = run_cli("optimize", "single", "--end", "3600", "--check-seeds", "2", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "checked in SUMO (2 seeds of their own, window 0-3600 s" in text
    plans = read_plans(out / "plans.json")
    plan = plans[0]
    check = plan.provenance["check"]
    assert check["seeds"] == list(check_seeds(2)) == [CHECK_SEEDS[0], CHECK_SEEDS[0] + 1]
    delays = check["candidates"]
    assert OWN_PROGRAM in delays and "the model's cycle" in delays
    # Every floor's schedule (the `optimized` controller's) is simulated or named as the twin
    # of one that was.
    assert set(delays) | set(check["same_as"]) == {
        "the model's cycle",
        *(schedule_label(floor) for floor in cycle_floors()),
        MEAN_DESIGN,  # the default design is peak15: the mean flows' plan is a candidate too
        OWN_PROGRAM,
    }
    assert check["written"] == check["kept"] == min(delays, key=delays.get)
    schedule = check["kept"] in {schedule_label(floor) for floor in cycle_floors()}
    # A schedule is written as its four 15-minute plans; a single plan alone.
    assert len(plans) == (4 if schedule else 1)
    design = plan.provenance["demand"]["design"]
    mean = check["kept"] == MEAN_DESIGN
    assert design == (SCHEDULE_DESIGN if schedule else "mean" if mean else "peak15")
    assert f"design flows {design}" in text
    assert check["gain_s"] == pytest.approx(delays[OWN_PROGRAM] - delays[check["kept"]])
    assert check["gain_s"] >= 0
    assert f"best plan: {check['kept']}" in text
    summary = pd.read_csv(out / "timing_summary.csv")
    assert "checked in SUMO" in summary["notes"].iloc[0]

    table = pd.read_csv(out / "check.csv")
    assert list(table.columns) == CHECK_COLUMNS
    network = read_network(load_scenario("single").net_file)
    approaches = {a.edge for a in network.intersections["C"].approaches}
    assert set(table["approach"]) == approaches and len(table) == len(approaches)
    # The model's flows are the routed demand (its mean, or its peak 15 minutes, 1.2-1.6x it);
    # SUMO serves it (no approach over capacity here).
    ratio = table["modeled_flow_veh_h"] / table["simulated_flow_veh_h"]
    low, high = (1.1, 1.7) if design == "peak15" else (0.9, 1.1)
    assert ratio.between(low, high).all(), ratio
    assert (table["modeled_delay_s_veh"] > 0).all() and (table["simulated_delay_s_veh"] > 0).all()
    assert set(table["simulated_los"]) <= set("ABCDEF")
    assert "modelled and simulated delay" in proc.stdout


def test_no_check_writes_the_model_plan_unchecked(tmp_path):
    out = tmp_path / "plans"
    proc = run_cli("optimize", "single", "--end", "1800", "--no-check", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "plans not checked in SUMO: --no-check" in proc.stdout
    assert "checking" not in proc.stdout
    assert not (out / "check.csv").exists()
    (plan,) = read_plans(out / "plans.json")
    assert plan.provenance["check"] == {"skipped": "--no-check"}


def test_check_options_are_refused_when_they_cannot_apply(tmp_path):
    out = tmp_path / "o"
    for args, fragment in (
        (("--no-check", "--allow-worse"), "--allow-worse is an option of the check"),
        (("--no-check", "--check-seeds", "2"), "--check-seeds is an option of the check"),
        (("--check-seeds", "0"), "a single number is how many seeds"),
        (("--check-seeds", "5-3"), "invalid seed range"),
    ):
        proc = run_cli("optimize", "single", *args, "--out", out)
        assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.fixture(scope="module")
def stale_counts(tmp_path_factory):
    """Counts of `single` without its major road: a plan from them starves north and south."""
    folder = tmp_path_factory.mktemp("counts")
    sc = load_scenario("single")
    counts, _ = route_counts(sc, read_network(sc.net_file), folder, day=DAY)
    minor = counts[~counts["movement"].str.startswith(("N_C", "S_C"))]
    assert 0 < len(minor) < len(counts)
    path = folder / "counts.csv"
    minor.to_csv(path, index=False)
    return path


def test_a_plan_worse_than_the_own_program_is_not_written(tmp_path, stale_counts):
    out = tmp_path / "plans"
    out.mkdir()  # the user's empty folder stays as it is
    args = ("optimize", "single", "--counts", stale_counts, "--at", "00:00", "--window", "60")
    args += ("--check-seeds", "1")  # starving the major road shows on any seed
    proc = run_cli(*args, "--out", out)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "warning: the network's own program did better in SUMO" in text
    assert "no plan written" in text and "--allow-worse" in text
    assert list(out.iterdir()) == []
    assert not list(tmp_path.glob(".plans.partial-*"))

    proc = run_cli(*args, "--allow-worse", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "written anyway (--allow-worse)" in " ".join(proc.stdout.split())
    (plan,) = read_plans(out / "plans.json")
    check = plan.provenance["check"]
    delays = check["candidates"]
    assert check["kept"] == OWN_PROGRAM and check["gain_s"] < 0 and "warning" in check
    model = {k: v for k, v in delays.items() if k != OWN_PROGRAM}
    assert check["written"] == min(model, key=model.get)
    assert "WARNING" in pd.read_csv(out / "timing_summary.csv")["notes"].iloc[0]
    assert (out / "check.csv").is_file()


#: ``ctraffic simulate single -c optimized --seeds 1`` before the selection was shared with
#: ``optimize`` (commit 674694a): its delay and the check's figures (s/veh).
OPTIMIZED_SINGLE_SEED_1_DELAY_S = 29.5689
OPTIMIZED_SINGLE_CHECK = {
    "the model's cycle": 37.41632259176288,
    "cycle >=60 s": 35.660695042793954,
    "cycle >=90 s": 37.47181917399046,
    "cycle >=120 s": 51.79554770520995,
    OWN_PROGRAM: 54.66553047274399,
}


def test_optimized_chooses_as_before(tmp_path):
    proc = run_cli("simulate", "single", "-c", "optimized", "--seeds", "1", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert summary["mean_delay_s"].iloc[0] == pytest.approx(
        OPTIMIZED_SINGLE_SEED_1_DELAY_S, abs=1e-4
    )
    check = json.loads((tmp_path / "o" / "prepared" / "optimized" / "check.json").read_text())
    assert check["seeds"] == list(CHECK_SEEDS)
    assert check["mean_delay_s"] == pytest.approx(OPTIMIZED_SINGLE_CHECK, rel=1e-9)
    assert check["chosen"] == "cycle >=60 s"


def test_an_approach_served_far_worse_than_before_is_named():
    table = pd.DataFrame(
        {
            "intersection": ["J1", "J1", "J2"],
            "approach": ["N1_J1", "W_J1", "S_J2"],
            "modeled_delay_s_veh": [30.1, 11.8, 20.0],
            "simulated_delay_s_veh": [234.5, 12.9, 70.0],
            "simulated_los": ["F", "B", "E"],
            "existing_delay_s_veh": [27.7, 69.2, 60.0],
        }
    )
    (line,) = worse_approaches(table)  # S_J2 is LOS E but hardly worse than before
    assert line.startswith("J1 N1_J1: 234.5 s/veh in SUMO (LOS F) against 27.7")
