"""The ``ctraffic serve``, ``publish`` and ``adapter`` commands."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import click

from ..errors import InputError
from ..service.auth import READ_ENV, TOKEN_RULE, WRITE_ENV
from ._common import StagedOutDir, console, exit_on_problems

#: How ``serve --workers N`` hands its settings to the worker processes uvicorn starts.
_CONFIG_ENV = "CTRAFFIC_SERVE_CONFIG"
#: Default most connections one server process keeps open. The load benchmark's 200 adapters
#: each keep one, as does a long poll; past a file-descriptor limit (1,024 is common) a process
#: could accept nothing, health checks included.
DEFAULT_MAX_CONNECTIONS = 900

_SERVE_HELP = f"""Serve timing plans to controller adapters over HTTP (OpenAPI at /docs).

Every published plan version is kept in the SQLite file --db (created when missing); plans are
validated against the network of their signal before they are stored, so the server is started
with the networks it serves: --net takes a .net.xml, a bundled scenario name or a .sumocfg, and
may be given several times (signal ids must differ between them).

\b
Tokens (never on the command line): --tokens FILE, a TOML file
    read = ["token-for-adapters", ...]
    write = ["token-for-publishers", ...]
or the variables CTRAFFIC_READ_TOKEN and CTRAFFIC_WRITE_TOKEN.

A token needs {TOKEN_RULE}; a write token also reads. The tokens file must not be writable by
group or others.

\b
Endpoints: GET /v1/health, GET /v1/intersections, GET /v1/intersections/{{id}}/plan
(?at=ISO-TIME, ?format=json|sumo|utdf, ETag/If-None-Match, ?wait=S long poll),
GET /v1/intersections/{{id}}/plans (?limit, ?before), POST /v1/plans (one plan or a batch).
"""


@click.command("serve", help=_SERVE_HELP)
@click.option(
    "--db", required=True, type=click.Path(dir_okay=False), help="SQLite file of the plan versions."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(dir_okay=False),
    help="TOML file of read and write tokens.",
)
@click.option(
    "--net",
    "nets",
    multiple=True,
    required=True,
    metavar="NET",
    help="Network served: .net.xml, bundled scenario name or .sumocfg (repeatable).",
)
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes."
)
@click.option(
    "--max-body-mb",
    default=8.0,
    show_default=True,
    type=click.FloatRange(0.001, 1024),
    help="Largest request body, MiB (413 beyond).",
)
@click.option(
    "--max-connections",
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    type=click.IntRange(1),
    help="Most open connections per server process; one more is answered 503 and closed.",
)
@click.option(
    "--accept-lost-versions",
    is_flag=True,
    help="Serve a database that lacks versions committed before (a lost or damaged write-ahead log); "
    "new versions are numbered after the lost ones.",
)
@click.option(
    "--access-log/--no-access-log", default=False, show_default=True, help="Log every request."
)
def serve(
    db,
    host,
    port,
    tokens_file,
    nets,
    workers,
    max_body_mb,
    max_connections,
    accept_lost_versions,
    access_log,
):
    import uvicorn

    from ..service.server import uvicorn_options

    config = {
        "db": str(Path(db).resolve()),
        "nets": [str(_net_file(n)) for n in nets],
        "tokens": str(Path(tokens_file).resolve()) if tokens_file else None,
        "max_body_bytes": int(max_body_mb * 2**20),
        "accept_lost_versions": accept_lost_versions,
    }
    app = _app(
        config
    )  # also when workers start their own: bad input fails here, once, with a clear line
    served = ", ".join(Path(n).name for n in config["nets"])
    click.echo(
        f"plan service: signals of {served}; plans in {config['db']}; http://{host}:{port}/docs "
        f"({workers} worker{'s' if workers > 1 else ''})",
        err=True,
    )
    options = dict(
        host=host,
        port=port,
        access_log=access_log,
        log_level="info",
        timeout_graceful_shutdown=5,
        **uvicorn_options(max_connections=max_connections),
    )
    if workers == 1:
        uvicorn.run(app, **options)
    else:
        os.environ[_CONFIG_ENV] = json.dumps(config)
        uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)


def app_from_environment():
    """The app of one ``serve --workers N`` process, from the settings the command left in the environment."""
    return _app(json.loads(os.environ[_CONFIG_ENV]))


def _app(config: dict):
    from ..network import read_network
    from ..service.app import create_app
    from ..service.auth import load_tokens
    from ..service.store import PlanStore

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    tokens = load_tokens(config["tokens"])
    networks = [read_network(path) for path in config["nets"]]
    store = PlanStore(config["db"], accept_lost_versions=config["accept_lost_versions"])
    return create_app(store, networks, tokens, max_body_bytes=config["max_body_bytes"])


def _net_file(spec: str) -> Path:
    """A --net value as a network file: the file itself, or the network of a scenario."""
    path = Path(spec)
    if path.is_file() and path.name.endswith((".net.xml", ".net.xml.gz")):
        return path.resolve()
    from ..scenario import load_scenario

    return load_scenario(spec).net_file.resolve()


@click.command("publish")
@click.argument("plan_dir", type=click.Path())
@click.option(
    "--server", required=True, metavar="URL", help="The plan service, e.g. http://127.0.0.1:8080."
)
def publish(plan_dir, server):
    """Publish the plans in PLAN_DIR to the plan service, as one batch (all or none).

    PLAN_DIR is a folder written by `ctraffic optimize --out` (its plans.json, else
    plans.add.xml) or a plan file (plans JSON or SUMO tlLogic XML). The write token comes from
    the CTRAFFIC_WRITE_TOKEN variable. The server validates every plan against its network and
    refuses the whole batch, with the reasons, when one is unsafe.
    """
    from ..plans import read_plans
    from ..service.client import PlanClient

    token = os.environ.get(WRITE_ENV)
    if not token:
        raise InputError(
            f"set {WRITE_ENV} to a write token of the service (tokens never go on the command line)"
        )
    path = _plan_file(Path(plan_dir))
    plans = read_plans(path)
    if not plans:
        raise InputError(f"{path} holds no timing plan")
    client = PlanClient(server, token)
    answer = client.publish(plans)
    client.close()
    versions = ", ".join(f"{p['tls_id']} v{p['version']}" for p in answer["plans"])
    click.echo(f"published {len(plans)} plan(s) from {path} as batch {answer['batch']}: {versions}")


def _plan_file(path: Path) -> Path:
    if path.is_dir():
        for name in ("plans.json", "plans.add.xml"):
            if (path / name).is_file():
                return path / name
        raise InputError(
            f"{path} holds neither plans.json nor plans.add.xml (the files `ctraffic optimize --out` writes)"
        )
    if not path.is_file():
        raise InputError(f"plan folder or file not found: {path}")
    return path


@click.group("adapter")
def adapter() -> None:
    """Reference adapters: controllers that take their plans from the plan service."""


@adapter.command("sumo")
@click.argument("scenario", required=False)
@click.option(
    "--server",
    metavar="URL",
    help="The plan service to pull plans from (read token: CTRAFFIC_READ_TOKEN).",
)
@click.option(
    "--plans",
    "plans_file",
    type=click.Path(),
    metavar="FILE",
    help="Instead of --server: run the plans of FILE (or an optimize folder) directly, each from its "
    "valid_from or the start; the reference an adapter run is compared with.",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Random seed of the simulation."
)
@click.option(
    "--begin",
    type=float,
    help="Start of the window, s of simulation time [default: the scenario's].",
)
@click.option(
    "--end", type=float, help="End of the window, s of simulation time [default: the scenario's]."
)
@click.option(
    "--poll",
    "poll_s",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Pull every signal's plan this often, s of simulation time.",
)
@click.option(
    "--day",
    default="2026-01-05",
    show_default=True,
    help="Date whose midnight is simulation time 0 (plans valid at times of day).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="New or empty folder: kpis.json, intersections.csv, timeseries.csv/png, adapter.json.",
)
def adapter_sumo(scenario, server, plans_file, seed, begin, end, poll_s, day, out):
    """Run SCENARIO in SUMO with every signal driven by the plans the service serves.

    Each signal pulls its plan in force at the simulated time when the run starts and every
    --poll seconds (ETags: an unchanged plan costs a 304), checks it against its own program, and
    switches to a new plan at its next cycle boundary, keeping the plan's offset. A signal with
    no plan, or a service out of reach, keeps the program it runs. Prints the run's KPIs.
    """
    import pandas as pd

    from ..bench import run_matrix
    from ..control.base import SimSetup
    from ..network import read_network
    from ..plans import read_plans, validate_all
    from ..report import write_run_files
    from ..scenario import load_scenario
    from ..service.adapter import DirectPlans, ServiceAdapter, schedule_from
    from ..service.client import PlanClient
    from ..sim.metrics import KPI_COLUMNS
    from ..sim.runner import RunSpec

    if (server is None) == (plans_file is None):
        raise InputError(
            "give either --server URL (pull plans from the service) or --plans FILE (run them directly)"
        )
    try:
        origin = pd.Timestamp(day)
    except ValueError:
        raise InputError(f"--day {day!r} is not a date (expected YYYY-MM-DD)") from None
    staged = StagedOutDir(out) if out else None
    sc = load_scenario(scenario, begin=begin, end=end)
    network = read_network(sc.net_file)
    setup = SimSetup()
    if server is not None:
        token = os.environ.get(READ_ENV) or os.environ.get(WRITE_ENV)
        if not token:
            raise InputError(
                f"set {READ_ENV} to a read token of the service (tokens never go on the command line)"
            )
        probe = PlanClient(server, token)
        probe.health()
        probe.close()
        controller = ServiceAdapter(server, token, poll_s=poll_s, day=origin)
        source = f"plans pulled from {server} every {poll_s:g} s"
    else:
        plans = validate_all(read_plans(_plan_file(Path(plans_file))), network)
        setup = SimSetup(schedule=schedule_from(plans, begin=sc.begin, end=sc.end, day=origin))
        controller = DirectPlans()
        source = f"{len(setup.schedule)} plan(s) from {plans_file}, run directly"
    click.echo(
        f"{sc.name}: {len(network.intersections)} signals, window {sc.begin:g}-{sc.end:g} s, seed {seed}, {source}"
    )
    with staged or tempfile.TemporaryDirectory(prefix="ctraffic-") as workdir:
        spec = RunSpec(
            scenario=sc,
            network=network,
            controller=controller,
            seed=seed,
            workdir=Path(workdir) / "sumo",
            setup=setup,
        )
        (result,) = run_matrix([spec])
        report = result.controller_report or {}
        for key in KPI_COLUMNS:
            value = result.kpis[key]
            click.echo(
                f"  {key:<22} {value:,.3f}"
                if isinstance(value, float)
                else f"  {key:<22} {value:,}"
            )
        if "stats" in report:
            stats = report["stats"]
            click.echo(
                f"adapter: {stats['pulls']} pulls: {stats['new']} new plan(s), {stats['not_modified']} not modified, "
                f"{stats['no_plan']} without a plan, {stats['refused']} refused as unsafe, {stats['failed']} failed; "
                f"{len(report['installed'])} plan(s) installed"
            )
        if staged is not None:
            write_run_files(result, Path(workdir))
            (Path(workdir) / "adapter.json").write_text(json.dumps(report, indent=1) + "\n")
    if staged is not None:
        click.echo(f"results written to {staged.final}/", err=True)
    exit_on_problems(console(), [result])
