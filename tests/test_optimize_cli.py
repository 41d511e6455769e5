"""``ctraffic optimize``: plans from routes or counts, the timing sheet, exports SUMO runs, clear
errors."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from citybrain_traffic.flows import flows_from_routes
from citybrain_traffic.network import read_network
from citybrain_traffic.optimize import optimize_network
from citybrain_traffic.optimize.saturation import saturation_model
from citybrain_traffic.plans import read_plans, validate_all
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.sim.session import sumo_binary

from conftest import route_counts, run_cli

FILES = (
    "plans.add.xml",
    "plans.json",
    "plans_utdf.csv",
    "timing_sheet.csv",
    "timing_summary.csv",
    "timing_movements.csv",
)
DAY = pd.Timestamp("2026-01-05")


@pytest.fixture(scope="module")
def corridor_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("corridor") / "plans"
    # Unchecked: the check (test_optimize_check) keeps corridor's own program, writing nothing.
    proc = run_cli("optimize", "corridor", "--no-check", "--out", out)
    assert proc.returncode == 0, proc.stderr
    sc = load_scenario("corridor")
    return proc, out, sc, read_network(sc.net_file)


@pytest.fixture(scope="module")
def single_counts(tmp_path_factory):
    """Counts of `single` in 15-minute bins over its first hour, counted from its routed demand."""
    folder = tmp_path_factory.mktemp("counts")
    sc = load_scenario("single")
    network = read_network(sc.net_file)
    counts, routed = route_counts(sc, network, folder, day=DAY)
    path = folder / "counts.csv"
    counts.to_csv(path, index=False)
    return path, counts, routed, network


def test_from_routes_by_default_writes_every_file(corridor_run):
    proc, out, _, network = corridor_run
    assert "the default without --counts" in proc.stdout
    assert "timing sheet" in proc.stdout and "LOS" in proc.stdout
    for name in FILES:
        assert (out / name).is_file() and str(out / name) in proc.stdout
    plans = read_plans(out / "plans.json")
    assert sorted(p.tls_id for p in plans) == sorted(network.intersections)
    assert validate_all(plans, network) == plans
    assert plans[0].provenance["demand"]["saturation_veh_h_lane"] == 1800
    assert read_plans(out / "plans.add.xml") == plans  # provenance is not compared
    assert "[Timeplans]" in (out / "plans_utdf.csv").read_text()


def test_sheet_has_one_cycle_per_signal_and_splits_fill_it(corridor_run):
    _, out, _, network = corridor_run
    sheet = pd.read_csv(out / "timing_sheet.csv", keep_default_na=False, na_values=[""])
    summary = pd.read_csv(out / "timing_summary.csv")
    assert set(sheet["intersection"]) == set(network.intersections) == set(summary["intersection"])
    per_signal = sheet.groupby("intersection")
    assert (per_signal["cycle_s"].nunique() == 1).all()
    # Coordinated by default: one common cycle, offsets within it.
    assert sheet["cycle_s"].nunique() == 1
    assert ((sheet["offset_s"] >= 0) & (sheet["offset_s"] < sheet["cycle_s"])).all()
    cycles = per_signal["cycle_s"].first()
    assert per_signal["duration_s"].sum().sub(cycles).abs().max() < 1e-6
    assert per_signal["split_s"].sum().sub(cycles).abs().max() < 1e-6
    greens = sheet[sheet["kind"] == "green"]
    assert (greens["duration_s"] >= greens["min_s"]).all()
    assert greens["v_c"].between(0, 1).all()
    # A green without flow (a protected left whose turns the model sends in the permitted
    # green) has no delay and no LOS; every other green has both.
    served, idle = greens[greens["flow_veh_h"] > 0], greens[greens["flow_veh_h"] == 0]
    assert (served["delay_s_veh"] > 0).all() and set(served["los"]) <= set("ABCDEF")
    assert idle["delay_s_veh"].isna().all() and idle["los"].isna().all()
    assert greens["nema"].notna().all() and greens["movements"].notna().all()
    assert len(greens) == sum(
        len([p for p in i.phases if p.is_green]) for i in network.intersections.values()
    )
    assert set(summary["los"]) <= set("ABCDEF")


def test_sumo_loads_and_runs_the_export(corridor_run):
    _, out, sc, _ = corridor_run
    proc = subprocess.run(
        [
            sumo_binary("sumo"),
            "-n",
            str(sc.net_file),
            "-a",
            str(out / "plans.add.xml"),
            "--end",
            "30",
            "--no-step-log",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "Error" not in proc.stderr, proc.stderr


def test_isolated_window_and_saturation_flow(tmp_path):
    base = run_cli(
        "optimize",
        "single",
        "--from-routes",
        "--begin",
        "0",
        "--end",
        "1800",
        "--isolated",
        "--no-check",
        "--out",
        tmp_path / "a",
    )
    low = run_cli(
        "optimize",
        "single",
        "--begin",
        "0",
        "--end",
        "1800",
        "--saturation-flow",
        "1000",
        "--no-check",
        "--out",
        tmp_path / "b",
    )
    assert base.returncode == 0 and low.returncode == 0, base.stderr + low.stderr
    assert "routes departing 0-1800 s" in base.stdout and "isolated" in base.stdout
    demand = read_plans(tmp_path / "b" / "plans.json")[0].provenance["demand"]
    assert demand["saturation_veh_h_lane"] == 1000 and demand["demand_scale"] == 1
    a = pd.read_csv(tmp_path / "a" / "timing_summary.csv").iloc[0]
    b = pd.read_csv(tmp_path / "b" / "timing_summary.csv").iloc[0]
    assert a["offset_s"] == 0
    # Less capacity per lane: longer cycle, more of it saturated, more delay.
    assert (
        b["cycle_s"] > a["cycle_s"]
        and b["max_v_c"] > a["max_v_c"]
        and b["delay_s_veh"] > a["delay_s_veh"]
    )


def test_counts_give_the_plan_of_the_same_flows(tmp_path, single_counts):
    path, _, routed, network = single_counts
    proc = run_cli(
        "optimize",
        "single",
        "--counts",
        path,
        "--at",
        "00:15",
        "--window",
        "30",
        "--design",
        "mean",
        "--no-check",
        "--out",
        tmp_path / "o",
    )
    assert proc.returncode == 0, proc.stderr
    assert "30 min from 2026-01-05 00:15:00" in proc.stdout
    plan = read_plans(tmp_path / "o" / "plans.json")[0]
    assert plan.valid_from == "2026-01-05T00:15:00" and plan.valid_until == "2026-01-05T00:45:00"
    assert plan.provenance["demand"]["design"] == "mean"
    # Counts carry no vehicle types: the saturation model has no heavy vehicles.
    model = saturation_model(network.path, base_veh_h_lane=1800)
    expected = optimize_network(
        network,
        flows_from_routes(routed, network, begin=900, end=2700),
        tls_ids=["C"],
        saturation_veh_h_lane=model,
    )["C"]
    assert plan.cycle_s == expected.cycle_s
    assert [plan.phases[i].duration for i in expected.greens_s] == list(expected.greens_s.values())


def test_counts_with_demand_scale_and_net_only(tmp_path, single_counts):
    path, counts, _, network = single_counts
    proc = run_cli(
        "optimize",
        "--net",
        network.path,
        "--counts",
        path,
        "--at",
        "2026-01-05 00:00",
        "--demand-scale",
        "1.5",
        "--out",
        tmp_path / "o",
    )
    assert proc.returncode == 0, proc.stderr
    # Counts with --net alone: no demand to simulate, so no check, and the terminal says so.
    assert "plans not checked in SUMO: no demand to run" in " ".join(proc.stdout.split())
    summary = pd.read_csv(tmp_path / "o" / "timing_summary.csv").iloc[0]
    first_bin = counts[counts["timestamp"] == DAY]["count"].sum() * 4
    # Every counted vehicle is served by some green (no unserved movement at `single`).
    assert summary["flow_veh_h"] == pytest.approx(1.5 * first_bin, rel=1e-3)


def _clean_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


def test_bad_inputs_are_one_line_errors(tmp_path, single_counts):
    path, counts, _, _ = single_counts
    out = str(tmp_path / "out")
    _clean_error(
        run_cli(
            "optimize", "single", "--counts", path, "--at", "00:00", "--from-routes", "--out", out
        ),
        "--counts",
        "--from-routes",
    )
    _clean_error(run_cli("optimize", "single", "--counts", path, "--out", out), "--at")
    _clean_error(
        run_cli("optimize", "single", "--counts", path, "--at", "00:05", "--out", out),
        "no count bin starts at 2026-01-05 00:05",
    )
    _clean_error(
        run_cli(
            "optimize", "single", "--counts", path, "--at", "00:00", "--begin", "0", "--out", out
        ),
        "--begin/--end",
    )
    foreign = tmp_path / "foreign.csv"
    counts.assign(intersection=counts["intersection"].where(counts.index % 2 == 0, "X9")).to_csv(
        foreign, index=False
    )
    _clean_error(
        run_cli("optimize", "single", "--counts", foreign, "--at", "00:00", "--out", out),
        "['X9']",
        "not signals of single.net.xml",
        "'C'",
    )
    for value in ("0", "-1800"):
        _clean_error(
            run_cli("optimize", "single", "--saturation-flow", value, "--out", out),
            "--saturation-flow",
            f"got {value}",
        )
    assert not (tmp_path / "out").exists()


def test_occupied_out_folder_is_left_alone(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("keep me")
    _clean_error(run_cli("optimize", "single", "--out", tmp_path), str(tmp_path), "--out")
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"] and mine.read_text() == "keep me"
