"""Timing plans: formats round-trip, SUMO loads the export, unsafe plans are refused."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from citybrain_traffic.errors import UnsafePlanError
from citybrain_traffic.network import read_network
from citybrain_traffic.plans import (
    plans_from_network,
    read_plans,
    tl_logics_xml,
    utdf_text,
    validate_all,
    violations,
    write_json,
    write_tl_logics,
    write_utdf,
)
from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.sim.session import sumo_binary

from conftest import run_cli


@pytest.fixture(scope="module")
def corridor():
    sc = load_scenario("corridor")
    return sc, read_network(sc.net_file)


def _shifted(network):
    """The network's plans with a longer first green and an offset: a legal change."""
    out = []
    for k, plan in enumerate(plans_from_network(network)):
        phases = list(plan.phases)
        i, green = plan.greens[0]
        phases[i] = replace(
            green, duration=green.duration + 7, min_dur=green.min_green, max_dur=green.duration + 20
        )
        out.append(
            replace(
                plan,
                phases=tuple(phases),
                cycle_s=plan.cycle_s + 7,
                offset=float(5 * k),
                provenance={"solver": "test", "objective": 1.5},
            )
        )
    return out


def test_json_round_trip(tmp_path, corridor):
    _, network = corridor
    plans = _shifted(network)
    back = read_plans(write_json(tmp_path / "plans.json", plans))
    assert back == plans
    assert back[0].provenance == {"solver": "test", "objective": 1.5}
    assert validate_all(back, network) == back


def test_sumo_export_loads_and_runs(tmp_path, corridor):
    sc, network = corridor
    plans = [replace(p, program_id="shifted") for p in _shifted(network)]
    add = write_tl_logics(tmp_path / "plans.add.xml", plans)
    assert add.read_bytes() == tl_logics_xml(plans).encode()
    assert read_plans(add) == [replace(p, provenance={}) for p in plans]
    proc = subprocess.run(
        [
            sumo_binary("sumo"),
            "-c",
            str(sc.config_file),
            "-a",
            str(add),
            "--end",
            "120",
            "--no-step-log",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_utdf_sections(tmp_path, corridor):
    _, network = corridor
    plans = _shifted(network)
    text = utdf_text(plans)
    assert write_utdf(tmp_path / "plans.csv", plans).read_bytes() == text.encode()
    assert "\r\n" in text
    lines = text.split("\r\n")
    assert lines[0] == "[Timeplans]" and "[Phases]" in lines
    first = plans[0]
    assert f"Cycle Length,{first.tls_id},{first.cycle_s:g}" in lines
    assert f"Offset,{first.tls_id},{first.offset:g}" in lines
    green_row = next(line for line in lines if line.startswith(f"Green,{first.tls_id},"))
    assert green_row.split(",")[2] == f"{first.greens[0][1].duration:g}"


def test_cycle_must_equal_the_durations(corridor):
    _, network = corridor
    plan = plans_from_network(network)[0]
    assert any(
        "sum to" in v for v in violations(replace(plan, cycle_s=plan.cycle_s + 1), plan.phases)
    )
    assert any(
        "offset" in v for v in violations(replace(plan, offset=plan.cycle_s + 3), plan.phases)
    )


def test_unknown_signal_is_refused(corridor):
    _, network = corridor
    with pytest.raises(UnsafePlanError, match="no such signal"):
        validate_all([replace(plans_from_network(network)[0], tls_id="nowhere")], network)


def test_cli_validate(tmp_path, corridor):
    sc, network = corridor
    good = write_json(tmp_path / "good.json", _shifted(network))
    proc = run_cli("plans", "validate", good, "--net", sc.net_file)
    assert proc.returncode == 0 and "safe" in proc.stdout

    plan = _shifted(network)[0]
    y = next(i for i, p in enumerate(plan.phases) if p.kind == "yellow")
    phases = list(plan.phases)
    phases[y] = replace(phases[y], duration=1.0)
    bad = write_json(
        tmp_path / "bad.json",
        [replace(plan, phases=tuple(phases), cycle_s=sum(p.duration for p in phases))],
    )
    proc = run_cli("plans", "validate", bad, "--net", sc.net_file)
    assert proc.returncode == 2 and "must stay" in proc.stderr and "Traceback" not in proc.stderr

    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    proc = run_cli("plans", "validate", junk, "--net", sc.net_file)
    assert proc.returncode == 2 and "cannot read plans" in proc.stderr
