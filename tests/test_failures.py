"""One controller failing never sinks the others: a failed preparation or run is a row of the
table and of failures.csv, the others' results are written, and the command exits 1."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from citybrain_traffic.control.fixed import FixedController
from citybrain_traffic.errors import SimulationError
from citybrain_traffic.harness.matrix import RunFailure, run_matrix
from citybrain_traffic.harness.runner import RunResult, RunSpec
from citybrain_traffic.network import read_network
from citybrain_traffic.scenario import load_scenario

from conftest import run_cli
from network_variants import long_minimum_greens, missing_internal_connection, single_files


def _simulate(net, out, controllers: str):
    _, routes = single_files()
    return run_cli(
        "simulate",
        "--net",
        net,
        "--routes",
        routes,
        "--end",
        "600",
        "-c",
        controllers,
        "--out",
        out,
    )


def _failures(out) -> pd.DataFrame:
    return pd.read_csv(out / "failures.csv", dtype=str, keep_default_na=False)


def test_an_infeasible_preparation_is_a_failed_row_and_the_others_run(tmp_path):
    """Minimum greens that need a 224 s cycle: the optimizer cannot time the signal,
    fixed runs it."""
    out = tmp_path / "out"
    proc = _simulate(long_minimum_greens(tmp_path), out, "fixed,optimized")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    reason = "signal C: minimum greens 60+45+60+45 s plus change intervals 14 s need a 224 s cycle"
    assert f"failed: long-minimum-greens optimized (preparation): {reason}" in " ".join(
        proc.stdout.split()
    )
    assert re.search(r"│ optimized +│ failed:", proc.stdout)  # a row of the terminal table
    assert (
        f"| long-minimum-greens | optimized | 0 | failed: {reason}"
        in (out / "comparison.md").read_text()
    )
    assert list(pd.read_csv(out / "summary.csv")["controller"]) == ["fixed"]
    assert json.loads((out / "fixed" / "seed-1" / "kpis.json").read_text())["vehicles_arrived"] > 0
    failures = _failures(out)
    assert failures[["controller", "seed"]].values.tolist() == [
        ["optimized", ""]
    ]  # no seed: the preparation
    assert failures["reason"][0].startswith(reason)


def test_a_crashing_run_is_a_failed_row_and_the_others_run(tmp_path):
    """A network SUMO crashes on (SIGSEGV): fixed's run is reported failed, actuated-rebuilt's
    (netconvert rebuilds the junction) is measured, and optimized's preparation, whose check runs
    crash too, fails with a reason that says it was the check."""
    out = tmp_path / "out"
    proc = _simulate(missing_internal_connection(tmp_path), out, "fixed,actuated-rebuilt,optimized")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert (
        "failed: missing-internal-connection fixed seed 1: SUMO crashed (exit code -11, SIGSEGV)"
        in text
    )
    assert (
        "failed: missing-internal-connection optimized (preparation): optimized: "
        "checking its candidates in SUMO (on seeds of their own) failed: "
        "SUMO crashed (exit code -11, SIGSEGV)"
    ) in text
    assert list(pd.read_csv(out / "summary.csv")["controller"]) == ["actuated-rebuilt"]
    assert (out / "actuated-rebuilt" / "seed-1" / "kpis.json").is_file()
    assert (
        out / "fixed" / "seed-1" / "sumo" / "sumo.log"
    ).is_file()  # what SUMO left, to look into
    assert _failures(out)[["controller", "seed"]].values.tolist() == [
        ["optimized", ""],
        ["fixed", "1"],
    ]
    table = (out / "comparison.md").read_text()
    assert "| missing-internal-connection | fixed | 0 | failed: SUMO crashed" in table
    assert (
        table.index("| fixed |")
        < table.index("| actuated-rebuilt |")
        < table.index("| optimized |")
    )


def test_benchmark_reports_a_failed_controller_and_writes_the_others(tmp_path):
    net = long_minimum_greens(tmp_path)
    _, routes = single_files()
    config = tmp_path / "long.sumocfg"
    config.write_text(
        f'<configuration><input><net-file value="{net}"/><route-files value="{routes}"/></input>'
        '<time><begin value="0"/><end value="600"/></time></configuration>'
    )
    out = tmp_path / "bench"
    proc = run_cli("benchmark", config, "-c", "optimized", "--seeds", "1", "--out", out)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        "| long | optimized | 0 | failed: signal C: minimum greens"
        in (out / "results.md").read_text()
    )
    assert list(pd.read_csv(out / "results.csv")["controller"]) == ["fixed"]
    assert list(_failures(out)["controller"]) == ["optimized"]
    assert (out / "results.png").is_file()


def test_run_matrix_reports_failures_only_when_asked(tmp_path):
    """Library callers that run checks (optimized, adaptive) still get the first error raised;
    with on_failed a failed run's place holds its RunFailure and the other runs finish."""
    _, routes = single_files()
    broken = load_scenario(net=missing_internal_connection(tmp_path), routes=str(routes), end=600)
    sound = load_scenario("single", end=300)

    def spec(scenario, name):
        return RunSpec(
            scenario=scenario,
            network=read_network(scenario.net_file),
            controller=FixedController(),
            seed=1,
            workdir=tmp_path / name,
        )

    specs = [spec(broken, "broken"), spec(sound, "sound")]
    with pytest.raises(SimulationError, match="SIGSEGV"):
        run_matrix(specs)
    reported = []
    crashed, measured = run_matrix(
        specs, jobs=2, on_failed=lambda index, failure: reported.append(index)
    )
    assert reported == [0]
    assert isinstance(crashed, RunFailure) and (crashed.controller, crashed.seed) == ("fixed", 1)
    assert isinstance(measured, RunResult) and measured.kpis["vehicles_arrived"] > 0


def test_a_controller_that_lost_some_seeds_shows_the_mean_of_the_others():
    from citybrain_traffic.harness.stats import SUMMARY_COLUMNS, comparison
    from citybrain_traffic.report import comparison_markdown
    from citybrain_traffic.sim.metrics import KPI_COLUMNS

    runs = [("fixed", 1, 40.0), ("fixed", 2, 42.0), ("webster", 1, 30.0)]
    summary = pd.DataFrame(
        [
            {
                **dict.fromkeys(SUMMARY_COLUMNS, 1.0),
                "scenario": "s",
                "controller": c,
                "seed": seed,
                "mean_delay_s": delay,
            }
            for c, seed, delay in runs
        ]
    )
    lost = [RunFailure("s", "webster", 2, "SUMO crashed (exit code -11, SIGSEGV)")]
    table = comparison(summary, metrics=list(KPI_COLUMNS), baseline="fixed", failures=lost)
    webster = table.set_index("controller").loc["webster"]
    assert (webster["seeds"], webster["failed"], webster["mean_delay_s"]) == (1, 1, 30.0)
    assert "| s | webster | 1 (1 failed) | 30.0 (-26.8%) |" in comparison_markdown(
        table, baseline="fixed"
    )
