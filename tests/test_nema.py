"""NEMA phase numbers on real netconvert junctions and the bundled scenarios; the timing sheet,
movement table, UTDF and JSON exports that use them."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from citybrain_traffic.network import fit_network, name_movements, read_network
from citybrain_traffic.optimize import optimize_network, to_plans
from citybrain_traffic.optimize.sheet import (
    MOVEMENT_COLUMNS,
    movement_table,
    timing_sheet,
    write_outputs,
    timing_summary,
)
from citybrain_traffic.plans import plans_from_network, utdf_text
from citybrain_traffic.scenario import load_scenario

from junctions import junction, standard_junctions


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nema")
    split = {"N": (0, 1), "E": (90, 1), "S": (180, 1), "W": (270, 1)}
    options = ("--no-turnarounds", "--tls.layout", "incoming")
    return {
        **standard_junctions(folder, skew30_lanes=(2, 1)),
        "split": junction(folder, "split", split, options=options),
    }


def _labels(network) -> list[str]:
    return [p.label for p in fit_network(network)["C"].phases]


def test_cross_with_protected_lefts(nets):
    fit = fit_network(nets["cross"])["C"]
    assert fit.fits and fit.main_street == ("EB", "WB") and "lanes" in fit.main_basis
    assert _labels(nets["cross"]) == ["2+6 EBT/WBT", "1+5 WBL/EBL", "4+8 SBT/NBT", "3+7 NBL/SBL"]
    assert fit.movement_numbers == {
        "EBT": 2, "EBR": 2, "EBL": 5, "WBT": 6, "WBR": 6, "WBL": 1,
        "SBT": 4, "SBR": 4, "SBL": 7, "NBT": 8, "NBR": 8, "NBL": 3,
    }  # fmt: skip
    # Pedestrians walk beside the main street: across the north and south legs.
    assert {"PED-N", "PED-S"} <= set(fit.phase(0).movements)


def test_tee_stem_is_one_side_street_phase(nets):
    fit = fit_network(nets["tee"])["C"]
    assert fit.fits and fit.main_street == ("EB", "WB")
    assert fit.main_basis == "it has through movements"
    assert _labels(nets["tee"]) == ["2+6 EBT/WBT", "8 NBL/NBR"]
    assert fit.movement_numbers["WBL"] == 6  # permitted: it goes with its through


def test_skewed_junction_main_street_by_lanes(nets):
    fit = fit_network(nets["skew30"])["C"]
    assert fit.fits and fit.main_street == ("NB", "SB")
    assert _labels(nets["skew30"]) == ["2+6 NBT/SBT", "4+8 EBT/WBT"]


def test_protected_u_turns_run_with_their_left(nets):
    fit = fit_network(nets["uturn"])["C"]
    assert fit.fits
    assert _labels(nets["uturn"])[1] == "1+5 SBL/SBU/NBL/NBU"
    assert fit.movement_numbers["NBU"] == fit.movement_numbers["NBL"] == 5


def test_split_phasing_does_not_fit_and_says_why(nets):
    fit = fit_network(nets["split"])["C"]
    assert not fit.fits
    assert "crosses the barrier 4 times" in fit.reason
    assert all(not p.numbers for p in fit.phases)
    assert _labels(nets["split"])[0] == "SBL/SBT"
    text = utdf_text(plans_from_network(nets["split"]), nema=fit_network(nets["split"]))
    assert "; C: D1..D4 are the program's green phases in order" in text
    assert "RECORDNAME,INTID,D1,D2,D3,D4\r\n" in text


@pytest.mark.parametrize("scenario", ["single", "corridor", "grid"])
def test_bundled_scenarios_fit_or_say_why(scenario):
    network = read_network(load_scenario(scenario).net_file)
    for tls, fit in fit_network(network).items():
        greens = [i for i, p in enumerate(network.intersections[tls].phases) if p.is_green]
        assert [p.index for p in fit.phases] == greens
        if fit.fits:
            assert all(p.numbers for p in fit.phases)
            ring_1 = sorted(n for p in fit.phases for n in p.numbers if n <= 4)
            assert len(ring_1) == len(set(ring_1))
        else:
            assert fit.reason.startswith(f"{tls}: does not fit NEMA: ")


@pytest.fixture(scope="module")
def corridor_plans():
    network = read_network(load_scenario("corridor").net_file)
    # Flows by turn; one right turn carries none (it must show no delay and no LOS).
    per_turn = {"T": 500.0, "L": 90.0, "R": 60.0}
    rows = [
        (tls, m.key, 0.0 if (tls, m.name) == ("J1", "NBR") else per_turn[m.turn])
        for tls, named in name_movements(network).items()
        for m in named.movements
    ]
    flows = pd.DataFrame(rows, columns=["intersection", "movement", "flow_veh_h"])
    timings = optimize_network(network, flows, coordinated=True)
    return network, timings, to_plans(timings, network, program_id="test")


def test_sheet_names_phases_and_grades_only_served_flow(corridor_plans):
    network, timings, plans = corridor_plans
    sheet = timing_sheet(plans, timings, network)
    greens = sheet[sheet["kind"] == "green"]
    assert set(greens["nema"]) == {"2+6", "1+5", "4+8"}
    assert set(greens["movements"]) == {"EBT/WBT", "WBL/EBL", "SBT/NBT"}
    assert (sheet[sheet["kind"] != "green"]["nema"] == "").all()
    empty = greens[~(greens["flow_veh_h"] > 0)]
    assert (empty["los"] == "").all() and empty["delay_s_veh"].isna().all()
    graded = greens[greens["flow_veh_h"] > 0]
    assert set(graded["los"]) <= set("ABCDEF") and graded["delay_s_veh"].gt(0).all()


def test_movement_table_carries_every_vehicle(corridor_plans):
    network, timings, plans = corridor_plans
    table = movement_table(plans, network, timings=timings)
    assert list(table.columns) == MOVEMENT_COLUMNS
    for tls, timing in timings.items():
        rows = table[table["intersection"] == tls]
        assert rows["flow_veh_h"].sum() == pytest.approx(sum(timing.inputs["flows_veh_h"].values()))
        assert rows["movement"].is_unique
    # Protected lefts on the arterial only: no phase 3 or 7.
    assert set(table["nema"]) == {"1", "2", "4", "5", "6", "8"}
    served = table[table["flow_veh_h"] > 0]
    assert served["v_c"].between(0, 1.5).all() and (served["delay_s_veh"] > 0).all()
    assert set(served["los"]) <= set("ABCDEF")
    idle = table[~(table["flow_veh_h"] > 0)]
    assert list(idle["movement"]) == ["NBR"] and idle["delay_s_veh"].isna().all()
    assert (idle["los"] == "").all() and (idle["v_c"] == 0).all()
    # Rebuilt from the plans' provenance alone, the table is the same.
    pd.testing.assert_frame_equal(movement_table(plans, network), table)


def test_outputs_speak_nema(corridor_plans, tmp_path):
    network, timings, plans = corridor_plans
    sheet, summary = timing_sheet(plans, timings, network), timing_summary(plans, timings)
    written = write_outputs(tmp_path, plans, network, sheet, summary)
    assert (tmp_path / "timing_movements.csv") in written
    doc = json.loads((tmp_path / "plans.json").read_text())
    first = doc["plans"][0]["phases"]
    assert first[0]["nema"] == [2, 6] and first[0]["name"] == "2+6 EBT/WBT"
    assert "WBL" in first[0]["movements"] and "nema" not in first[1]  # a yellow has none
    lines = (tmp_path / "plans_utdf.csv").read_bytes().decode().split("\r\n")
    assert "RECORDNAME,INTID,D1,D2,D3,D4,D5,D6,D7,D8" in lines
    plan = plans[0]
    green = {r.split(",")[0]: r.split(",")[2:] for r in lines if f",{plan.tls_id}," in r}
    # D2 and D6 are the first green, D1 and D5 the left phase, D3 and D7 unused.
    assert green["Green"][1] == green["Green"][5] == f"{plan.phases[0].duration:g}"
    assert green["Green"][0] == f"{plan.phases[2].duration:g}"
    assert green["Green"][2] == green["Green"][6] == ""
    splits = [float(v) for v in green["Split"] if v]
    assert math.isclose(sum(splits[:3]), plan.cycle_s)  # ring 1: 1, 2, 4
