"""The adaptive controller's closed loop on a small real scenario: counts -> forecast -> plans."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from citybrain_traffic.control.realtime import MAX_GREEN_FACTOR, MIN_GREEN_SHARE
from citybrain_traffic.network import read_network
from citybrain_traffic.plans import plan_from_dict, validate_all
from citybrain_traffic.scenario import load_scenario

from conftest import run_cli


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A LightGBM forecaster trained on three simulated days of `single` (counts from `collect`)."""
    folder = tmp_path_factory.mktemp("adaptive-model")
    counts = folder / "history.csv"
    done = run_cli("collect", "single", "--days", "3", "--out", str(counts), "--seed", "5")
    assert done.returncode == 0, done.stderr
    done = run_cli(
        "forecast", "train", str(counts), "--out", str(folder / "model"), "--horizons", "15"
    )
    assert done.returncode == 0, done.stderr
    return folder / "model"


@pytest.mark.parametrize("sequence", ["free", "plan"])
def test_adaptive_replans_every_interval_with_safe_logged_plans(model_dir, tmp_path, sequence):
    out = tmp_path / "run"
    done = run_cli(
        "simulate",
        "single",
        "--controller",
        "fixed,adaptive",
        "--seed",
        "1",
        "--model",
        str(model_dir),
        "--sequence",
        sequence,
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    scenario = load_scenario("single")
    network = read_network(scenario.net_file)
    lines = (out / "adaptive" / "seed-1" / "plans.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    # One plan per signal after every 15-min interval that has ended before the window does.
    intervals = int((scenario.end - scenario.begin) // 900) - 1
    assert len(records) == intervals * len(network.intersections)
    assert {r["forecast"] for r in records} == {"lightgbm"}
    for record in records:
        start, end = record["for_interval_s"]
        assert end - start == 900 and record["decided_s"] == pytest.approx(start + 1.0)
        plan = validate_all([plan_from_dict(record)], network)[0]  # raises on any unsafe plan
        if sequence == "free":
            # The sequencer takes the plan's greens as maxima (x1.5) and its cycle for the
            # maximum red; the plan itself stays a fixed-time plan in the program's order.
            assert plan.kind == "static" and record["offsets"] == "free sequence"
            continue
        # The real-time layer's range: from half the planned green (at least the signal's minimum)
        # to 1.5x it (at least the signal's own green).
        assert plan.kind == "actuated"
        reference = network.intersections[plan.tls_id].phases
        for phase, ref in zip(plan.phases, reference):
            if phase.is_green:
                assert phase.min_dur == pytest.approx(
                    max(MIN_GREEN_SHARE * phase.duration, ref.min_green)
                )
                assert phase.max_dur == pytest.approx(
                    max(MAX_GREEN_FACTOR * phase.duration, ref.duration)
                )
    # The plans follow the counts: the forecast flow changes from interval to interval.
    assert len({r["forecast_veh_h"] for r in records}) > 1
    summary = pd.read_csv(out / "summary.csv").set_index("controller")
    assert summary.loc["adaptive", "control_time_s"] > 0
    # Same demand: every vehicle of the window is loaded in both runs.
    assert summary.loc["adaptive", "vehicles_loaded"] == summary.loc["fixed", "vehicles_loaded"]


def test_adaptive_same_seed_same_numbers(model_dir, tmp_path):
    rows = []
    for name in ("a", "b"):
        done = run_cli(
            "simulate",
            "single",
            "--controller",
            "adaptive",
            "--seed",
            "3",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / name),
        )
        assert done.returncode == 0, done.stderr
        rows.append(
            pd.read_csv(tmp_path / name / "summary.csv").drop(
                columns=["wall_time_s", "control_time_s"]
            )
        )
    pd.testing.assert_frame_equal(rows[0], rows[1])


def test_fixed_plans_and_no_history_modes(tmp_path):
    """`--fixed-plans` runs static, coordinated plans; `--history-days 0` forecasts from the
    run's own counts."""
    out = tmp_path / "run"
    done = run_cli(
        "simulate",
        "single",
        "--controller",
        "adaptive",
        "--seed",
        "2",
        "--history-days",
        "0",
        "--fixed-plans",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    fitted = json.loads((out / "prepared" / "adaptive" / "adaptive.json").read_text())
    assert fitted["params"]["model"] is None and fitted["params"]["realtime"] == "False"
    records = [
        json.loads(line)
        for line in (out / "adaptive" / "seed-2" / "plans.jsonl").read_text().splitlines()
    ]
    assert records and {r["forecast"] for r in records} == {"recent mean"}
    assert {r["kind"] for r in records} == {"static"}


def test_held_offsets_run_coordinated_actuated_plans(tmp_path):
    """`--offsets held`: actuated plans with CP-SAT offsets, each held by its longest green."""
    out = tmp_path / "run"
    done = run_cli(
        "simulate",
        "corridor",
        "--controller",
        "adaptive",
        "--seed",
        "1",
        "--end",
        "2700",
        "--history-days",
        "0",
        "--offsets",
        "held",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    fitted = json.loads((out / "prepared" / "adaptive" / "adaptive.json").read_text())
    assert fitted["hold_offsets"] is True
    records = [
        json.loads(line)
        for line in (out / "adaptive" / "seed-1" / "plans.jsonl").read_text().splitlines()
    ]
    assert (
        records
        and {r["offsets"] for r in records} == {"held"}
        and {r["kind"] for r in records} == {"actuated"}
    )
    assert any(r["offset_s"] > 0 for r in records)
    for record in records:  # the other greens are forced off at their planned length
        greens = [p for p in record["phases"] if p["kind"] == "green"]
        longest = max(greens, key=lambda p: p["duration_s"])
        assert all(p["max_s"] == p["duration_s"] for p in greens if p is not longest)
        assert longest["max_s"] >= longest["duration_s"]


def test_adaptive_options_are_checked(tmp_path):
    done = run_cli("simulate", "single", "--controller", "fixed", "--model", str(tmp_path))
    assert done.returncode == 2 and "options of the adaptive controller" in done.stderr
    done = run_cli("simulate", "single", "--controller", "fixed", "--fixed-plans")
    assert done.returncode == 2 and "options of the adaptive controller" in done.stderr
    done = run_cli("simulate", "single", "--controller", "fixed", "--offsets", "held")
    assert done.returncode == 2 and "options of the adaptive controller" in done.stderr
    done = run_cli(
        "simulate", "single", "--controller", "adaptive", "--offsets", "held", "--fixed-plans"
    )
    assert done.returncode == 2 and "--fixed-plans turns off" in done.stderr
    done = run_cli("simulate", "single", "--controller", "adaptive", "--model", str(tmp_path))
    assert done.returncode == 2 and "not a forecast model folder" in done.stderr
    done = run_cli("simulate", "single", "--controller", "adaptive", "--interval", "0")
    assert done.returncode == 2 and "--interval" in done.stderr
    assert "Traceback" not in done.stderr
    # An interval the forecaster cannot be trained for fails before any history is collected.
    done = run_cli(
        "simulate",
        "single",
        "--controller",
        "adaptive",
        "--interval",
        "7",
        "--out",
        tmp_path / "seven",
    )
    assert done.returncode == 2 and "divide a day" in done.stderr
    assert not (tmp_path / "seven" / "prepared").exists()
    # Without a history any interval is fine for the check.
    from citybrain_traffic.experiments.preparation import AdaptivePreparation

    AdaptivePreparation(interval_min=7, history_days=0)


def test_a_model_must_forecast_one_interval_ahead(model_dir):
    done = run_cli(
        "simulate", "single", "--controller", "adaptive", "--model", model_dir, "--interval", "30"
    )
    assert (
        done.returncode == 2
        and "trained on 15-min counts" in done.stderr
        and "--interval 15" in done.stderr
    )
    half_hour = model_dir.parent / "model-30"
    done = run_cli(
        "forecast",
        "train",
        model_dir.parent / "history.csv",
        "--out",
        half_hour,
        "--horizons",
        "30",
    )
    assert done.returncode == 0, done.stderr
    done = run_cli("simulate", "single", "--controller", "adaptive", "--model", half_hour)
    assert (
        done.returncode == 2
        and "forecasts 30 min ahead" in done.stderr
        and "--horizons 15" in done.stderr
    )


def test_opening_counts_average_the_first_interval_of_days_like_the_run(tmp_path):
    """The first plans come from the history's mean count of the first interval on days of the
    run's type."""
    from citybrain_traffic.clock import SIM_DAY_ZERO
    from citybrain_traffic.control.adaptive import opening_counts

    assert SIM_DAY_ZERO.day_of_week < 5  # the run is simulated on a weekday
    rows = []
    # Monday, Tuesday and Saturday, each from 06:00 (the scenario's begin) in 15-min bins.
    for day, first, later in (
        ("2026-01-05", 10, 99),
        ("2026-01-06", 20, 99),
        ("2026-01-10", 500, 99),
    ):
        for minutes, count in ((0, first), (15, later)):
            stamp = pd.Timestamp(day) + pd.Timedelta(hours=6, minutes=minutes)
            rows += [(stamp, "C", "a>b", count), (stamp, "C", "c>d", 2 * count)]
    history = tmp_path / "history.csv.gz"
    pd.DataFrame(rows, columns=["timestamp", "intersection", "movement", "count"]).to_csv(
        history, index=False
    )

    opening = sorted(opening_counts(history, begin_s=6 * 3600.0))
    assert opening == [["C", "a>b", 15.0], ["C", "c>d", 30.0]]
    assert (
        opening_counts(history, begin_s=7 * 3600.0) == []
    )  # no bin starts at the begin: no opening plan


def test_a_broken_model_folder_is_a_clear_error(tmp_path):
    (tmp_path / "model.json").write_text("{not json")
    done = run_cli("simulate", "single", "--controller", "adaptive", "--model", tmp_path)
    assert done.returncode == 2 and "cannot read" in done.stderr and "Traceback" not in done.stderr


def test_adaptive_runs_the_networks_own_program_when_the_check_found_nothing_better(tmp_path):
    """The check in SUMO may find the network's own program better than every plan tried: then
    adaptive leaves the signals to it, and the run is the fixed-time run to the number."""
    from citybrain_traffic.control.adaptive import AdaptiveController
    from citybrain_traffic.control.fixed import FixedController
    from citybrain_traffic.harness.matrix import run_matrix
    from citybrain_traffic.harness.runner import RunSpec

    sc = load_scenario("single", end=900)
    network = read_network(sc.net_file)
    own = AdaptiveController(own_program=True).fit(sc, network, tmp_path, demand_scale=1.0)
    assert own.setup.additional_files  # its counting loops are loaded all the same
    adaptive, fixed = run_matrix(
        [
            RunSpec(
                scenario=sc,
                network=network,
                controller=controller,
                seed=4,
                workdir=tmp_path / controller.name,
            )
            for controller in (own, FixedController().fit(sc, network, tmp_path, demand_scale=1.0))
        ]
    )
    assert adaptive.controller_report == {"plans": [], "switches": []}
    timing = ("controller", "wall_time_s", "control_time_s")
    # As Series: the modes single lacks have NaN figures, and NaN != NaN in a dict comparison.
    assert pd.Series({k: v for k, v in adaptive.kpis.items() if k not in timing}).equals(
        pd.Series({k: v for k, v in fixed.kpis.items() if k not in timing})
    )
