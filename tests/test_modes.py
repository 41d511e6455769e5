"""KPIs per mode (motor vehicles, bicycles, pedestrians) and collisions, on real SUMO runs."""

from __future__ import annotations

import gzip
import io
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from citybrain_traffic.harness.stats import SUMMARY_COLUMNS, comparison
from citybrain_traffic.network import read_network
from citybrain_traffic.report import comparison_markdown, comparison_rich
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.sim.metrics import KPI_COLUMNS, trip_kpis
from citybrain_traffic.experiments.simulate import simulate_scenario

from network_variants import crossing_grid, random_demand, single_files, sumo_saved_config


def _simulate(config: Path, workdir: Path):
    scenario = load_scenario(str(config))
    return simulate_scenario(
        scenario, read_network(scenario.net_file), controllers=["fixed"], seeds=[1], workdir=workdir
    )


def _rich_text(table: pd.DataFrame) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=250)
    console.print(comparison_rich(table, baseline="fixed", title="t"))
    return console.file.getvalue()


def test_every_mode_on_its_own(tmp_path):
    """A SUMO-written config with cars, a bicycle flow and walkers: the headline delay is the motor
    vehicles' alone, computed here from SUMO's tripinfo; bicycles and pedestrians beside it."""
    config = sumo_saved_config(tmp_path, end="0:20:0")
    outcome = _simulate(config, tmp_path / "out")
    kpis = outcome.results[0].kpis

    root = ET.parse(gzip.open(outcome.results[0].workdir / "tripinfo.xml.gz")).getroot()
    trips = root.findall("tripinfo")
    cars = [t for t in trips if t.get("vType") != "bike"]
    bikes = [t for t in trips if t.get("vType") == "bike"]
    walkers = [p for p in root.findall("personinfo") if p.find("walk") is not None]
    assert cars and bikes and walkers

    def delay(trip):
        return float(trip.get("timeLoss")) + float(trip.get("departDelay"))

    assert kpis["vehicles_loaded"] == len(cars)
    assert kpis["mean_delay_s"] == pytest.approx(sum(map(delay, cars)) / len(cars), rel=1e-12)
    # Mixing the modes would give another figure: the check above tells them apart.
    assert sum(map(delay, trips)) / len(trips) != pytest.approx(kpis["mean_delay_s"], rel=1e-3)
    assert (
        kpis["bicycles_loaded"]
        == len(bikes)
        == kpis["bicycles_inserted"] + kpis["bicycles_not_inserted"]
    )
    assert kpis["mean_delay_bicycle_s"] == pytest.approx(
        sum(map(delay, bikes)) / len(bikes), rel=1e-12
    )
    assert 0 < kpis["bicycles_arrived"] <= kpis["bicycles_inserted"]
    assert kpis["vehicles_not_inserted"] == kpis["vehicles_loaded"] - kpis["vehicles_inserted"]

    # A walker every 60 s for 20 minutes, each walking some 9 minutes across the junction.
    assert kpis["pedestrians_departed"] == len(walkers) == 20
    assert 0 < kpis["pedestrians_arrived"] < kpis["pedestrians_departed"]
    finished = [p for p in walkers if float(p.find("walk").get("arrival")) >= 0]
    assert kpis["mean_time_loss_pedestrian_s"] == pytest.approx(
        sum(float(p.find("walk").get("timeLoss")) for p in finished) / len(finished)
    )
    assert 0 < kpis["mean_time_loss_pedestrian_s"] < 600
    assert kpis["mean_waiting_pedestrian_s"] >= 0
    assert kpis["collisions"] == 0

    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert summary.loc[0, "bicycles_loaded"] == len(bikes)
    head = (tmp_path / "out" / "comparison.md").read_text().splitlines()[0]
    assert "Bicycle delay" in head and "Pedestrian time loss" in head and "Collisions" not in head


def test_a_vehicle_of_class_pedestrian_is_a_pedestrian():
    trips = pd.DataFrame(
        {
            "id": ["car", "bike", "walker"],
            "depart": [0.0, 0.0, 0.0],
            "depart_delay": [1.0, 2.0, 0.0],
            "arrival": [50.0, math.nan, 80.0],
            "duration": [50.0, 60.0, 80.0],
            "time_loss": [9.0, 18.0, 30.0],
            "waiting_time": [0.0, 5.0, 12.0],
            "stops": [0, 1, 2],
            "mode": ["motor", "bicycle", "pedestrian"],
        }
    )
    walks = pd.DataFrame(
        {"id": ["p"], "finished": [False], "time_loss": [0.0], "waiting_time": [4.0]}
    )
    kpis = trip_kpis(trips, window_s=3600, teleports=0, walks=walks)
    assert list(kpis) == list(KPI_COLUMNS)
    assert (kpis["vehicles_loaded"], kpis["mean_delay_s"], kpis["backlog"]) == (1, 10.0, 0)
    assert (kpis["bicycles_loaded"], kpis["bicycles_arrived"], kpis["mean_delay_bicycle_s"]) == (
        1,
        0,
        20.0,
    )
    assert (kpis["pedestrians_departed"], kpis["pedestrians_arrived"]) == (2, 1)
    # Time loss only of walks that ended (SUMO reports it then); waiting of every walker so far.
    assert kpis["mean_time_loss_pedestrian_s"] == 30.0
    assert kpis["mean_waiting_pedestrian_s"] == 8.0


def _collision_config(folder: Path) -> Path:
    """The bundled `single` net with two crossing flows of drivers that run red lights and ignore
    foes, SUMO checking collisions inside the junction: they collide there."""
    net, _ = single_files()
    (folder / "crash.rou.xml").write_text(
        "<routes>\n"
        '    <vType id="reckless" sigma="0" jmDriveAfterRedTime="1000" jmDriveAfterRedSpeed="15"'
        ' jmIgnoreFoeProb="1" jmIgnoreFoeSpeed="100" jmIgnoreJunctionFoeProb="1"/>\n'
        '    <flow id="we" type="reckless" begin="0" end="120" period="6" from="W_C" to="C_E"/>\n'
        '    <flow id="sn" type="reckless" begin="0" end="120" period="6" from="S_C" to="C_N"/>\n'
        "</routes>\n"
    )
    config = folder / "crash.sumocfg"
    config.write_text(
        "<configuration>\n"
        f'    <input><net-file value="{net}"/><route-files value="crash.rou.xml"/></input>\n'
        '    <time><begin value="0"/><end value="300"/></time>\n'
        '    <processing><collision.check-junctions value="true"/></processing>\n'
        "</configuration>\n"
    )
    return config


def test_collisions_are_counted_never_as_teleports(tmp_path):
    outcome = _simulate(_collision_config(tmp_path), tmp_path / "out")
    result = outcome.results[0]
    collisions = ET.parse(result.workdir / "collisions.xml").getroot().findall("collision")
    assert len(collisions) >= 1
    assert result.kpis["collisions"] == len(collisions)
    # SUMO teleports the collider and counts it in its teleport total; ours keeps it apart.
    total = int(
        ET.parse(result.workdir / "statistics.xml").getroot().find("teleports").get("total")
    )
    assert total >= len(collisions)
    assert result.kpis["teleports"] == total - len(collisions) == 0

    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.loc[0, "collisions"] == len(collisions)
    assert "Collisions" in (tmp_path / "out" / "comparison.md").read_text().splitlines()[0]
    assert "Collisions" in _rich_text(outcome.comparison)


def test_the_table_shows_collisions_only_when_a_run_had_one():
    def table(collisions):
        rows = [
            {
                "scenario": "s",
                "controller": c,
                "seed": 1,
                **{k: 1.0 for k in KPI_COLUMNS},
                "mean_delay_bicycle_s": math.nan,
                "bicycles_not_inserted": 0,
                "mean_time_loss_pedestrian_s": math.nan,
                "mean_waiting_pedestrian_s": math.nan,
                "collisions": n,
            }
            for c, n in zip(["fixed", "webster"], collisions)
        ]
        return comparison(pd.DataFrame(rows), metrics=list(KPI_COLUMNS), baseline="fixed")

    for collisions, shown in (([0, 0], False), ([0, 1], True)):
        markdown = comparison_markdown(table(collisions), baseline="fixed")
        assert ("Collisions" in markdown) is shown
        assert ("Collisions" in _rich_text(table(collisions))) is shown
        assert "Bicycle" not in markdown and "Pedestrian" not in markdown


def test_pedestrians_wait_at_signalized_crossings(tmp_path):
    """netgenerate's grid with sidewalks and signalized crossings, randomTrips' walkers: their
    waiting (SUMO's walk waitingTime, standing at a red crossing) is the mean over every walker."""
    net = crossing_grid(tmp_path)
    scenario = load_scenario(
        net=net, routes=random_demand(tmp_path, net, end_s=600, pedestrians=True), end=600
    )
    outcome = simulate_scenario(
        scenario,
        read_network(net),
        controllers=["fixed"],
        seeds=[1],
        workdir=tmp_path / "out",
        write_files=False,
    )
    kpis = outcome.results[0].kpis
    root = ET.parse(gzip.open(outcome.results[0].workdir / "tripinfo.xml.gz")).getroot()
    walks = [w for p in root.findall("personinfo") for w in p.findall("walk")]
    assert kpis["pedestrians_departed"] == len(walks) > 50
    assert kpis["mean_waiting_pedestrian_s"] == pytest.approx(
        sum(float(w.get("waitingTime")) for w in walks) / len(walks)
    )
    assert kpis["mean_waiting_pedestrian_s"] > 1.0
    assert kpis["mean_time_loss_pedestrian_s"] > 0
