"""What every ``ctraffic`` command group shares: option types, output folders, progress, exits.

The command modules of this package (and nothing outside the command line) import from here;
the names are public because several modules use them, not because the library does.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import click
from click.decorators import FC

from ..errors import CTrafficError, InputError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

# --------------------------------------------------------------------------------------------
# Options


class FiniteFloat(click.ParamType):
    """A float option that refuses inf and nan (and, ``positive``, values <= 0).

    SUMO takes no infinite time, and reads ``--scale inf`` as no vehicle at all, so the run
    would measure an empty network.
    """

    name = "float"

    def __init__(self, *, positive: bool = False):
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """Return ``value`` as a float, or fail with the value named."""
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number) or (self.positive and number <= 0):
            self.fail(
                f"{value!r} is not a {'positive ' if self.positive else ''}finite number",
                param,
                ctx,
            )
        return number


FINITE_FLOAT = FiniteFloat()


def demand_scale_option(help: str) -> Callable[[FC], FC]:
    """Make ``--demand-scale``: the factor on the number of vehicles, checked alike everywhere."""
    return click.option(
        "--demand-scale",
        type=FiniteFloat(positive=True),
        default=1.0,
        show_default=True,
        help=f"{help} A positive finite factor on the number of vehicles (1 = as given).",
    )


def parse_seeds(text: str) -> list[int]:
    """Parse seeds such as '1-5' or '1,3,7' (``harness.seeds``, imported only when called)."""
    # bench imports pandas: at module level it would slow every command's start.
    from ..harness.seeds import parse_seeds as parse

    return parse(text)


# --------------------------------------------------------------------------------------------
# Terminal


def console() -> Console:
    """Make the rich console the commands print to."""
    from rich.console import Console

    # Logs and pipes get 100 columns (rich's 80 would wrap the result table).
    return Console(highlight=False, width=None if sys.stdout.isatty() else 100)


class RunProgress:
    """Live progress of the runs: a bar per running simulation (sim time) and one for all runs.

    Without a terminal (CI logs, pipes) it prints one line per finished run instead.
    """

    def __init__(self, console: Console):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.live = console.is_terminal
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[int, TaskID] = {}
        self.runs: list = []
        self.total: TaskID | None = None
        self.preparation: TaskID | None = None

    def __enter__(self) -> RunProgress:
        if self.live:
            self.bar.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.live:
            self.bar.__exit__(kind, exc, traceback)

    def preparing(self, scenario: str, controller: str) -> None:
        """Show that a controller's preparation starts (the adaptive one may simulate minutes).

        Without a terminal, one line (so that a log shows what the minutes went to).
        """
        if not self.live:
            self.console.print(f"  preparing {controller} on {scenario} ...")
            return
        if self.preparation is None:
            self.preparation = self.bar.add_task("", total=None, detail="")
        self.bar.update(self.preparation, description=f"  preparing {controller} on {scenario}")

    def prepared(self, notes: list[str], runs: list) -> None:
        """Print the preparations' notes; ``runs`` are the RunSpecs, in the other calls' order."""
        if self.preparation is not None:
            self.bar.remove_task(self.preparation)
            self.preparation = None
        for note in notes:
            self.console.print(f"  {note}")
        self.runs = runs
        if self.live:
            self.total = self.bar.add_task("all runs", total=len(runs), detail="")

    def advance(self, index: int, now: float) -> None:
        """Move run ``index``'s bar to simulation time ``now``."""
        if not self.live:
            return
        sc = self.runs[index].scenario
        if index not in self.tasks:
            self.tasks[index] = self.bar.add_task(
                f"  {sc.name} {self.runs[index].key}", total=sc.duration_s, detail=""
            )
        self.bar.update(self.tasks[index], completed=now - sc.begin, detail=f"{now:g} s")

    def done(self, index: int, result: Any) -> None:
        """Print the line of a finished run."""
        self._finish(index)
        k = result.kpis
        self.console.print(
            f"  done {result.scenario} {result.controller} seed {result.seed}: "
            f"delay {k['mean_delay_s']:.1f} s/veh, "
            f"{k['vehicles_arrived']} of {k['vehicles_loaded']} vehicles arrived "
            f"({result.wall_time_s:.1f} s)"
        )

    def failed(self, index: int, failure: Any) -> None:
        """Print a run that failed, or a controller that refused the network (``RunFailure``)."""
        from rich.markup import escape

        self._finish(index)
        label = "[yellow]refused[/]" if failure.refused else "[red]failed[/]"
        self.console.print(f"  {label} {failure.what}: {escape(failure.reason)}")

    def _finish(self, index: int) -> None:
        """Remove run ``index``'s bar and count it on the bar of all runs."""
        if not self.live:
            return
        if index in self.tasks:
            self.bar.remove_task(self.tasks.pop(index))
        if self.total is not None:
            self.bar.advance(self.total)


def exit_on_problems(
    console: Console, results: Sequence[Any], failures: Sequence[Any] = ()
) -> None:
    """Name every unsafe run, failed run and refusing controller; exit 1 if one is no refusal.

    Unsafe: a run whose signal states left the safety envelope; failed: a run or preparation
    that failed (``RunFailure``). A controller that refused the network alone is no fault.
    """
    from rich.markup import escape

    unsafe = [r for r in results if r.safety_violations]
    for result in unsafe:
        console.print(
            f"[bold red]unsafe[/]: {result.scenario} {result.controller} seed {result.seed}: "
            f"{len(result.safety_violations)} signal state(s) left the safety envelope, first: "
            f"{escape(result.safety_violations[0])}"
        )
    for failure in failures:
        label = "[yellow]refused[/]" if failure.refused else "[bold red]failed[/]"
        console.print(f"{label}: {failure.what}: {escape(failure.reason)}")
    if unsafe or any(not failure.refused for failure in failures):
        raise SystemExit(1)


# --------------------------------------------------------------------------------------------
# Files and folders


def fresh_out_dir(out: str | Path) -> Path:
    """Return the output folder; refuse one that already holds files, so nothing is overwritten."""
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(
            f"output folder {path} already exists and is not empty: choose a new --out"
        )
    return path


class StagedOutDir:
    """A command's ``--out`` folder, written beside it under a hidden name, renamed at the end.

    Checked when made (``fresh_out_dir``, before any work); ``with`` gives the partial folder
    ``.<name>.partial-<pid>`` beside it. A command that fails or is interrupted removes the
    partial folder and leaves ``--out`` as the user had it (absent or empty), so the same
    command runs again; a half-written ``--out`` used to refuse it as "not empty".
    """

    def __init__(self, out: str | Path):
        # Absolute, so that --out . has a name to put the partial folder beside.
        self.final = Path(os.path.abspath(fresh_out_dir(out)))
        self.partial = self.final.parent / f".{self.final.name}.partial-{os.getpid()}"

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.partial.mkdir()
        except FileExistsError:
            raise InputError(
                f"{self.partial} is left over from a run that was killed: remove it"
            ) from None
        return self.partial

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            return
        try:
            # rename(2) replaces an empty folder and refuses one with files: what the user put
            # into --out while the command ran stays, and so do the results, where they are.
            self.partial.rename(self.final)
        except OSError as err:
            raise InputError(
                f"output folder {self.final} changed while the command ran ({err.strerror}): "
                f"the results are in {self.partial}"
            ) from None


def fresh_out_file(out: str | Path, *, suffixes: tuple[str, ...] = ()) -> Path:
    """Return an output file to create; refuse one that exists or has another suffix."""
    path = Path(out)
    if path.exists():
        raise InputError(f"{path} already exists: choose a new --out (nothing is overwritten)")
    if suffixes and not path.name.endswith(suffixes):
        raise InputError(f"--out {path}: expected a {', '.join(suffixes)} file name")
    return path


def plan_file(path: Path) -> Path:
    """Return the plan file of ``path``: the file itself, or the plans an optimize folder holds."""
    if path.is_dir():
        for name in ("plans.json", "plans.add.xml"):
            if (path / name).is_file():
                return path / name
        raise InputError(
            f"{path} holds neither plans.json nor plans.add.xml "
            "(the files `ctraffic optimize --out` writes)"
        )
    if not path.is_file():
        raise InputError(f"plan folder or file not found: {path}")
    return path


# --------------------------------------------------------------------------------------------
# Errors, signals and exit codes

#: A group called without a command shows its help through this error (click >= 8.2; before, it
#: exits by itself).
NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


class Terminated(BaseException):
    """SIGTERM (``kill PID``), raised in the main thread as Ctrl-C raises KeyboardInterrupt.

    Without it SIGTERM ended the command at once, skipping every ``finally``: its worker
    processes ran on, orphaned. As an exception it takes the path Ctrl-C takes: the workers are
    terminated, temporary and partial output folders removed. A BaseException, so that no
    ``except Exception`` on the way swallows it.
    """


def raise_terminated(signum: int, frame: FrameType | None) -> NoReturn:
    """Raise ``Terminated``: the SIGTERM handler of ``run``."""
    # A second SIGTERM must not cut the cleanup the first one started (SIGKILL still ends it).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


def run(group: click.Group) -> NoReturn:
    """Run ``group`` as a program: one clear line and exit code 2 for bad input, no traceback.

    Ctrl-C exits with 130 and SIGTERM with 143 (128 + the signal's number, as a shell reports a
    process the signal killed), after the same cleanup.
    """
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        code = group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(128 + signal.SIGINT)
    except Terminated:
        click.echo("terminated", err=True)
        sys.exit(128 + signal.SIGTERM)
    except NO_ARGS_IS_HELP as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # Click would print its usage block above the message: one line, pointing at --help.
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except CTrafficError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(128 + signal.SIGINT)
    sys.exit(code if isinstance(code, int) else 0)
