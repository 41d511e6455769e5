"""The network corpus: every controller on every signal-program feature found in real files runs,
or refuses with one line where it cannot apply; safety is checked on the states SUMO showed."""

from __future__ import annotations

import re

import pytest

from network_variants import CORPUS, CORPUS_CONTROLLERS, corpus_matrix

#: Where a controller cannot apply, and the reason it must give. Anything else must run.
REFUSALS = {
    **{
        ("nema", c): "run NEMA programs"
        for c in ("actuated", "webster", "max-pressure", "optimized", "adaptive")
    },
    **{("waut", c): "a WAUT in" for c in CORPUS_CONTROLLERS if c != "fixed"},
    ("no-internal-lanes", "adaptive"): "no signalized movement has a junction lane to count on",
}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    return corpus_matrix(tmp_path_factory.mktemp("corpus"), end_s=300)


def test_the_corpus_has_every_feature(matrix, tmp_path):
    from citybrain_traffic.network import read_network

    from network_variants import corpus_scenario

    assert {row["network"] for row in matrix} == set(CORPUS)
    text = corpus_scenario(tmp_path / "sv", "state-variety").net_file.read_text()
    assert '<tlLogic id="C" type="static" programID="0" offset="17">' in text
    states = "".join(re.findall(r'<phase [^>]*state="([^"]+)"', text))
    assert {"u", "o", "s"} <= set(states) and 'next="5"' in text
    joined = read_network(corpus_scenario(tmp_path / "j", "joined").net_file)
    assert len(joined.intersections) == 1  # one signal for several junctions


@pytest.mark.parametrize("network", CORPUS)
def test_every_controller_runs_or_refuses_with_one_line(matrix, network):
    for row in (r for r in matrix if r["network"] == network):
        key = (row["network"], row["controller"])
        if key in REFUSALS:
            assert row["outcome"] == "refused" and REFUSALS[key] in row["detail"], row
            assert "\n" not in row["detail"]
        else:
            assert row["outcome"] == "ok", row
            assert row["vehicles_arrived"] > 0, row
            assert row["safety_violations"] == 0, row


def test_simulate_shows_a_refusal_as_refused_and_runs_the_others(tmp_path):
    """On a NEMA network the controllers that build standard programs refuse in one line; the
    others run, the table says refused (not failed), and a refusal alone is no failure."""
    import pandas as pd

    from conftest import run_cli
    from network_variants import corpus_scenario

    sc = corpus_scenario(tmp_path / "nema", "nema", end_s=300)
    proc = run_cli(
        "simulate",
        "--net",
        sc.net_file,
        "--routes",
        ",".join(map(str, sc.route_files)),
        "--end",
        "300",
        "-c",
        "fixed,max-pressure,actuated-rebuilt",
        "--out",
        tmp_path / "out",
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "refused: nema max-pressure (preparation): max-pressure cannot run signal(s)"
        in " ".join(proc.stdout.split())
    )
    assert "failed" not in proc.stdout
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert failures[["controller", "refused"]].values.tolist() == [["max-pressure", True]]
    assert set(pd.read_csv(tmp_path / "out" / "summary.csv")["controller"]) == {
        "fixed",
        "actuated-rebuilt",
    }
