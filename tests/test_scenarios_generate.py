"""The committed SUMO scenarios are exactly what scenarios/generate.py produces.

Regenerates all scenarios into a temporary folder and compares every
generated file byte for byte with the committed copy under scenarios/sumo/.
A difference means either the generator was changed without regenerating
(run ``python scenarios/generate.py``) or generation is not reproducible
(an unseeded random choice, a timestamp or an absolute path in an output).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "scenarios" / "generate.py"
COMMITTED = REPO / "scenarios" / "sumo"
SCENARIOS = ("single", "corridor", "grid")
# Written by hand next to the generated files, so not part of the comparison.
HAND_WRITTEN = {"README.md"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenarios")
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("name", SCENARIOS)
def test_generated_files_match_committed(generated: Path, name: str) -> None:
    new, old = generated / name, COMMITTED / name
    expected = {f"{name}.net.xml", f"{name}.rou.xml", f"{name}.sumocfg", "scenario.json"}
    assert _files(new) == expected
    assert _files(old) == expected | HAND_WRITTEN
    for file in sorted(expected):
        assert (new / file).read_bytes() == (old / file).read_bytes(), (
            f"{name}/{file} differs from a fresh run of scenarios/generate.py"
        )


@pytest.mark.parametrize("name", SCENARIOS)
def test_outputs_carry_no_run_specific_data(generated: Path, name: str) -> None:
    for file in sorted((generated / name).iterdir()):
        text = file.read_text(encoding="utf-8")
        assert "generated on" not in text, file.name
        assert str(generated) not in text, file.name


@pytest.mark.parametrize("name", SCENARIOS)
def test_routes_are_explicit_and_metadata_consistent(generated: Path, name: str) -> None:
    routes = (generated / name / f"{name}.rou.xml").read_text(encoding="utf-8")
    # tlsCycleAdaptation.py (and anything reading <vehicle> routes) ignores trips/flows.
    assert "<trip" not in routes and "<flow" not in routes
    meta = json.loads((generated / name / "scenario.json").read_text(encoding="utf-8"))
    assert meta["name"] == name
    assert meta["generated_by"] == "scenarios/generate.py"
    assert meta["vehicles"] == routes.count("<vehicle ") > 0
