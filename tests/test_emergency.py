"""Emergency vehicles: drawn from the seed, run in SUMO, measured apart from everyone else.

Real SUMO runs of the bundled scenarios over short windows; bad input is one line and exit 2.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from citybrain_traffic.network import read_network
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.sim import metrics
from citybrain_traffic.sim.emergency import (
    END_RESERVE_S,
    ID_PREFIX,
    draw_emergency,
    emergency_routes_xml,
    plan_emergency,
)
from citybrain_traffic.sim.emergency_routes import RoadGraph

from conftest import run_cli
from test_cli_errors import assert_clean_error

END = 900.0
#: Columns that differ between two runs of the same seed: the computer's time, not the model's.
CLOCK = ["wall_time_s", "control_time_s"]


def simulate(tmp: Path, name: str, *args: str) -> Path:
    out = tmp / name
    proc = run_cli("simulate", *args, "--end", f"{END:g}", "-c", "fixed", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Corridor seeds 1-2 with 3 emergency vehicles, twice; seed 1 without them."""
    tmp = tmp_path_factory.mktemp("emergency")
    with_ev = ("corridor", "--seeds", "1-2", "--emergency", "3")
    return (
        simulate(tmp, "a", *with_ev),
        simulate(tmp, "b", *with_ev),
        simulate(tmp, "none", "corridor", "--seeds", "1"),
    )


@pytest.fixture(scope="module")
def corridor():
    sc = load_scenario("corridor", end=END)
    network = read_network(sc.net_file)
    return sc, network, RoadGraph(network)


# --- drawing -----------------------------------------------------------------------------------


def test_draw_follows_the_seed(corridor):
    """The same seed draws the same vehicles; another seed others, all in the interior."""
    sc, network, graph = corridor
    first = draw_emergency(graph, 6, seed=1, begin=sc.begin, end=sc.end)
    assert first == draw_emergency(graph, 6, seed=1, begin=sc.begin, end=sc.end)
    assert first != draw_emergency(graph, 6, seed=2, begin=sc.begin, end=sc.end)
    signal_turns = {
        (k.in_edge, k.out_edge) for i in network.intersections.values() for k in i.links
    }
    departs = [v.depart for v in first]
    assert departs == sorted(departs)
    assert [v.id for v in first] == [f"{ID_PREFIX}{k}" for k in range(6)]
    for vehicle in first:
        assert vehicle.from_edge in graph.interior and vehicle.to_edge in graph.interior
        assert sc.begin <= vehicle.depart <= sc.end - END_RESERVE_S
        assert any(turn in signal_turns for turn in zip(vehicle.route, vehicle.route[1:]))
        assert graph.route(vehicle.from_edge, vehicle.to_edge) == vehicle.route


def test_single_intersection_uses_the_wider_set():
    """A single intersection has no interior pair: approaches to exits, across the signal."""
    sc = load_scenario("single", end=END)
    graph = RoadGraph(read_network(sc.net_file))
    drawn = draw_emergency(graph, 4, seed=3, begin=sc.begin, end=sc.end)
    assert len(drawn) == 4
    for vehicle in drawn:
        assert vehicle.from_edge in graph.with_exit and vehicle.to_edge in graph.with_entry


def test_lanes_decide_a_turn(resco):
    """Right onto a 9 m edge and left at its end across a lane is no route (edge-level routers
    take it, and a vehicle on it waits at the end of its lane); from that edge it is one."""
    network = read_network(load_scenario(str(resco("ingolstadt1"))).net_file)
    graph = RoadGraph(network)
    assert graph.route("391891458#0", "104010475#0") is None
    assert graph.route("164051413", "104010475#0") == ("164051413", "104010475#0")


def test_routes_file_obeys_or_crosses(corridor):
    sc, _, graph = corridor
    fleet = draw_emergency(graph, 2, seed=1, begin=sc.begin, end=sc.end)
    obey = emergency_routes_xml(fleet, red="obey")
    cross = emergency_routes_xml(fleet, red="cross")
    for text in (obey, cross):
        assert 'vClass="emergency"' in text and 'key="has.bluelight.device"' in text
        assert text.count("<vehicle ") == 2 and fleet[0].route[0] in text
    assert "jmDriveRedSpeed" in cross and "jmDriveRedSpeed" not in obey


# --- runs --------------------------------------------------------------------------------------


def test_emergency_csv_and_summary(runs):
    out = runs[0]
    table = pd.read_csv(out / "emergency.csv")
    assert list(table[["scenario", "controller"]].drop_duplicates().itertuples(index=False)) == [
        ("corridor", "fixed")
    ]
    assert sorted(table["seed"].unique()) == [1, 2]
    assert len(table) == 6
    per_run = pd.read_csv(out / "fixed" / "seed-1" / "emergency.csv")
    assert per_run["id"].tolist() == table[table["seed"] == 1]["id"].tolist()
    # every vehicle arrived, crossing at least one signal; times add up
    assert table["arrival_s"].notna().all()
    assert (table["signals_passed"] >= 1).all()
    assert (table["signals_passed_green"] <= table["signals_passed"]).all()
    travel = table["arrival_s"] - table["depart_s"]
    assert (travel - table["travel_time_s"]).abs().max() < 1e-6
    assert (table["time_stopped_s"] <= table["travel_time_s"]).all()
    summary = pd.read_csv(out / "summary.csv")
    seed1 = table[table["seed"] == 1]
    row = summary[summary["seed"] == 1].iloc[0]
    assert row["emergency_vehicles"] == 3
    assert row["mean_emergency_travel_time_s"] == pytest.approx(seed1["travel_time_s"].mean())
    assert row["emergency_signals_passed"] == seed1["signals_passed"].sum()
    assert "Emergency travel time" in (out / "comparison.md").read_text()


def test_everyone_else_counts_without_them(runs):
    """The emergency vehicles are not among the vehicles of the KPIs."""
    with_ev = pd.read_csv(runs[0] / "summary.csv")
    without = pd.read_csv(runs[2] / "summary.csv")
    assert with_ev.loc[0, "vehicles_loaded"] == without.loc[0, "vehicles_loaded"]
    assert "emergency_vehicles" not in without
    assert not (runs[2] / "emergency.csv").exists()
    trips = metrics.read_tripinfo(runs[0] / "fixed" / "seed-1" / "sumo" / "tripinfo.xml.gz")
    assert len(trips) == with_ev.loc[0, "vehicles_loaded"] + 3


def test_same_seed_same_numbers(runs):
    first, second = runs[0], runs[1]
    pd.testing.assert_frame_equal(
        pd.read_csv(first / "emergency.csv"), pd.read_csv(second / "emergency.csv")
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(first / "summary.csv").drop(columns=CLOCK),
        pd.read_csv(second / "summary.csv").drop(columns=CLOCK),
    )


def test_file_vehicles_obey_or_cross_red(tmp_path):
    """The file's vehicles leave when and where it says; crossing red, some enter on red."""
    rows = [
        (30, "N_C", "C_S"),
        (95, "E_C", "C_W"),
        (160, "S_C", "C_N"),
        (230, "W_C", "C_E"),
        (300, "N_C", "C_S"),
        (370, "E_C", "C_W"),
        (440, "S_C", "C_N"),
        (510, "W_C", "C_E"),
    ]
    file = tmp_path / "ev.csv"
    file.write_text("depart,from_edge,to_edge\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    common = ("single", "--seeds", "1", "--emergency-file", str(file))
    obey = pd.read_csv(simulate(tmp_path, "obey", *common) / "emergency.csv")
    cross = pd.read_csv(
        simulate(tmp_path, "cross", *common, "--emergency-red", "cross") / "emergency.csv"
    )
    assert obey["scheduled_depart_s"].tolist() == [float(r[0]) for r in rows]
    assert list(zip(obey["from_edge"], obey["to_edge"])) == [(r[1], r[2]) for r in rows]
    for table in (obey, cross):
        assert table["arrival_s"].notna().all()
        assert (table["signals_passed"] == 1).all()

    def not_green(table):
        return int((table["signals_passed"] - table["signals_passed_green"]).sum())

    assert not_green(cross) > not_green(obey)
    assert cross["time_stopped_s"].sum() < obey["time_stopped_s"].sum()


def test_collisions_of_emergency_vehicles_are_theirs(tmp_path):
    path = tmp_path / "collisions.xml"
    path.write_text(
        "<collisions>"
        '<collision time="1" collider="a" victim="ev"/>'
        '<collision time="2" collider="b" victim="c"/>'
        "</collisions>"
    )
    assert metrics.read_collisions(path) == 2
    assert metrics.read_collisions(path, exclude={"ev"}) == 1
    assert metrics.collisions_of(path, ["ev", "x"]) == {"ev": 1, "x": 0}


# --- bad input ---------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ev.csv"
    path.write_text(text)
    return path


BAD_FILES = [
    ("depart,from_edge\n10,J1_J2\n", "missing column(s) to_edge"),
    ("depart,from_edge,to_edge,colour\n10,J1_J2,J2_J3,red\n", "unexpected column(s) colour"),
    ("depart,from_edge,to_edge\nnan,J1_J2,J2_J3\n", "line 2: depart 'nan' is not a finite"),
    ("depart,from_edge,to_edge\nsoon,J1_J2,J2_J3\n", "line 2: depart 'soon' is not a number"),
    ("depart,from_edge,to_edge\n-5,J1_J2,J2_J3\n", "line 2: depart -5 s is negative"),
    ("depart,from_edge,to_edge\n10,J1_J2,J2_J3\n5000,J1_J2,J2_J3\n", "line 3: depart 5000 s is"),
    ("depart,from_edge,to_edge\n10,J1_J2\n", "line 2: to_edge is missing"),
    ("depart,from_edge,to_edge\n10,nowhere,J2_J3\n", "from_edge 'nowhere' is no edge"),
    ("depart,from_edge,to_edge\n10,J1_W,W_J1\n", "no route for an emergency vehicle"),
    ("depart,from_edge,to_edge\n", "holds no emergency vehicle"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_file_is_refused_before_any_run(tmp_path, corridor, text, message):
    """The check itself (the same the command runs before any work)."""
    sc, network, _ = corridor
    with pytest.raises(Exception) as caught:
        plan_emergency(network, [1], begin=sc.begin, end=sc.end, file=write(tmp_path, text))
    assert message in str(caught.value)
    assert type(caught.value).__name__ == "InputError"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--emergency", "-1"), "--emergency"),
        (("--emergency", "5000"), "--emergency"),
        (("--emergency-red", "cross"), "--emergency-red needs"),
        (("--emergency", "2", "--emergency-file", "ev.csv"), "not both"),
        (("--emergency-file", "missing.csv"), "file not found"),
        (("--emergency-red", "sometimes", "--emergency", "1"), "--emergency-red"),
    ],
)
def test_bad_options_one_line_exit_2(tmp_path, args, fragment):
    out = tmp_path / "out"
    proc = run_cli("simulate", "corridor", "-c", "fixed", *args, "--out", out, cwd=tmp_path)
    assert_clean_error(proc, fragment)
    assert not out.exists()


@pytest.mark.parametrize(("text", "message"), BAD_FILES[::3])
def test_bad_file_one_line_exit_2(tmp_path, text, message):
    out = tmp_path / "out"
    file = write(tmp_path, text)
    proc = run_cli("simulate", "corridor", "-c", "fixed", "--emergency-file", file, "--out", out)
    assert_clean_error(proc, message)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_no_usable_pair_is_one_error(tmp_path, corridor):
    """A window too short to arrive leaves no pair to draw from."""
    sc, network, graph = corridor
    with pytest.raises(Exception, match="no two edges of the network are joined"):
        draw_emergency(graph, 1, seed=1, begin=0, end=END_RESERVE_S)


def test_csv_reader_names_the_row(tmp_path, corridor):
    """A row with a field too many names its line."""
    sc, network, _ = corridor
    file = write(tmp_path, "depart,from_edge,to_edge\n10,J1_J2,J2_J3_bay,extra\n")
    with pytest.raises(Exception, match="line 2: more fields than the header's 3"):
        plan_emergency(network, [1], begin=sc.begin, end=sc.end, file=file)
    # a good file is read in order of departure
    file = write(tmp_path, "depart,from_edge,to_edge\n200,J1_J2,J2_J3_bay\n100,J2_J3,J3_J4\n")
    fleet = plan_emergency(network, [1, 2], begin=sc.begin, end=sc.end, file=file)
    assert fleet[1] == fleet[2]
    assert [v.depart for v in fleet[1]] == [100.0, 200.0]
    assert list(csv.reader(file.open()))[0] == ["depart", "from_edge", "to_edge"]
