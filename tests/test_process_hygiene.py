"""Stopping a command (SIGTERM, Ctrl-C) ends its workers at once and leaves --out as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from citybrain_traffic.control.base import Controller

from conftest import run_cli

#: Two SUMO runs of about 3 s each: long enough to be stopped while both workers simulate.
SIMULATE = (
    "simulate",
    "single",
    "-c",
    "fixed,max-pressure",
    "--jobs",
    "2",
    "--demand-scale",
    "1.5",
    "--end",
    "1800",
)


#: Linux lists a process's children in /proc (CONFIG_PROC_CHILDREN); elsewhere these tests skip.
needs_proc_children = pytest.mark.skipif(
    not Path(f"/proc/self/task/{os.getpid()}/children").exists(),
    reason="reads the worker processes from /proc (Linux)",
)


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return found


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie has finished (its parent has not collected it yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _start_and_stop(
    out: Path, how: signal.Signals
) -> tuple[subprocess.CompletedProcess, set[int], float]:
    """Start ``ctraffic simulate`` with two workers, send ``how`` once both run; the result, the
    workers' pids and the seconds from the signal to the command's exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "citybrain_traffic.cli", *SIMULATE, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(proc.pid)) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(how)
        stdout, stderr = proc.communicate(timeout=20)
        return (
            subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr),
            workers,
            time.monotonic() - sent,
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_proc_children
@pytest.mark.parametrize(
    "how, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_sigterm_leaves_no_worker_behind(tmp_path, how, code):
    """``kill PID`` used to orphan the workers (they simulated on, then hung); it now ends
    like Ctrl-C."""
    done, workers, seconds = _start_and_stop(tmp_path / "out", how)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert seconds < 5
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if _alive(pid)], "a worker survived its command"


@needs_proc_children
def test_interrupted_run_leaves_out_free(tmp_path):
    """A stopped run leaves no partial --out (which refused the same command as "not empty") and
    keeps an empty folder the user made; the same command then runs to the end."""
    out = tmp_path / "results"
    out.mkdir()
    done, _, _ = _start_and_stop(out, signal.SIGTERM)
    assert done.returncode == 143, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert not any(out.iterdir())
    again = run_cli(*SIMULATE, "--out", out)
    assert again.returncode == 0, again.stderr
    assert (out / "summary.csv").is_file() and (out / "fixed" / "seed-1" / "kpis.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_staged_out_dir_renames_only_at_the_end(tmp_path):
    """Every command with an --out folder writes through StagedOutDir: a failure removes only
    its partial folder; success replaces an empty --out; files put into --out meanwhile stay."""
    from citybrain_traffic.cli._common import StagedOutDir
    from citybrain_traffic.errors import InputError

    out = tmp_path / "out"
    with pytest.raises(RuntimeError), StagedOutDir(out) as partial:
        (partial / "half.csv").write_text("1")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []

    out.mkdir()
    with StagedOutDir(out) as partial:
        assert partial.parent == tmp_path and partial.name.startswith(".out.partial-")
        (partial / "done.csv").write_text("1")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "done.csv").read_text() == "1"

    later = tmp_path / "later"
    staged = StagedOutDir(later)
    with pytest.raises(InputError, match="changed while the command ran"):
        with staged as partial:
            (partial / "done.csv").write_text("2")
            later.mkdir()
            (later / "mine.txt").write_text("precious")
    assert (later / "mine.txt").read_text() == "precious" and (
        staged.partial / "done.csv"
    ).read_text() == "2"


class _Broken(Controller):
    """A plug-in controller with a bug."""

    name = "broken"

    def start(self, context, now):
        raise ZeroDivisionError("boom")


def test_internal_error_keeps_its_traceback_outside_the_run(tmp_path):
    """The traceback was written into the run's folder, which a failed command removes (its
    temporary or partial --out folder): the message pointed at a file that was gone."""
    from citybrain_traffic.errors import SimulationError
    from citybrain_traffic.harness.matrix import run_matrix
    from citybrain_traffic.harness.runner import RunSpec
    from citybrain_traffic.network import read_network
    from citybrain_traffic.scenario import load_scenario

    sc = load_scenario("single", end=60)
    spec = RunSpec(
        scenario=sc,
        network=read_network(sc.net_file),
        controller=_Broken(),
        seed=1,
        workdir=tmp_path / "run",
    )
    with pytest.raises(
        SimulationError, match=r"internal error in broken seed 1 \(ZeroDivisionError: boom\)"
    ) as info:
        run_matrix([spec])
    log = Path(str(info.value).rsplit("traceback in ", 1)[1])
    try:
        assert tmp_path not in log.parents and "ZeroDivisionError: boom" in log.read_text()
    finally:
        log.unlink()
