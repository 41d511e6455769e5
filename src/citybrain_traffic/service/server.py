"""Run the plan service under uvicorn's h11 parser, with bounded request heads and connections.

Rule: ``ctraffic serve`` runs h11, which refuses a request head, chunk header or trailers past a
set size. Why: httptools reads a head of any size and holds every other request meanwhile; the
measurements and the CPU this costs are in ``docs/decisions/0005-service-request-limits.md``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .problems import problem

#: Longest request line and headers a server process reads, bytes; a longer head gets a 400 and
#: the connection is closed. A bearer token and an ETag take well under 1 KiB.
MAX_HEAD_BYTES = 16 * 1024


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, refusing the connections past ``limit_concurrency`` in JSON.

    uvicorn's own ``limit_concurrency`` check answers a plain-text 503 to every request once
    the process holds that many connections, on old connections too. Here only a connection
    opened past the limit is refused (JSON 503, then closed); the adapters already connected
    keep being served. The 400 for a malformed or too long request head is JSON as well.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_connections, self.limit_concurrency = self.limit_concurrency, None

    # uvicorn's H11Protocol narrows asyncio's BaseTransport to Transport, as this override must.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Take the connection; past the limit, answer its first request with a JSON 503."""
        super().connection_made(transport)
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            self.logger.warning(
                "503: %d connections open, the limit is %d",
                len(self.connections),
                self.max_connections,
            )
            self.app = problem(
                503,
                f"the server has {self.max_connections} connections open: retry in a few seconds",
                headers={"Retry-After": "5", "Connection": "close"},
            )

    def send_400_response(self, msg: str) -> None:
        """Answer a malformed or too long request head with a JSON 400, and close."""
        body = json.dumps(
            {
                "detail": "invalid HTTP request, or its request line and headers are over "
                f"{MAX_HEAD_BYTES:,} bytes",
                "reasons": [],
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def uvicorn_options(*, max_connections: int) -> dict[str, Any]:
    """Return the options ``ctraffic serve`` gives ``uvicorn.run`` beside host, port, logging."""
    return {
        "http": BoundedH11Protocol,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "limit_concurrency": max_connections,
    }
