"""`adaptive`'s sequencing in real SUMO runs: the envelope on the states SUMO showed, its options.

The envelope (the program's greens only, the program's yellow and all-red between conflicting
links, minimum greens) is checked by ``safety`` on SUMO's own switch trace of every run
(``safety_violations`` in summary.csv); here the free and cyclic sequences, and netconvert's
rebuilt phases, must show none, and must really vary the sequence (else the check says little).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import run_cli


def _run(tmp_path, *options, scenario="single", seeds="1"):
    out = tmp_path / "run"
    done = run_cli(
        "simulate",
        scenario,
        "--controller",
        "adaptive",
        "--seeds",
        seeds,
        "--history-days",
        "0",
        *options,
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    return out, pd.read_csv(out / "summary.csv")


def _greens_served(out, seed=1):
    """The green states SUMO showed at the signal `C`, in order, from its switch trace."""
    trace = (out / "adaptive" / f"seed-{seed}" / "sumo" / "tls-states.xml").read_text()
    import xml.etree.ElementTree as ET

    states = [e.get("state") for e in ET.fromstring(trace) if e.get("id") == "C"]
    greens = [s for s in states if s and "y" not in s.lower() and set(s) != {"r"}]
    served = [g for i, g in enumerate(greens) if i == 0 or g != greens[i - 1]]
    return served


@pytest.mark.parametrize("sequence", ["free", "cyclic"])
def test_sequenced_runs_keep_the_envelope_and_vary_the_sequence(tmp_path, sequence):
    out, summary = _run(tmp_path, "--sequence", sequence)
    assert summary["safety_violations"].tolist() == [0]
    report = json.loads((out / "adaptive" / "seed-1" / "plans.jsonl").read_text().splitlines()[0])
    assert report  # plans were still made every interval
    served = _greens_served(out)
    program = [
        "GGGgrrrrGGGgrrrr",
        "rrrGrrrrrrrGrrrr",
        "rrrrGGGgrrrrGGGg",
        "rrrrrrrGrrrrrrrG",
    ]
    pairs = {(a, b) for a, b in zip(served, served[1:])}
    in_order = {(program[i], program[(i + 1) % 4]) for i in range(4)}
    # Skips happen in both modes; only free may go backwards.
    assert pairs - in_order, "the sequencer never left the program's plain cycle"
    backwards = {(program[(i + 1) % 4], program[i]) for i in range(4)}
    if sequence == "cyclic":
        assert not pairs & backwards
    delay = summary["mean_delay_s"].iloc[0]
    assert delay < 40.0  # fixed time: 53.7 s on this seed


#: The measurement reads the signals' states once a second: it may see a red up to that late.
MEASURE_S = 1.0


def _within_bound(out, seed=1):
    kpis = json.loads((out / "adaptive" / f"seed-{seed}" / "kpis.json").read_text())
    measured, bound = kpis["max_red_waiting_s"], kpis["max_red_bound_s"]
    assert measured and set(measured) == set(bound)
    for tls, seen in measured.items():
        assert seen <= bound[tls] + MEASURE_S, (tls, seen, bound[tls])
    return measured, bound


def test_no_waiting_vehicle_sees_more_than_the_maximum_red(tmp_path):
    # A bound far below what the demand would give: the sequencer must force the changes.
    out, summary = _run(tmp_path, "--max-red", "40")
    measured, bound = _within_bound(out)
    assert bound == {"C": 40.0} and summary["safety_violations"].tolist() == [0]
    sequencing = json.loads((out / "adaptive" / "seed-1" / "sequencing.json").read_text())
    assert sequencing["C"]["forced_by_max_red"] > 0  # the bound was binding, not idle
    assert summary["max_red_s"].iloc[0] == pytest.approx(max(measured.values()))


def test_a_maximum_red_no_signal_could_keep_is_refused(tmp_path):
    done = run_cli("simulate", "single", "-c", "adaptive", "--history-days", "0", "--max-red", "20")
    assert done.returncode != 0
    assert "--max-red 20 s cannot be kept: signal C needs 34 s" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_the_default_maximum_red_holds_on_a_real_city_network(tmp_path, resco):
    out, summary = _run(tmp_path, scenario=str(resco("ingolstadt7")))
    _within_bound(out)
    assert summary["safety_violations"].tolist() == [0]


def test_rebuilt_phases_run_netconverts_greens_safely(tmp_path):
    out, summary = _run(tmp_path, "--phases", "rebuilt")
    assert summary["safety_violations"].tolist() == [0]
    prepared = out / "prepared" / "adaptive"
    assert (prepared / "adaptive-rebuilt.net.xml").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--phases", "rebuilt", "--sequence", "plan"), "--sequence free or cyclic"),
        (("--phases", "rebuilt", "--fixed-plans"), "--sequence free or cyclic"),
        (("--sequence", "free", "--offsets", "held"), "--offsets applies to --sequence plan"),
        (("--max-red", "-5"), "--max-red"),
        (("--sequence", "plan", "--max-red", "90"), "--max-red applies"),
    ],
)
def test_sequencing_options_are_checked(tmp_path, options, message):
    done = run_cli("simulate", "single", "--controller", "adaptive", *options)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
