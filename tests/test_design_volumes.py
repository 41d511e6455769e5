"""Design volumes: the peak 15-min flow rate per signal, percentiles per movement, the mean as
before, from hand-built routes and counts with a known peak; bad --design values."""

from __future__ import annotations

import pandas as pd
import pytest

from citybrain_traffic.errors import InputError
from citybrain_traffic.flows import (
    design_flows_from_counts,
    design_flows_from_routes,
    flows_from_counts,
    flows_from_routes,
    parse_design,
)
from citybrain_traffic.network import read_network
from citybrain_traffic.plans import read_plans

from conftest import run_cli
from generated_junction import build_junction, write_routes

DAY = pd.Timestamp("2026-01-05 07:00")
#: Vehicles per 15-min bin (0-900, 900-1800, 1800-2700 s): west-east peaks in the second bin,
#: north-south in the third, and the signal's total peaks in the second (30 > 20 + 5).
WEST_EAST, NORTH_SOUTH = (10, 30, 20), (0, 0, 5)


@pytest.fixture(scope="module")
def junction(tmp_path_factory):
    folder = tmp_path_factory.mktemp("junction")
    net = build_junction(folder)
    vehicles = []
    for edges, per_bin in (("W_C C_E", WEST_EAST), ("N_C C_S", NORTH_SOUTH)):
        for b, n in enumerate(per_bin):
            # Departures early enough in the bin to reach the stop line (14 s later) inside it.
            vehicles += [(900.0 * b + 800.0 * k / n, edges, "") for k in range(n)]
    routes = write_routes(folder / "peak.rou.xml", vehicles)
    return routes, read_network(net)


def _flows(result):
    return result.flows.set_index("movement")["flow_veh_h"]


def test_peak15_takes_the_heaviest_bin_of_the_signal(junction):
    routes, network = junction
    result = design_flows_from_routes(
        routes, network, begin=0, end=2700, design=parse_design("peak15")
    )
    flows = _flows(result)
    assert result.peak_starts == {"C": 900.0}
    assert flows["W_C>C_E"] == 30 * 4
    # Per signal, not per movement: north-south's own peak (5 in the third bin) is not taken.
    assert flows["N_C>C_S"] == 0
    assert flows.drop(["W_C>C_E"]).sum() == 0


def test_percentile_is_per_movement(junction):
    routes, network = junction
    median = _flows(
        design_flows_from_routes(
            routes, network, begin=0, end=2700, design=parse_design("percentile:50")
        )
    )
    assert median["W_C>C_E"] == 20 * 4 and median["N_C>C_S"] == 0
    top = _flows(
        design_flows_from_routes(
            routes, network, begin=0, end=2700, design=parse_design("percentile:100")
        )
    )
    assert top["W_C>C_E"] == 30 * 4 and top["N_C>C_S"] == 5 * 4


def test_mean_reproduces_the_window_mean(junction):
    routes, network = junction
    result = design_flows_from_routes(
        routes, network, begin=0, end=2700, design=parse_design("mean")
    )
    flows = _flows(result)
    assert flows["W_C>C_E"] == pytest.approx(60 / 0.75) and flows["N_C>C_S"] == pytest.approx(
        5 / 0.75
    )
    pd.testing.assert_frame_equal(
        result.flows, flows_from_routes(routes, network, begin=0, end=2700), check_exact=True
    )
    assert result.peak_starts == {}


def _counts():
    rows = []
    for b in range(3):
        start = DAY + pd.Timedelta(minutes=15 * b)
        rows.append((start, "C", "W_C>C_E", WEST_EAST[b]))
        if b != 1:  # a gap: north-south has no count in the second bin
            rows.append((start, "C", "N_C>C_S", NORTH_SOUTH[b]))
    return pd.DataFrame(rows, columns=["timestamp", "intersection", "movement", "count"])


def test_counts_peak_percentile_and_mean():
    counts = _counts()
    peak = design_flows_from_counts(counts, at=DAY, minutes=45, design=parse_design("peak15"))
    assert peak.peak_starts == {"C": DAY + pd.Timedelta(minutes=15)}
    # The gap in the peak bin is filled with the movement's mean of the bins counted.
    assert _flows(peak).to_dict() == {"N_C>C_S": 2.5 * 4, "W_C>C_E": 30 * 4}
    p100 = design_flows_from_counts(
        counts, at=DAY, minutes=45, design=parse_design("percentile:100")
    )
    assert _flows(p100).to_dict() == {"N_C>C_S": 5 * 4, "W_C>C_E": 30 * 4}
    mean = design_flows_from_counts(counts, at=DAY, minutes=45, design=parse_design("mean"))
    pd.testing.assert_frame_equal(mean.flows, flows_from_counts(counts, at=DAY, minutes=45))
    # A 15-min window is its one bin, whatever the design.
    one = design_flows_from_counts(
        counts, at=DAY + pd.Timedelta(minutes=30), minutes=15, design=parse_design("peak15")
    )
    assert _flows(one).to_dict() == {"N_C>C_S": 5 * 4, "W_C>C_E": 20 * 4}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("percentile:150", "from 0 to 100"),
        ("percentile:-1", "from 0 to 100"),
        ("peak5", "expected one of mean, peak15, percentile:P"),
        ("percentile:", "expected one of"),
    ],
)
def test_bad_designs_are_input_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_design(text)


def test_the_cli_states_the_design_and_refuses_a_bad_one(tmp_path):
    # Unchecked: the check may keep the mean flows' plan (test_optimize_check.py).
    proc = run_cli("optimize", "single", "--no-check", "--out", tmp_path / "peak")
    assert proc.returncode == 0, proc.stderr
    assert "design flows peak15: the peak 15-min flow rate of each signal" in proc.stdout
    assert "peak bin from 3600 s at C" in proc.stdout
    demand = read_plans(tmp_path / "peak" / "plans.json")[0].provenance["demand"]
    assert demand["design"] == "peak15" and demand["peak_bin_start"] == {"C": 3600.0}
    mean = run_cli(
        "optimize", "single", "--no-check", "--design", "mean", "--out", tmp_path / "mean"
    )
    assert mean.returncode == 0, mean.stderr
    peak_cycle = read_plans(tmp_path / "peak" / "plans.json")[0].cycle_s
    assert read_plans(tmp_path / "mean" / "plans.json")[0].cycle_s < peak_cycle
    for value in ("percentile:150", "peak5"):
        bad = run_cli("optimize", "single", "--design", value, "--out", tmp_path / "bad")
        assert bad.returncode == 2, bad.stdout + bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and "--design" in bad.stderr
        assert "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()
