"""Networks as real files have them: the network's own program is admissible as it is, and
Webster stays available where SUMO's tool fails on the network."""

from __future__ import annotations

from citybrain_traffic.control.actuated import ActuatedController
from citybrain_traffic.control.webster import WebsterController
from citybrain_traffic.network import read_network
from citybrain_traffic.plans import plans_from_network, read_tl_logics, violations
from citybrain_traffic.scenario import load_scenario

from conftest import run_cli
from network_variants import (
    contradicting_ranges,
    no_yellow,
    single_files,
    sumo_saved_config,
    unused_state,
)


def _scenario(net, end=900):
    return load_scenario(net=net, routes=str(single_files()[1]), end=end)


def test_contradicting_ranges_are_widened_and_said_once_per_signal(tmp_path):
    network = read_network(contradicting_ranges(tmp_path))
    phases = network.intersections["C"].phases
    assert (phases[0].min_dur, phases[0].duration, phases[0].max_dur) == (5, 78, 78)
    assert (phases[2].min_dur, phases[2].duration, phases[2].max_dur) == (6, 6, 50)
    assert phases[2].min_green == 6
    assert network.notes == [
        "C: the network's program widened to its own durations: "
        "phase 0 78 s outside its 5-50 s range, read as 5-78 s; "
        "phase 2 6 s outside its 7-50 s range, read as 6-50 s"
    ]
    (own,) = plans_from_network(network)
    assert violations(own, phases) == []


def test_actuated_runs_the_networks_own_contradicting_program(tmp_path):
    """It stopped with 'duration 78 s outside its range 5-50 s' before."""
    sc = _scenario(contradicting_ranges(tmp_path))
    network = read_network(sc.net_file)
    setup = ActuatedController().fit(sc, network, tmp_path, demand_scale=1.0).setup
    (program,) = read_tl_logics(setup.additional_files[0])
    assert violations(program, network.intersections["C"].phases) == []


def test_webster_times_a_signal_itself_where_sumos_tool_fails(tmp_path):
    """SUMO's tlsCycleAdaptation.py crashes (IndexError) on a signal with an unused state."""
    sc = _scenario(unused_state(tmp_path))
    network = read_network(sc.net_file)
    webster = WebsterController().fit(sc, network, tmp_path, demand_scale=1.0)
    assert webster.tool_failed_ and webster.ours_ == ["C"]
    (program,) = read_tl_logics(webster.setup.additional_files[0])
    assert violations(program, network.intersections["C"].phases) == []
    assert program.cycle_s != network.intersections["C"].cycle_s


def test_webster_replaces_a_tool_plan_below_a_minimum_green(tmp_path):
    sc = _scenario(contradicting_ranges(tmp_path))
    network = read_network(sc.net_file)
    webster = WebsterController().fit(sc, network, tmp_path, demand_scale=1.0)
    assert set(webster.refused_) == {"C"} and "below its minimum" in webster.refused_["C"]
    assert not webster.tool_failed_ and webster.ours_ == ["C"]
    setup = webster.setup
    (program,) = read_tl_logics(setup.additional_files[0])
    assert violations(program, network.intersections["C"].phases) == []


def test_a_program_without_yellow_is_noted_and_keeps_its_all_red(tmp_path):
    network = read_network(no_yellow(tmp_path))
    assert network.notes == [
        "C: the program has no yellow: its own change intervals (all-red, or none) "
        "are the clearances kept"
    ]
    (own,) = plans_from_network(network)
    assert violations(own, network.intersections["C"].phases) == []


def test_a_config_sumo_wrote_itself_is_read_as_sumo_reads_it(tmp_path):
    """Root <sumoConfiguration>, a gzipped net, two route files, times as h:m:s."""
    sc = load_scenario(str(sumo_saved_config(tmp_path, begin="0:1:0", end="0:11:30")))
    assert (sc.begin, sc.end) == (60.0, 690.0)
    assert sc.net_file.name == "single.net.xml.gz"
    assert [p.name for p in sc.route_files] == ["single.rou.xml", "mixed.rou.xml"]
    assert list(read_network(sc.net_file).intersections) == ["C"]


def test_every_baseline_runs_a_config_sumo_wrote_with_bicycles_flows_and_pedestrians(tmp_path):
    config = sumo_saved_config(tmp_path)
    proc = run_cli(
        "simulate",
        config,
        "-c",
        "fixed,actuated,webster,max-pressure",
        "--jobs",
        "2",
        "--out",
        tmp_path / "out",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "summary.csv").read_text().count("\n") == 5


def test_sumo_day_times_and_synonyms_are_read(tmp_path):
    net, routes = single_files()
    config = tmp_path / "short.sumocfg"
    config.write_text(
        f'<configuration><net value="{net}"/><routes value="{routes}"/>'
        '<b value="1:0:0:0"/><e value="1:0:10:0"/></configuration>'
    )
    sc = load_scenario(str(config))
    assert (sc.begin, sc.end) == (86400.0, 87000.0)
    assert sc.net_file == net


def test_a_config_without_options_is_one_line(tmp_path):
    config = tmp_path / "empty.sumocfg"
    config.write_text("<sumoConfiguration/>")
    proc = run_cli("simulate", config)
    assert (
        proc.returncode == 2 and "sets no option" in proc.stderr and "Traceback" not in proc.stderr
    )
