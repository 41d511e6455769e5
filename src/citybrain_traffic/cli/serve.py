"""``ctraffic serve``: the plan service, over HTTP."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..service.auth import TOKEN_RULE

if TYPE_CHECKING:
    from fastapi import FastAPI

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
    help="Serve a database that lacks versions committed before (a lost or damaged write-ahead "
    "log); new versions are numbered after the lost ones.",
)
@click.option(
    "--access-log/--no-access-log", default=False, show_default=True, help="Log every request."
)
def serve(
    db: str,
    host: str,
    port: int,
    tokens_file: str | None,
    nets: tuple[str, ...],
    workers: int,
    max_body_mb: float,
    max_connections: int,
    accept_lost_versions: bool,
    access_log: bool,
) -> None:
    """Serve the plans of --db over HTTP; ``--help`` shows ``_SERVE_HELP``."""
    import uvicorn

    from ..service.server import uvicorn_options

    config: dict[str, Any] = {
        "db": str(Path(db).resolve()),
        "nets": [str(_net_file(n)) for n in nets],
        "tokens": str(Path(tokens_file).resolve()) if tokens_file else None,
        "max_body_bytes": int(max_body_mb * 2**20),
        "accept_lost_versions": accept_lost_versions,
    }
    # Also when the workers start their own: bad input fails here, once, with a clear line.
    app = _app(config)
    served = ", ".join(Path(n).name for n in config["nets"])
    click.echo(
        f"plan service: signals of {served}; plans in {config['db']}; http://{host}:{port}/docs "
        f"({workers} worker{'s' if workers > 1 else ''})",
        err=True,
    )
    options: dict[str, Any] = dict(
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


def app_from_environment() -> FastAPI:
    """Make the app of one ``serve --workers N`` process from the settings ``serve`` left.

    ``serve`` leaves them in the environment variable CTRAFFIC_SERVE_CONFIG.
    """
    return _app(json.loads(os.environ[_CONFIG_ENV]))


def _app(config: dict[str, Any]) -> FastAPI:
    """Make the app of the settings ``config``, its tokens, networks and store loaded."""
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
    """Return a --net value as a network file: the file itself, or the network of a scenario."""
    path = Path(spec)
    if path.is_file() and path.name.endswith((".net.xml", ".net.xml.gz")):
        return path.resolve()
    from ..scenario import load_scenario

    return load_scenario(spec).net_file.resolve()
