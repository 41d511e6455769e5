"""Bad input gets one clear line and exit code 2, never a traceback; nothing is overwritten."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from citybrain_traffic.sim.session import sumo_binary

from conftest import run_cli


def assert_clean_error(proc, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    "args",
    [
        ("simulate", "--bogus"),
        ("frobnicate",),
        ("collect", "single", "--days", "0", "--out", "x.csv"),
    ],
)
def test_usage_error_is_one_line(args):
    """Click's own errors (unknown option or command, a value out of range), without its usage
    block."""
    assert_clean_error(run_cli(*args), "--help")


def test_unknown_scenario():
    assert_clean_error(run_cli("simulate", "atlantis"), "unknown scenario 'atlantis'", "corridor")


def test_unknown_controller():
    assert_clean_error(
        run_cli("simulate", "single", "-c", "fixed,magic"),
        "unknown controller 'magic'",
        "max-pressure",
    )


def test_missing_config(tmp_path):
    assert_clean_error(run_cli("simulate", tmp_path / "nothere.sumocfg"), "nothere.sumocfg")


def test_net_without_routes(tmp_path):
    assert_clean_error(run_cli("simulate", "--net", tmp_path / "x.net.xml"), "--routes")


@pytest.fixture
def plain_grid(tmp_path):
    """A real 3x3 grid network without any traffic light, and trips across it."""
    net = tmp_path / "plain.net.xml"
    subprocess.run(
        [
            sumo_binary("netgenerate"),
            "--grid",
            "--grid.number",
            "3",
            "--no-turnarounds",
            "-o",
            str(net),
        ],
        check=True,
        capture_output=True,
    )
    routes = tmp_path / "trips.rou.xml"
    routes.write_text('<routes><trip id="a" depart="0" from="A0A1" to="A1A2"/></routes>\n')
    return net, routes


def test_network_without_traffic_lights(plain_grid):
    net, routes = plain_grid
    assert_clean_error(
        run_cli("simulate", "--net", net, "--routes", routes), str(net), "no traffic lights"
    )


def test_truncated_network(tmp_path, plain_grid):
    net, routes = plain_grid
    broken = tmp_path / "broken.net.xml"
    broken.write_text(net.read_text()[:3000])
    assert_clean_error(
        run_cli("simulate", "--net", broken, "--routes", routes), "not well-formed XML"
    )


def test_malformed_routes(tmp_path, plain_grid):
    net, _ = plain_grid
    routes = tmp_path / "bad.rou.xml"
    routes.write_text("<routes><vehicle id='a' depart='0'>\n")
    assert_clean_error(
        run_cli("simulate", "--net", net, "--routes", routes), "bad.rou.xml", "not well-formed XML"
    )


def test_not_a_sumocfg(tmp_path):
    cfg = tmp_path / "x.sumocfg"
    cfg.write_text("<net/>")
    assert_clean_error(run_cli("simulate", cfg), str(cfg), "not a SUMO config")


def test_empty_window():
    assert_clean_error(run_cli("simulate", "single", "--begin", "600", "--end", "600"), "600 s")


@pytest.mark.parametrize("seeds", ["5-1", "a", "1,1", "-3"])
def test_invalid_seeds(seeds):
    assert_clean_error(run_cli("simulate", "single", "--seeds", seeds), f"'{seeds}'")


@pytest.mark.parametrize(
    "command, value",
    [
        (("simulate", "single", "--end", "60"), "inf"),
        (("simulate", "single", "--end", "60"), "nan"),
        (("simulate", "single", "--end", "60"), "0"),
        (("simulate", "single", "--end", "60"), "1e400"),
        (("benchmark", "single", "--seeds", "1"), "-inf"),
        (("calibrate", "single"), "inf"),
        (("optimize", "single"), "inf"),
    ],
)
def test_non_finite_demand_scale_is_refused(tmp_path, command, value):
    """SUMO reads --scale inf as no vehicle at all: the run would measure an empty network."""
    out = tmp_path / "out"
    extra = ("--out", out) if command[0] in ("benchmark", "optimize") else ()
    assert_clean_error(
        run_cli(*command, *extra, "--demand-scale", value), "'--demand-scale'", f"'{value}'"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "args, option, value",
    [
        (("simulate", "single"), "--end", "inf"),
        (("simulate", "single", "--end", "60"), "--time-to-teleport", "nan"),
        (("optimize", "single", "--out", "unused"), "--begin", "-inf"),
    ],
)
def test_non_finite_time_is_refused(args, option, value):
    """SUMO refused --end inf with "Invalid Time Format" and ran --time-to-teleport nan."""
    assert_clean_error(run_cli(*args, option, value), f"'{option}'", f"'{value}'")


def test_huge_seed_range_is_refused(tmp_path):
    """0-100000 would start days of simulation: the limit is refused at once, and --help says it."""
    from citybrain_traffic.harness.seeds import MAX_SEED, MAX_SEEDS

    assert_clean_error(
        run_cli("simulate", "single", "--seeds", "0-100000"), f"more than {MAX_SEEDS} seeds"
    )
    assert_clean_error(
        run_cli("benchmark", "single", "--seeds", "1-600,1000-1500", "--out", tmp_path),
        str(MAX_SEEDS),
    )
    assert_clean_error(run_cli("simulate", "single", "--seeds", "0-1000000000000"), str(MAX_SEEDS))
    assert_clean_error(run_cli("simulate", "single", "--seed", str(MAX_SEED + 1)), str(MAX_SEED))
    for command in ("simulate", "benchmark"):
        assert f"at most {MAX_SEEDS} seeds" in " ".join(run_cli(command, "--help").stdout.split())
    # collect runs day d of seed s with SUMO seed s x 10,000 + d (SUMO said "Could not parse
    # commandline options").
    assert_clean_error(
        run_cli(
            "collect", "single", "--days", "2", "--seed", "999999", "--out", tmp_path / "h.csv"
        ),
        "SUMO seeds",
        "214747",
    )


def test_existing_out_dir_is_left_alone(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    keep = out / "mine.txt"
    keep.write_text("precious")
    assert_clean_error(run_cli("simulate", "single", "--out", out), str(out), "--out")
    assert keep.read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_collect_never_overwrites_the_days_file(tmp_path):
    """collect writes <name>.days.csv beside --out: an existing one is refused like --out itself."""
    days = tmp_path / "history.days.csv"
    days.write_text("mine\n")
    assert_clean_error(
        run_cli("collect", "single", "--days", "1", "--out", tmp_path / "history.csv"),
        "history.days.csv",
    )
    assert days.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "history.days.csv"
    ]


def test_sumo_error_is_reported_with_sumos_message(tmp_path, plain_grid):
    """A route over edges that do not connect: SUMO's own error reaches the user, as the reason of
    the failed run (exit code 1: the run is reported failed, as any failing run is)."""
    net, _ = plain_grid
    shutil.copy(net, tmp_path / "n.net.xml")
    routes = tmp_path / "r.rou.xml"
    routes.write_text(
        '<routes><vehicle id="v" depart="0"><route edges="A0A1 C2C1"/></vehicle></routes>\n'
    )
    tls_net = tmp_path / "tls.net.xml"
    subprocess.run(
        [sumo_binary("netconvert"), "-s", str(net), "--tls.set", "B1", "-o", str(tls_net)],
        check=True,
        capture_output=True,
    )
    proc = run_cli("simulate", "--net", tls_net, "--routes", routes, "--end", "60", "-c", "fixed")
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, (
        proc.stdout + proc.stderr
    )
    assert (
        "failed: tls fixed seed 1: SUMO stopped at 0 s: Vehicle 'v' has no valid route. "
        "No connection between edge 'A0A1' and edge 'C2C1'."
    ) in " ".join(proc.stdout.split())


def test_calibrate_never_prints_nan(tmp_path):
    """A light demand queues 8 vehicles too rarely for any lane's 20 headways: the network's median
    over no lane was printed as "nan veh/h/lane" with exit code 0. It is now an error that says
    why."""
    out = tmp_path / "lanes.csv"
    proc = run_cli("calibrate", "single", "--demand-scale", "0.5", "--out", out)
    assert_clean_error(proc, "too few queue discharges", "--demand-scale")
    assert "nan" not in (proc.stdout + proc.stderr).lower()
    assert not out.exists()


def test_network_saturation_flow_needs_well_sampled_lanes():
    import pandas as pd

    from citybrain_traffic.experiments.calibrate import network_saturation_flow
    from citybrain_traffic.errors import InputError

    table = pd.DataFrame(
        {"headways": [25, 3, 40], "saturation_veh_h_lane": [1800.0, 900.0, 1900.0]}
    )
    assert network_saturation_flow(table) == 1850.0
    with pytest.raises(InputError, match="best lane gave 3 saturated headways"):
        network_saturation_flow(table.iloc[[1]])
