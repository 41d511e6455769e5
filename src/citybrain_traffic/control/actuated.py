"""SUMO's gap-actuated control: on the network's phases, or as netconvert rebuilds it."""

from __future__ import annotations

import re

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Self

from ..plans import TimingPlan, validate, write_tl_logics
from ..sim.session import run_sumo_tool, sumo_binary
from .base import Controller, SimSetup

if TYPE_CHECKING:
    from ..network import Network
    from ..scenario import Scenario

#: netconvert's default maximum for actuated greens (``--tls.max-dur``), in s; its minimum
#: (``--tls.min-dur`` 5 s) is the network model's default minimum green. Used where the network
#: gives no range, so both actuated baselines extend greens alike.
SUMO_ACTUATED_MAX_S = 50.0


class ActuatedController(Controller):
    """The network's phase structure run by SUMO's gap-based actuated logic.

    Greens keep the network's minDur/maxDur where it sets a range; elsewhere they get netconvert's
    defaults (5-50 s), never a maximum below the fixed program's own green. Change intervals are
    unchanged. SUMO places the detectors and extends a green while vehicles keep arriving.
    """

    replaces_programs = True
    name = "actuated"
    description = (
        "SUMO gap-actuated control on the network's own phases "
        "(green 5-50 s where the network sets no range)"
    )

    def fit(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Self:
        """Write the programs the runs load; return self."""
        programs = []
        for intersection in network.intersections.values():
            phases = tuple(_actuated_phase(p) if p.is_green else p for p in intersection.phases)
            program = TimingPlan(
                tls_id=intersection.tls_id,
                program_id="ctraffic-actuated",
                phases=phases,
                kind="actuated",
            )
            programs.append(validate(program, intersection.phases))
        path = write_tl_logics(workdir / "actuated.add.xml", programs)
        # SUMO gap-controls a phase only through detectors on lanes whose every link is green in it;
        # a phase it cannot see would run long, so it keeps the network's fixed duration instead.
        blind = phases_without_detector(scenario, path, workdir)
        if blind:
            programs = [
                replace(
                    program,
                    phases=tuple(
                        replace(ph, min_dur=ph.duration, max_dur=ph.duration)
                        if i in blind.get(program.tls_id, ())
                        else ph
                        for i, ph in enumerate(program.phases)
                    ),
                )
                for program in programs
            ]
            path = write_tl_logics(path, programs)
        n_blind = sum(len(v) for v in blind.values())
        notes = (
            (f"actuated: {n_blind} green phases without a SUMO detector keep their fixed duration",)
            if n_blind
            else ()
        )
        self.setup_ = SimSetup(additional_files=(path,), notes=notes)
        return self


def _actuated_phase(phase):
    if phase.min_dur < phase.max_dur:
        return phase
    return replace(phase, min_dur=phase.min_green, max_dur=max(SUMO_ACTUATED_MAX_S, phase.duration))


def phases_without_detector(scenario, program_file: Path, workdir: Path) -> dict[str, set[int]]:
    """Ask SUMO which actuated phases it finds no controlling detector for (from its warnings)."""
    log = workdir / "actuated-probe.log"
    run_sumo_tool(
        [
            sumo_binary("sumo"),
            "--net-file",
            str(scenario.net_file.resolve()),
            "--additional-files",
            str(program_file.resolve()),
            "--begin",
            "0",
            "--end",
            "1",
            "--no-step-log",
            "--duration-log.disable",
            "--log",
            str(log),
        ],
        cwd=workdir,
        what="placing the actuated detectors",
    )
    pattern = re.compile(
        r"At actuated tlLogic '(.+)', actuated phase (\d+) has no controlling detector"
    )
    blind: dict[str, set[int]] = {}
    for match in pattern.finditer(log.read_text(errors="replace")):
        blind.setdefault(match.group(1), set()).add(int(match.group(2)))
    return blind


class RebuiltActuatedController(Controller):
    """SUMO's own actuated programs, as ``netconvert --tls.rebuild`` makes them (actuated type).

    The phases are netconvert's, not the network's: this is what SUMO offers out of the box.
    """

    replaces_programs = True
    designs_phases = True
    name = "actuated-rebuilt"
    description = "netconvert --tls.rebuild --tls.default-type actuated (SUMO's own phases)"

    def fit(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Self:
        """Write the programs the runs load; return self."""
        out = rebuild_signals(scenario, workdir / "actuated-rebuilt.net.xml", "actuated")
        self.setup_ = SimSetup(net_file=out)
        return self


def rebuild_signals(scenario: Scenario, out: Path, default_type: str) -> Path:
    """Write ``scenario``'s net with every signal's phases as netconvert designs them; return it.

    ``netconvert --tls.rebuild`` derives the phases from the junctions' conflicts (the link
    indices stay the network's); ``default_type`` is the programs' type (``static``,
    ``actuated``).
    """
    run_sumo_tool(
        [
            sumo_binary("netconvert"),
            "--sumo-net-file",
            str(scenario.net_file.resolve()),
            "--tls.rebuild",
            "--tls.default-type",
            default_type,
            "--output-file",
            str(out),
            "--no-warnings",
        ],
        cwd=out.parent,
        what=f"rebuilding the network's signals ({default_type}, netconvert)",
    )
    return out
