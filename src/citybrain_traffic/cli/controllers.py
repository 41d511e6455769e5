"""``ctraffic controllers``, and the options of the commands that run controllers."""

from __future__ import annotations

from typing import Any

import click
from click.decorators import FC

from ..control.switching import OFFSET_MODES
from ..errors import InputError
from ._common import FINITE_FLOAT

#: How many seeds ``--seeds`` takes: harness.seeds' MAX_SEEDS and MAX_SEED, spelled out (the
#: harness imports pandas, which would slow every command's start).
SEEDS_LIMIT = "at most 1000 seeds (each one SUMO run per controller), each from 0 to 2147483647"

#: ``--time-to-teleport`` of the commands that compare controllers. A config's own value is
#: replaced (the runs' notes say so), so that a gridlock shows in the KPIs instead of vanishing.
teleport_option = click.option(
    "--time-to-teleport",
    type=FINITE_FLOAT,
    default=-1,
    show_default=True,
    help="SUMO's teleport time for stuck vehicles, s, in place of the config's; negative disables "
    "teleports so gridlock shows in the KPIs.",
)


@click.command("controllers")
def controllers_command() -> None:
    """List the signal controllers."""
    from ..experiments.registry import controller_class, controller_names

    names = controller_names()
    width = max(map(len, names))
    for name in names:
        click.echo(f"{name:<{width}}  {controller_class(name).description}")


def adaptive_options(command: FC) -> FC:
    """Add the adaptive controller's options to ``command``.

    They are ``--model``, ``--interval``, ``--history-days``, ``--fixed-plans`` and
    ``--offsets``; ``configure_controllers`` checks them.
    """
    command = click.option(
        "--phases",
        type=click.Choice(["own", "rebuilt"]),
        default=None,
        help="adaptive: 'own' runs the network's phases; 'rebuilt' the phases netconvert "
        "--tls.rebuild derives from the junctions' conflicts (as actuated-rebuilt runs them; "
        "with --sequence free or cyclic) [default: own].",
    )(command)
    command = click.option(
        "--max-red",
        "max_red_s",
        type=float,
        default=None,
        help="adaptive, --sequence free or cyclic: the longest red, in seconds, that a waiting "
        "vehicle may see [default: 1.5x the running plan's cycle, the longest red a plan-bounded "
        "sequence needs].",
    )(command)
    command = click.option(
        "--sequence",
        type=click.Choice(["free", "cyclic", "plan"]),
        default=None,
        help="adaptive, real-time layer: 'free' serves the program's greens in any order, 'cyclic' "
        "in the program's order, both choosing every second from the vehicles on the approaches "
        "and skipping greens nobody waits for; 'plan' runs each 15-min plan as SUMO's "
        "gap-actuated program in its order [default: free].",
    )(command)
    command = click.option(
        "--offsets",
        type=click.Choice(list(OFFSET_MODES)),
        default=None,
        help="adaptive, real-time layer on a network of several signals: 'held' keeps each plan's "
        "cycle and offsets (coordinated-actuated: each signal's longest green ends at its planned "
        "point in the cycle, the others gap out before their planned end); 'free' lets gap-outs "
        "shorten the cycle; 'auto' simulates both on 3 seeds of their own before the run and keeps "
        "the one with less mean delay [default: auto].",
    )(command)
    command = click.option(
        "--fixed-plans",
        is_flag=True,
        default=False,
        help="adaptive: run each plan as fixed time, coordinated by its offset, instead of letting "
        "the detectors end a green from half its planned length (never below its minimum) or "
        "extend it up to 1.5x (at least the signal's own program's green).",
    )(command)
    command = click.option(
        "--interval",
        "interval_min",
        type=float,
        default=None,
        help="adaptive: control interval in minutes (counts read, forecast, re-plan) "
        "[default: 15]; whole minutes dividing a day when the controller trains its forecaster, "
        "one of the model's horizons with --model.",
    )(command)
    command = click.option(
        "--history-days",
        type=click.IntRange(min=0),
        default=None,
        help="adaptive, without --model: simulated days of history to train its forecaster on "
        "[default: 14]; 0: no history, forecast each interval from the counts seen so far in the "
        "run.",
    )(command)
    return click.option(
        "--model",
        "model_dir",
        type=click.Path(file_okay=False),
        help="adaptive: forecaster folder from `ctraffic forecast train` [default: train one on "
        "14 simulated days of the scenario, cached].",
    )(command)


def configure_controllers(
    names: list[str],
    *,
    model_dir: str | None = None,
    interval_min: float | None = None,
    history_days: int | None = None,
    fixed_plans: bool = False,
    offsets: str | None = None,
    sequence: str | None = None,
    max_red_s: float | None = None,
    phases: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Configure the controllers ``names`` with the options given; return the options per name.

    The options are the adaptive controller's (``adaptive_options``); they are refused when it
    is not among ``names``.
    """
    options = _controller_options(
        names,
        model_dir=model_dir,
        interval_min=interval_min,
        history_days=history_days,
        fixed_plans=fixed_plans,
        offsets=offsets,
        sequence=sequence,
        max_red_s=max_red_s,
        phases=phases,
    )
    from ..experiments.registry import preparation

    for name in names:
        preparation(name, **options.get(name, {}))
    return options


def _controller_options(
    names: list[str],
    *,
    model_dir: str | None,
    interval_min: float | None,
    history_days: int | None,
    fixed_plans: bool,
    offsets: str | None,
    sequence: str | None,
    max_red_s: float | None,
    phases: str | None,
) -> dict[str, dict[str, Any]]:
    """Return the options per controller; refuse the adaptive ones when it does not run."""
    for flag, value in (("--offsets", offsets), ("--sequence", sequence), ("--max-red", max_red_s)):
        if fixed_plans and value is not None:
            raise InputError(
                f"{flag} is an option of the real-time layer, which --fixed-plans turns off"
            )
    if offsets is not None and sequence is None:
        sequence = "plan"  # the offsets belong to the plans' cycles
    if offsets is not None and sequence != "plan":
        raise InputError(
            "--offsets applies to --sequence plan (the plans' cycles and offsets); the free and "
            "cyclic sequences have no cycle to hold"
        )
    if max_red_s is not None and sequence == "plan":
        raise InputError("--max-red applies to --sequence free or cyclic")
    given = (
        ("model", model_dir),
        ("interval_min", interval_min),
        ("history_days", history_days),
        ("realtime", False if fixed_plans else None),
        ("offsets", offsets),
        ("sequence", sequence),
        ("max_red_s", max_red_s),
        ("phases", phases),
    )
    adaptive = {k: v for k, v in given if v is not None}
    if adaptive and "adaptive" not in names:
        raise InputError(
            "--model, --interval, --history-days, --fixed-plans, --offsets, --sequence, "
            "--max-red and --phases are options of the adaptive controller: add it to "
            "--controller"
        )
    return {"adaptive": adaptive} if adaptive else {}
