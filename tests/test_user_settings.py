"""The user's settings are theirs: their detectors write into each run's folder, a replaced
time-to-teleport is said, and --gui without a display fails at once with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from citybrain_traffic.scenario import load_scenario
from citybrain_traffic.sim.outputs import redirect_outputs
from citybrain_traffic.experiments.simulate import teleport_note

from conftest import run_cli
from network_variants import single_files

DETECTORS = """<additional>
    <inductionLoop id="south" lane="S_C_0" pos="-5" period="60" file="loops.xml"/>
    <inductionLoop id="north" lane="N_C_0" pos="-5" period="60" file="loops.xml"/>
    <edgeData id="edges" period="300" file="edges.xml"/>
</additional>
"""


def _user_config(folder: Path, *, teleport: str | None = None) -> Path:
    """A user's folder: a config naming the bundled `single` files, and an additional file of
    theirs."""
    folder.mkdir()
    net, routes = single_files()
    (folder / "detectors.add.xml").write_text(DETECTORS)
    processing = (
        f'<processing><time-to-teleport value="{teleport}"/></processing>' if teleport else ""
    )
    config = folder / "mine.sumocfg"
    config.write_text(
        f'<configuration><input><net-file value="{net}"/><route-files value="{routes}"/>'
        f'<additional-files value="detectors.add.xml"/></input>{processing}'
        '<time><begin value="0"/><end value="300"/></time></configuration>'
    )
    return config


def test_user_detector_outputs_land_in_each_runs_folder(tmp_path):
    """Every parallel run wrote the user's loops.xml beside their config: only the last survived."""
    config = _user_config(tmp_path / "user")
    before = sorted(p.name for p in config.parent.iterdir())
    out = tmp_path / "out"
    proc = run_cli("simulate", config, "-c", "fixed,max-pressure", "--jobs", "2", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        sorted(p.name for p in config.parent.iterdir()) == before
    )  # nothing new in the user's folder
    for controller in ("fixed", "max-pressure"):
        outputs = out / controller / "seed-1" / "sumo" / "user-outputs"
        loops = outputs.joinpath("loops.xml").read_text()
        assert (
            'id="south"' in loops and 'id="north"' in loops
        )  # both detectors share their file, as declared
        assert "<edge " in outputs.joinpath("edges.xml").read_text()
    assert pd.read_csv(out / "summary.csv")["vehicles_arrived"].gt(0).all()


def test_redirect_outputs_keeps_shared_files_shared_and_inputs_found(tmp_path):
    text = """<additional>
        <e1Detector id="a" lane="x_0" pos="1" period="60" file="counts.xml"/>
        <e1Detector id="b" lane="y_0" pos="1" period="60" file="counts.xml"/>
        <e2Detector id="c" lane="x_0" pos="1" length="20" period="60" file="sub/counts.xml"/>
        <laneData id="d" file="NUL"/>
        <timedEvent type="SaveTLSStates" source="C" dest="/abs/states.xml"/>
        <include href="more.add.xml"/>
    </additional>"""
    new, targets = redirect_outputs(
        text,
        source_dir=Path("/home/u/city"),
        folder=tmp_path,
        targets={Path("/elsewhere/states.xml"): tmp_path / "states.xml"},
    )
    assert targets[Path("/home/u/city/counts.xml")] == tmp_path / "counts.xml"
    assert (
        targets[Path("/home/u/city/sub/counts.xml")] == tmp_path / "2-counts.xml"
    )  # another file, same name
    assert (
        targets[Path("/abs/states.xml")] == tmp_path / "2-states.xml"
    )  # a name taken by another file's output
    assert new.count(f'file="{tmp_path / "counts.xml"}"') == 2
    assert 'file="NUL"' in new and 'href="/home/u/city/more.add.xml"' in new
    assert redirect_outputs(
        "<additional><tlLogic id='C'/></additional>", source_dir=Path("/x"), folder=tmp_path
    ) == (None, {})


def test_a_replaced_time_to_teleport_is_said(tmp_path):
    config = _user_config(tmp_path / "user", teleport="120")
    assert load_scenario(str(config)).time_to_teleport == 120
    proc = run_cli("simulate", config, "-c", "fixed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "mine.sumocfg sets time-to-teleport 120; the runs use -1 (teleporting off, so that a "
        "gridlock shows in the KPIs): --time-to-teleport 120 runs with the config's"
    ) in " ".join(proc.stdout.split())
    chosen = run_cli("simulate", config, "-c", "fixed", "--time-to-teleport", "120")
    assert chosen.returncode == 0 and "sets time-to-teleport" not in chosen.stdout


def test_teleporting_off_either_way_needs_no_note(tmp_path):
    scenario = load_scenario(str(_user_config(tmp_path / "user", teleport="0")))
    assert teleport_note(scenario, -1) is None
    assert "the runs use 300 s" in teleport_note(scenario, 300)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="sumo-gui needs an X display on Linux only"
)
@pytest.mark.parametrize(
    "display, reason",
    [
        (None, "error: --gui: sumo-gui cannot open a display: DISPLAY is not set"),
        (
            ":987",
            "error: sumo-gui could not start: FXApp::openDisplay: unable to open display :987",
        ),
    ],
    ids=["unset", "unusable"],
)
def test_gui_without_a_display_fails_at_once_with_the_reason(display, reason):
    """traci.start restarted the dying sumo-gui for 72 s, printing 65 "Retrying in 1 seconds"
    lines, and never said why."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"} | (
        {"DISPLAY": display} if display else {}
    )
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "citybrain_traffic.cli",
            "simulate",
            "single",
            "-c",
            "fixed",
            "--gui",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert time.monotonic() - started < 10
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith(
        reason
    ), proc.stderr
    assert "Retrying" not in proc.stdout + proc.stderr
