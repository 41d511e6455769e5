"""The closed loop: sense movement counts, forecast the next interval, optimize, switch plans.

Every control interval (15 minutes by default) the controller reads the stop-line count of
every movement for the interval that just ended, forecasts the next interval's counts with the
LightGBM forecaster (or, without one, from the counts seen so far), optimizes coordinated plans
for those flows with the OR-Tools optimizer, validates them, and hands each to the plan switcher,
which installs it at its signal's next cycle boundary with the offset kept (never cutting a
yellow, an all-red or a minimum green). Every plan applied is logged for audit.

Between re-plans a bounded real-time layer adapts the greens, as SCATS does around its plans:
each plan runs as SUMO's gap-actuated program (its detectors ~2 s of travel upstream of the stop
line, a green ends after a 3 s gap), each green between ``MIN_GREEN_SHARE`` of its planned
length (never below the minimum green) and ``MAX_GREEN_FACTOR`` times it (at least the signal's
own program's green), in the plan's phase order. Such a plan runs free of its offset (a gap-out
shortens the cycle), or, on a network of several signals, coordinated-actuated with its cycle and
offset held (``OFFSET_MODES``; the choice is simulated before the run). Until the first counts are
in, the plans come from the mean count of the first interval over the simulated history's days
(when the controller collected one), else the network's own program is the plan the layer
bounds (measured, seeds 1-5: ingolstadt7 48.5 -> 37.9 s, corridor 42.2 -> 41.5; cologne1,
cologne3 and grid4x4 up to 1 s worse; single, ingolstadt1 and grid within 0.3). With ``realtime=False``
(``--fixed-plans``) the plans run as fixed time, coordinated by their offsets.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..errors import InputError, NotApplicableError
from ..model_folder import METADATA_FILE, read_metadata
from ..plans import TimingPlan, write_tl_logics
from ..sim.detectors import movement_loops
from .base import Controller, SimSetup
from .signal import TrafficSignal
from .switching import OFFSET_MODES, PlanSwitcher, coordinated_phase

#: Length of a control interval (s) unless configured: the usual count and re-plan interval.
DEFAULT_INTERVAL_S = 900.0

#: Days of simulated history collected to train a forecaster when none is given.
HISTORY_DAYS = 14

#: Seed of the history collection (its days use seeds derived from it, never the evaluation's).
HISTORY_SEED = 7_919

#: Shortest green of the real-time layer, as a share of the planned green (never below the
#: signal's minimum green). SUMO's loop sits 2 s of travel upstream of the stop line and sees
#: neither the vehicles stored in front of it nor, when it lies in a gap of the standing queue,
#: anything until the start-up wave reaches it; with the signal's minimum alone (5 s) cologne1's
#: main greens ended at 5 s with 20-33 vehicles still halting (74.4 s delay, seeds 1-3, against
#: 33.7 s with this share). Measured, seeds 1-5, against the queue-clearance minimum of practice
#: for advance loops (3 s + 2 s per car stored between loop and stop line, 7.5 m each), capped at
#: half the plan: cologne1 33.3 / 34.2 s, cologne3 29.4 / 32.1, ingolstadt1 20.3 / 21.4,
#: ingolstadt7 48.5 / 41.5, corridor 42.2 / 41.5, single 27.8 / 27.6, grid 86.2 / 86.1, grid4x4
#: 69.2 / 69.2. Better on ingolstadt7, worse on cologne1, cologne3 and ingolstadt1 (a wash in
#: geometric mean), so the share stays; capped at the whole plan instead, grid4x4 got 73.6 s.
#: ingolstadt7's gain came from the first interval, when the layer bounded the network's own
#: 37-38 s greens; with the opening plan (below) the two floors agree within 0.4 s everywhere.
MIN_GREEN_SHARE = 0.5

#: Longest green of the real-time layer, as a multiple of the planned green: the signal-timing
#: practice for maximum greens (1.25-1.5 x the green the design volume needs, e.g. FHWA's Signal
#: Timing Manual), at the generous end because the plan is a 15-minute forecast.
MAX_GREEN_FACTOR = 1.5

# ``OFFSET_MODES`` (defined in ``switching``, light for the command line): how the real-time
# layer treats the plans' cycles and offsets (``--offsets``): ``free`` lets gap-outs shorten the
# cycle, ``held`` runs coordinated-actuated (``PlanSwitcher``: the longest
# green ends at its planned point in the cycle, the others gap out before their planned end),
# ``auto`` simulates both on seeds of their own and keeps the one with less delay. Measured,
# seeds 1-5, free / held (a first version of held): grid 85.9 / 81.3 s, corridor 41.5 / 58.0,
# cologne3 30.4 / 33.2, ingolstadt7 37.9 / 49.1, grid4x4 70.1 / 70.1: coordination pays on the
# dense grid, cycles shortened by gap-outs pay elsewhere, and neither can be read from the
# network alone. ``auto`` as shipped keeps held on grid only (82.7 s) and free elsewhere.

#: CP-SAT's budget for the offsets of every re-plan (its deterministic time units, about seconds
#: of one core): less than the offline optimizer's, as the solve counts against the control time.
#: Measured on grid (offsets held, seeds 1-5), budgets 0.5 / 0.2 / 0.1 / 0.05: mean delay 83.1 /
#: 83.2 / 83.2 / 83.2 s, control time per wall time 0.181 / 0.127 / 0.098 / 0.086.
OFFSET_SEARCH_BUDGET = 0.1

#: The loops count in the last seconds of an interval too; the controller acts this long after
#: the boundary so that SUMO has closed the interval.
_READ_DELAY_S = 1.0


def _forecaster_fingerprint() -> str:
    """A short hash of the forecasting code (features, models, count handling): a model trained by
    other code may not load, or may mean something else.
    """
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for part in ("forecast/features.py", "forecast/models.py", "counts.py", "model_folder.py"):
        digest.update((package / part).read_bytes())
    return digest.hexdigest()[:12]


def cache_dir() -> Path:
    """Where trained forecasters for scenarios are kept between runs."""
    base = (
        os.environ.get("CTRAFFIC_CACHE")
        or os.environ.get("XDG_CACHE_HOME")
        or str(Path.home() / ".cache")
    )
    return Path(base) / "citybrain-traffic" / "adaptive"


class AdaptiveController(Controller):
    """Sense -> forecast -> optimize -> act, every control interval (see the module docstring).

    Configure with :meth:`configure` (``--model``, ``--interval`` on the command line) before
    ``prepare``. Without a model, ``prepare`` trains one on a simulated history of the scenario
    (``HISTORY_DAYS`` days, cached in :func:`cache_dir`); with ``history_days=0`` the controller
    forecasts each interval from the counts it has seen so far (their mean over the last hour).
    """

    replaces_programs = True
    name = "adaptive"
    description = "closed loop: counts -> LightGBM forecast -> OR-Tools plans every 15 min"
    needs_signals = True

    def __init__(self) -> None:
        self.model_dir: Path | None = None
        self.model_metadata: dict = {}  # of --model's folder (``model_folder.read_metadata``)
        self.interval_s = DEFAULT_INTERVAL_S
        self.history_days = HISTORY_DAYS
        # Choices simulated before the run on seeds of their own (the offsets mode; the cycle floor
        # of fixed-time plans); off, the defaults apply (offsets free). For experiments.
        self.check_in_sumo = True
        self.realtime = True
        self.offsets = "auto"

    def configure(
        self,
        *,
        model: str | Path | None = None,
        interval_min: float | None = None,
        history_days: int | None = None,
        check_in_sumo: bool | None = None,
        realtime: bool | None = None,
        offsets: str | None = None,
    ) -> AdaptiveController:
        if model is not None:
            try:
                self.model_metadata = read_metadata(model)
            except InputError as exc:
                raise InputError(f"--model {model}: {exc}") from None
            self.model_dir = Path(model)
        if interval_min is not None:
            if not 1 <= interval_min <= 120:
                raise InputError(f"--interval {interval_min:g} min: expected 1 to 120 minutes")
            self.interval_s = float(interval_min) * 60.0
        if history_days is not None:
            self.history_days = int(history_days)
        if check_in_sumo is not None:
            self.check_in_sumo = bool(check_in_sumo)
        if realtime is not None:
            self.realtime = bool(realtime)
        if offsets is not None:
            if offsets not in OFFSET_MODES:
                raise InputError(
                    f"--offsets {offsets!r}: expected one of {', '.join(OFFSET_MODES)}"
                )
            self.offsets = offsets
        self._check_interval()
        return self

    def _check_interval(self) -> None:
        """The forecaster must forecast one interval ahead: fail now, not after collecting a history
        (or, with ``--model``, by falling back to recent means at every re-plan).
        """
        minutes = self.interval_s / 60.0
        if self.model_dir is not None:
            meta = self.model_metadata
            horizons, bin_min = (
                meta.get("horizons_min", []),
                float(meta.get("bin_minutes", minutes)),
            )
            if abs(bin_min - minutes) > 1e-9:
                raise InputError(
                    f"--model {self.model_dir} was trained on {bin_min:g}-min counts, but the controller counts "
                    f"per control interval ({minutes:g} min): set --interval {bin_min:g}, or train on "
                    f"{minutes:g}-min counts (ctraffic collect --bin {minutes:g})"
                )
            if not any(abs(float(h) - minutes) < 1e-9 for h in horizons):
                raise InputError(
                    f"--model {self.model_dir} forecasts {', '.join(f'{float(h):g}' for h in horizons)} min ahead, "
                    f"but the control interval is {minutes:g} min: train it with --horizons {minutes:g}, or set "
                    "--interval to one of its horizons"
                )
        elif self.history_days > 0 and (minutes != int(minutes) or 1440 % int(minutes)):
            raise InputError(
                f"--interval {minutes:g} min: the forecaster trains on counts in bins of the interval, which must be "
                "whole minutes that divide a day (e.g. 5, 10, 15, 20, 30 or 60); or forecast without a history "
                "(--history-days 0)"
            )

    # -- preparation (main process, once per scenario) -------------------------------------------
    def prepare(self, scenario, network, workdir: Path, *, demand_scale: float) -> SimSetup:
        loops = movement_loops(network)
        if not loops:
            # It counts each movement on the junction lane only that movement uses; a network built
            # without internal lanes has none.
            raise NotApplicableError(
                f"{scenario.name}: no signalized movement has a junction lane to count on (the network was built "
                "without internal lanes); adaptive counts movements there"
            )
        loops = [
            replace(loop, id=loop.id.replace("ctraffic_mv_", "ctraffic_ad_")) for loop in loops
        ]
        detectors = workdir / "adaptive-loops.add.xml"
        root = ET.Element("additional")
        for loop in loops:
            ET.SubElement(
                root,
                "inductionLoop",
                id=loop.id,
                lane=loop.lane,
                pos="0",
                period=f"{self.interval_s:g}",
                begin=f"{scenario.begin:g}",
                file="/dev/null",
            )
        ET.indent(root)
        detectors.write_text(ET.tostring(root, encoding="unicode") + "\n")

        model, history, note = self._model(scenario, network, workdir, demand_scale=demand_scale)
        opening = [] if history is None else _opening_counts(history, scenario.begin)
        if opening:
            note += "; the first interval's plans come from the history's mean of that time of day"
        blind: dict[str, set[int]] = {}
        if self.realtime:
            # SUMO gap-controls a green only through detectors on lanes whose every link it serves;
            # a green it has none for would always run to its maximum, so it keeps the plan's length.
            from .actuated import phases_without_detector

            probe = write_tl_logics(
                workdir / "adaptive-probe.add.xml",
                [
                    _with_gap_control(
                        TimingPlan(
                            tls_id=tls, program_id="ctraffic-adaptive-probe", phases=i.phases
                        ),
                        i.phases,
                    )
                    for tls, i in network.intersections.items()
                ],
            )
            blind = phases_without_detector(scenario, probe, workdir)
        state = {
            "blind": {tls: sorted(indices) for tls, indices in blind.items()},
            "loops": [[loop.id, loop.tls_id, loop.movement] for loop in loops],
            "interval_s": self.interval_s,
            "begin_s": scenario.begin,
            "model_dir": None if model is None else str(model),
            "net_file": str(network.path),
            "cycle_floor_s": None,
            "realtime": self.realtime,
            "hold_offsets": False,
            "own_program": False,
            "opening": opening,
        }

        def setup(floor, hold=False, own_program=False):
            data = json.dumps(
                {**state, "cycle_floor_s": floor, "hold_offsets": hold, "own_program": own_program}
            )
            return SimSetup(additional_files=(detectors,), data=(("adaptive", data),))

        checked = ""
        if self.realtime and len(network.intersections) > 1 and self.offsets != "free":
            if self.offsets == "held":
                state["hold_offsets"] = True
            elif self.check_in_sumo:
                # Which pays more, coordination or cycles that follow the gap-outs, depends on the
                # network and its demand (see OFFSET_MODES): simulated, as the cycle floor is below.
                from .optimized import CHECK_SEEDS, OWN_PROGRAM, check_setups

                delays = check_setups(
                    scenario,
                    network,
                    self.name,
                    {False: setup(None), True: setup(None, True)},
                    workdir / "check-offsets",
                    demand_scale=demand_scale,
                )
                state["hold_offsets"] = delays[True] < delays[False]
                state["own_program"] = delays[OWN_PROGRAM] < min(delays[False], delays[True])
                checked = (
                    f"; offsets checked in SUMO ({len(CHECK_SEEDS)} seeds of their own, mean delay): free "
                    f"{delays[False]:.1f} s, held {delays[True]:.1f} s, the network's own program "
                    f"{delays[OWN_PROGRAM]:.1f} s"
                )
        if not self.realtime:
            note += "; plans run as fixed time (coordinated offsets)"
        elif state["hold_offsets"]:
            note += (
                "; real-time layer: coordinated-actuated, cycles and offsets held (each signal's longest green ends at "
                f"its planned point in the cycle; the other greens gap out from {MIN_GREEN_SHARE:g}x their planned length, "
                "at least the minimum green, up to it, and the time they free goes to the longest green)"
            )
        else:
            note += (
                f"; real-time layer: gap-actuated greens from {MIN_GREEN_SHARE:g}x (at least the minimum green) to "
                f"{MAX_GREEN_FACTOR:g}x the planned green (at least the signal's own green), cycles free"
            )
        note += checked
        if self.realtime and self.offsets == "held" and len(network.intersections) == 1:
            note += "; --offsets held: one signal, no offsets to hold"
        if blind:
            note += f"; {sum(map(len, blind.values()))} green phases without a SUMO detector run their planned length"

        if self.check_in_sumo and not self.realtime:
            # As the optimized controller does: the delay model cannot see shared-lane blocking
            # or spillback, so the cycle floor of fixed-time plans is chosen by simulating the loop
            # on seeds of its own. Gap-actuated greens make the cycle follow the traffic anyway
            # (measured on corridor: the floors' check delays 43.6-44.1 s, within the seeds' noise).
            from .optimized import CHECKED_CYCLE_FLOORS_S, OWN_PROGRAM, check_setups, choose_floor

            delays = check_setups(
                scenario,
                network,
                self.name,
                {floor: setup(floor) for floor in (None, *CHECKED_CYCLE_FLOORS_S)},
                workdir / "check",
                demand_scale=demand_scale,
            )
            chosen, checked = choose_floor(delays)
            state["own_program"] = chosen == OWN_PROGRAM
            state["cycle_floor_s"] = None if state["own_program"] else chosen
            note += f"; {checked}"
        if state.get("own_program"):
            note += "; the network's own program did better on the check seeds than every plan tried: it runs unchanged"
        (workdir / "adaptive.json").write_text(json.dumps(state, indent=1))
        return replace(
            setup(state["cycle_floor_s"], state["hold_offsets"], state.get("own_program", False)),
            notes=(note,),
        )

    def _model(
        self, scenario, network, workdir: Path, *, demand_scale: float
    ) -> tuple[Path | None, Path | None, str]:
        """The forecaster's folder, the simulated history it was trained on (None when not ours) and a note."""
        interval = f"every {self.interval_s / 60:g} min"
        if self.model_dir is not None:
            return self.model_dir, None, f"adaptive: {interval}, forecaster {self.model_dir}"
        if self.history_days <= 0:
            return (
                None,
                None,
                f"adaptive: {interval}, no forecaster: forecasting from the counts seen so far (mean of the last hour)",
            )
        key = hashlib.sha256()
        for path in [scenario.net_file, *scenario.route_files, *scenario.additional_files]:
            key.update(Path(path).read_bytes())
        key.update(
            f"{scenario.begin}|{scenario.end}|{demand_scale}|{self.history_days}|{HISTORY_SEED}|{self.interval_s}".encode()
        )
        # The history depends on the scenario only; the model also on the forecasting code, so a
        # changed forecaster retrains on the cached history instead of loading a stale model.
        folder = cache_dir() / f"{scenario.name}-{key.hexdigest()[:16]}"
        history = folder / "history.csv.gz"
        model = folder / f"model-{_forecaster_fingerprint()}"
        if (model / METADATA_FILE).is_file():
            return (
                model,
                history,
                f"adaptive: {interval}, forecaster trained on {self.history_days} simulated days (cached in {model})",
            )
        collected = ""
        if not history.is_file():
            from ..collect import collect_history

            counts, _days = collect_history(
                scenario,
                network,
                days=self.history_days,
                workdir=workdir / "history",
                seed=HISTORY_SEED,
                bin_s=self.interval_s,
                jobs=os.cpu_count() or 1,
            )
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / "history.partial.csv.gz"
            counts.to_csv(partial, index=False)
            partial.replace(history)
            collected = f" ({len(counts):,} counts, collected now)"
        tmp = folder / f"{model.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        # Trained in a process of its own: LightGBM's OpenMP threads would make this process
        # unsafe to fork the simulation workers from.
        minutes = int(round(self.interval_s / 60))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "citybrain_traffic.cli",
                "forecast",
                "train",
                str(history),
                "--out",
                str(tmp),
                "--horizons",
                str(minutes),
                "--bin",
                str(minutes),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise InputError(
                f"training the adaptive controller's forecaster failed: {done.stderr.strip()[-500:]}"
            )
        if model.exists():
            shutil.rmtree(tmp)
        else:
            tmp.replace(model)
        return (
            model,
            history,
            (
                f"adaptive: {interval}, forecaster trained now on {self.history_days} simulated days under the "
                f"network's programs{collected}; cached in {model}"
            ),
        )

    # -- the run (worker process) ----------------------------------------------------------------
    def start(self, signals: dict[str, TrafficSignal], now: float) -> float | None:
        if not signals:
            return None
        from ..forecast.models import Forecaster
        from ..network import read_network

        state = json.loads(dict(self.setup.data)["adaptive"])
        if state.get("own_program"):
            return None  # the check found nothing better than the network's own program
        self.api = next(iter(signals.values())).api
        self.network = read_network(Path(state["net_file"]))
        self.loops = state["loops"]
        self.movement_lanes: dict[tuple[str, str], list[str]] = {}
        self.lane_movements: dict[str, set[tuple[str, str]]] = {}
        for intersection in self.network.intersections.values():
            for link in intersection.links:
                key = (intersection.tls_id, link.movement)
                lanes = self.movement_lanes.setdefault(key, [])
                if link.in_lane not in lanes:
                    lanes.append(link.in_lane)
                self.lane_movements.setdefault(link.in_lane, set()).add(key)
        # The queue of a stop-line lane is measured over the lanes feeding it up to the approach
        # distance (a lane fed into several stop-line lanes is split evenly among them).
        self.queue_lanes: dict[str, list[tuple[str, float]]] = {}
        for intersection in self.network.intersections.values():
            upstream = {
                link.in_lane: intersection.upstream_lanes.get(link.in_lane, (link.in_lane,))
                for link in intersection.links
            }
            feeds: dict[str, int] = {}
            for ups in upstream.values():
                for up in ups:
                    feeds[up] = feeds.get(up, 0) + 1
            for lane, ups in upstream.items():
                self.queue_lanes[lane] = [(up, 1.0 / feeds[up]) for up in ups]
        self.queue_lane_ids = sorted({up for ups in self.queue_lanes.values() for up, _ in ups})
        self.interval_s = float(state["interval_s"])
        self.begin_s = float(state["begin_s"])
        self.model = (
            None if state["model_dir"] is None else Forecaster.load(Path(state["model_dir"]))
        )
        self.cycle_floor_s = state.get("cycle_floor_s")
        self.realtime = bool(state.get("realtime", True))
        self.hold_offsets = self.realtime and bool(state.get("hold_offsets", False))
        self.blind = {tls: frozenset(indices) for tls, indices in state.get("blind", {}).items()}
        self.switcher = PlanSwitcher.for_signals(signals)
        self.history: list[tuple] = []
        self.plans_log: list[dict] = []
        opening = state.get("opening")
        if opening:
            # Until the first counts are in, plan from the history's mean of this interval of the day.
            counts = pd.DataFrame(opening, columns=["intersection", "movement", "count"]).assign(
                queued=0.0
            )
            flows = counts.assign(flow_veh_h=counts["count"] * 3600.0 / self.interval_s)
            self._plan(flows, now, self.begin_s, "historical profile of the first interval")
        elif self.realtime:
            # Until the first counts are in, the network's own program is the plan the layer bounds.
            for tls, intersection in self.network.intersections.items():
                if tls in signals:
                    own = TimingPlan(
                        tls_id=tls, program_id="ctraffic-adaptive-own", phases=intersection.phases
                    )
                    self.switcher.submit(self._bounded(own), now)
        self.next_plan = self.begin_s + self.interval_s + _READ_DELAY_S
        while self.next_plan <= now:
            self.next_plan += self.interval_s
        wake = self.switcher.step(now)
        return self.next_plan if wake is None else min(wake, self.next_plan)

    def step(self, now: float) -> float | None:
        if now >= self.next_plan - 1e-9:
            self._replan(now)
            self.next_plan += self.interval_s
        wake = self.switcher.step(now)
        return min(w for w in (wake, self.next_plan) if w is not None)

    def _replan(self, now: float) -> None:
        from ..sim.runner import SIM_DAY_ZERO

        boundary = now - _READ_DELAY_S
        started = SIM_DAY_ZERO + pd.Timedelta(seconds=boundary - self.interval_s)
        # This interval's count per movement (a movement with several junction lanes has a loop on each).
        last: dict[tuple[str, str], int] = {}
        for loop_id, tls, movement in self.loops:
            count = int(self.api.inductionloop.getLastIntervalVehicleNumber(loop_id))
            last[tls, movement] = last.get((tls, movement), 0) + count
        self.history += [(started, tls, movement, count) for (tls, movement), count in last.items()]
        counts = pd.DataFrame(
            self.history, columns=["timestamp", "intersection", "movement", "count"]
        )
        origin = SIM_DAY_ZERO + pd.Timedelta(seconds=boundary)
        forecast, source = self._forecast(counts, origin)
        # Stop-line counts are what the signal served, not what arrived: vehicles still queued at
        # the boundary must be served in the next interval on top of the forecast arrivals. Each
        # lane's halting vehicles are shared among its movements by their counts.
        halting = {
            lane: self.api.lane.getLastStepHaltingNumber(lane) for lane in self.queue_lane_ids
        }
        waiting = []
        for (tls, movement), lanes in self.movement_lanes.items():
            queued = 0.0
            for lane in lanes:
                served = sum(last.get((t, m), 0) for t, m in self.lane_movements[lane])
                share = (
                    last.get((tls, movement), 0) / served
                    if served
                    else 1.0 / len(self.lane_movements[lane])
                )
                queued += share * sum(w * halting[up] for up, w in self.queue_lanes[lane])
            waiting.append((tls, movement, queued))
        waiting = pd.DataFrame(waiting, columns=["intersection", "movement", "queued"])
        forecast = forecast.merge(waiting, on=["intersection", "movement"], how="left").fillna(
            {"queued": 0.0}
        )
        flows = forecast.assign(
            flow_veh_h=(forecast["count"] + forecast["queued"]) * 3600.0 / self.interval_s
        )
        self._plan(flows, now, boundary, source)

    def _plan(self, flows: pd.DataFrame, now: float, boundary: float, source: str) -> None:
        """Optimize, bound, validate and submit the plans for ``flows`` (veh/h and queued vehicles
        per movement) for the interval from ``boundary``, and log them.
        """
        from ..optimize import optimize_network, to_plans
        from ..plans import plan_to_dict, validate_all

        floor = {} if self.cycle_floor_s is None else {"cycle_min_s": float(self.cycle_floor_s)}
        timings = optimize_network(
            self.network,
            flows[["intersection", "movement", "flow_veh_h"]],
            tls_ids=list(self.network.intersections),
            # One common cycle either way (measured on corridor: 42.6 s delay against 44.8 s with each
            # signal at its own cycle); offsets only for fixed-time plans, actuated ones run free.
            coordinated=len(self.network.intersections) > 1,
            offsets=self.hold_offsets or not self.realtime,
            search_budget=OFFSET_SEARCH_BUDGET,
            **floor,
        )
        plans = to_plans(timings, self.network, program_id=f"ctraffic-adaptive-{int(boundary)}")
        if self.realtime:
            plans = [self._bounded(plan, hold=self.hold_offsets) for plan in plans]
        plans = validate_all(plans, self.network)
        for plan in plans:
            self.switcher.submit(plan, now, hold_offset=self.hold_offsets)
            self.plans_log.append(
                {
                    "decided_s": now,
                    "offsets": "held"
                    if self.hold_offsets
                    else "free"
                    if self.realtime
                    else "fixed time",
                    "for_interval_s": [boundary, boundary + self.interval_s],
                    "forecast": source,
                    "forecast_veh_h": round(
                        float(flows[flows["intersection"] == plan.tls_id]["flow_veh_h"].sum()), 1
                    ),
                    "queued_veh": round(
                        float(flows[flows["intersection"] == plan.tls_id]["queued"].sum()), 1
                    ),
                    **plan_to_dict(plan),
                }
            )

    def _bounded(self, plan: TimingPlan, *, hold: bool = False) -> TimingPlan:
        """``plan`` with the real-time layer's green range, for its signal (``_with_gap_control``)."""
        reference = self.network.intersections[plan.tls_id].phases
        return _with_gap_control(
            plan, reference, self.blind.get(plan.tls_id, frozenset()), hold=hold
        )

    def _forecast(self, counts: pd.DataFrame, origin: pd.Timestamp) -> tuple[pd.DataFrame, str]:
        """Expected count of every movement in the interval starting at ``origin``."""
        last_hour = counts[counts["timestamp"] >= origin - pd.Timedelta(hours=1)]
        profile = last_hour.groupby(["intersection", "movement"], as_index=False)["count"].mean()
        if self.model is None:
            return profile, "recent mean"
        try:
            predicted = self.model.predict(
                counts, at=origin, horizons=[int(round(self.interval_s / 60))]
            )
        except Exception as exc:  # a forecast failure must never stop the signals: fall back
            return profile, f"recent mean (forecaster failed: {exc})"
        predicted = predicted.dropna(subset=["p50"])[["intersection", "movement", "p50"]].rename(
            columns={"p50": "count"}
        )
        merged = profile.merge(
            predicted, on=["intersection", "movement"], how="left", suffixes=("_recent", "")
        )
        merged["count"] = merged["count"].fillna(merged["count_recent"])
        return merged[["intersection", "movement", "count"]], "lightgbm"

    def report(self) -> dict:
        return {
            "plans": getattr(self, "plans_log", []),
            "switches": getattr(getattr(self, "switcher", None), "log", []),
        }


def _opening_counts(history: Path, begin_s: float) -> list[list]:
    """Mean count per movement in the first interval of the history's days of the run's day type.

    The history (``collect``) bins each simulated day from the scenario's begin; the run itself is
    simulated on ``SIM_DAY_ZERO``, so its weekday or weekend days are the ones that describe it.
    """
    from ..sim.runner import SIM_DAY_ZERO

    counts = pd.read_csv(history, parse_dates=["timestamp"])
    offset = pd.Timedelta(seconds=begin_s % 86_400)
    weekend = SIM_DAY_ZERO.day_of_week >= 5
    stamps = counts["timestamp"]
    first = counts[
        (stamps - stamps.dt.normalize() == offset) & ((stamps.dt.day_of_week >= 5) == weekend)
    ]
    if first.empty:
        return []
    days = first["timestamp"].nunique()
    total = first.groupby(["intersection", "movement"], as_index=False)["count"].sum()
    return [[str(i), str(m), float(c) / days] for i, m, c in total.itertuples(index=False)]


def _with_gap_control(
    plan: TimingPlan, reference, blind: frozenset[int] = frozenset(), *, hold: bool = False
) -> TimingPlan:
    """``plan`` as a SUMO gap-actuated program bounded by the plan (the real-time layer).

    Each green keeps the plan's length as its nominal duration and may end from
    ``MIN_GREEN_SHARE`` of it on (never below the minimum green of ``reference``, the network's
    phases) once SUMO's detectors see a gap, or run on while vehicles keep coming up to
    ``MAX_GREEN_FACTOR`` times the planned green, and at least as long as the signal's own
    program gives it: a plan made from served counts can
    under-rate a starved movement (measured at single x1.6 demand, seeds 1-3: throughput 4,177
    -> 4,215 veh/h; ingolstadt1 23.5 -> 21.4 s delay). The greens listed in ``blind`` (indices
    SUMO places no controlling detector for) keep their planned length. Phase order, states and
    change intervals are the plan's (``validate`` checks them again).

    With ``hold`` (coordinated-actuated, the cycle held at the plan's): a green other than the
    :func:`coordinated_phase` ends by its planned length (its force-off); the coordinated phase,
    timed by the switcher, ranges from its floor up to its planned length plus all the time the
    others may free.
    """
    held = coordinated_phase(plan) if hold else None

    def floor(phase, ref):
        return max(ref.min_green, MIN_GREEN_SHARE * phase.duration)

    freed = sum(
        phase.duration - floor(phase, ref)
        for i, (phase, ref) in enumerate(zip(plan.phases, reference))
        if phase.is_green and i != held and i not in blind
    )
    phases = []
    for i, (phase, ref) in enumerate(zip(plan.phases, reference)):
        if not phase.is_green:
            phases.append(phase)
        elif i == held:
            phases.append(replace(phase, min_dur=floor(phase, ref), max_dur=phase.duration + freed))
        elif i in blind:
            phases.append(replace(phase, min_dur=phase.duration, max_dur=phase.duration))
        elif hold:
            phases.append(replace(phase, min_dur=floor(phase, ref), max_dur=phase.duration))
        else:
            phases.append(
                replace(
                    phase,
                    min_dur=floor(phase, ref),
                    max_dur=max(MAX_GREEN_FACTOR * phase.duration, ref.duration),
                )
            )
    return replace(plan, phases=tuple(phases), kind="actuated")
