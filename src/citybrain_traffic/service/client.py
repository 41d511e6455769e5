"""A small client of the plan service (standard library only): publish, pull the plan in force."""

from __future__ import annotations

import http.client
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode, urlsplit

from ..errors import CTrafficError, InputError
from ..plans import TimingPlan
from .store import plan_from_dict, plan_to_dict


class ServiceError(CTrafficError):
    """The plan service could not be reached, or refused a request (the message says why)."""


@dataclass(frozen=True)
class Fetched:
    """One pull: HTTP status (200, 304 or 404), the plan and its version on 200, and the ETag."""

    status: int
    etag: str | None = None
    plan: TimingPlan | None = None
    version: int | None = None


class PlanClient:
    """Talks to one plan service over a kept-alive HTTP connection.

    Parameters
    ----------
    server
        Base URL, e.g. ``http://127.0.0.1:8080``.
    token
        The bearer token (read token to pull, write token to publish).
    timeout
        Socket timeout per request (s).
    """

    def __init__(self, server: str, token: str | None, *, timeout: float = 10.0):
        parts = urlsplit(server if "://" in server else f"http://{server}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServiceError(
                f"--server {server!r} is not an http(s) URL such as http://127.0.0.1:8080"
            )
        self.server = f"{parts.scheme}://{parts.netloc}"
        self.host: str = parts.hostname
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._parts = parts
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        """Close the kept-alive connection (the next request opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def publish(self, plans: list[TimingPlan]) -> dict:
        """Publish ``plans`` as one batch; return the server's answer (batch, versions).

        The batch goes with a fresh ``Idempotency-Key``: sent again after a lost connection, it
        gets the first answer back instead of being stored twice.

        Raises
        ------
        InputError
            When a plan holds NaN or infinity, which JSON cannot carry (nothing is sent).
        ServiceError
            When the service cannot be reached or refuses the batch.
        """
        encoded = []
        for plan in plans:
            try:
                encoded.append(json.dumps(plan_to_dict(plan), allow_nan=False))
            except ValueError:  # json's refusal of NaN and infinity
                raise InputError(
                    f"nothing published: the plan of {plan.tls_id} holds NaN or infinity, which "
                    "JSON cannot carry; plans hold finite numbers only"
                ) from None
            except TypeError as exc:
                raise InputError(
                    f"nothing published: the plan of {plan.tls_id} holds a value JSON cannot carry "
                    f"({exc})"
                ) from None
        body = ('{"plans": [' + ", ".join(encoded) + "]}").encode()
        status, _, data = self._request(
            "POST", "/v1/plans", body=body, headers={"Idempotency-Key": uuid.uuid4().hex}
        )
        if status != 201:
            raise ServiceError(self._refusal("publish", status, data))
        return json.loads(data)

    def plan(self, tls_id: str, *, at: datetime | None = None, etag: str | None = None) -> Fetched:
        """Pull the plan in force for ``tls_id`` (now, or at ``at``); 304 while it has ``etag``.

        Raises
        ------
        InputError
            When the plan holds a field that is no finite number.
        ServiceError
            When the service cannot be reached or refuses the request.
        """
        query = urlencode({"at": at.isoformat()}) if at is not None else ""
        path = f"/v1/intersections/{quote(tls_id, safe='')}/plan" + (f"?{query}" if query else "")
        status, headers, data = self._request(
            "GET", path, headers={"If-None-Match": etag} if etag else {}
        )
        if status == 200:
            doc = json.loads(data)
            return Fetched(200, headers.get("etag"), plan_from_dict(doc), doc["version"])
        if status in (304, 404):
            return Fetched(status, etag)
        raise ServiceError(self._refusal(f"pull the plan of {tls_id}", status, data))

    def health(self) -> dict:
        """Return the service's health answer (newest version, served networks).

        Raises
        ------
        ServiceError
            When the service cannot be reached or is not healthy.
        """
        status, _, data = self._request("GET", "/v1/health")
        if status != 200:
            raise ServiceError(self._refusal("check health", status, data))
        return json.loads(data)

    def _request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None
    ):
        headers = {**(headers or {}), "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            try:
                return self._send(method, path, body, headers)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server has closed meanwhile: once more on a new one.
                # Only a request that cannot act twice: the lost one may have been done already.
                self.close()
                if method != "GET" and "Idempotency-Key" not in headers:
                    raise
                return self._send(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise ServiceError(f"cannot reach the plan service at {self.server}: {exc}") from exc

    def _send(self, method: str, path: str, body: bytes | None, headers: dict):
        conn = self._connection()
        conn.request(method, self.prefix + path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = (
                http.client.HTTPSConnection
                if self._parts.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = kind(self.host, self._parts.port, timeout=self.timeout)
        return self._conn

    def _refusal(self, what: str, status: int, data: bytes) -> str:
        try:
            doc = json.loads(data)
            detail, reasons = doc.get("detail", ""), doc.get("reasons") or []
        except (ValueError, AttributeError):
            detail, reasons = data[:200].decode(errors="replace"), []
        if status in (401, 403):
            detail += (
                " (set the token in CTRAFFIC_WRITE_TOKEN to publish, CTRAFFIC_READ_TOKEN to pull)"
            )
        lines = [f"the plan service refused to {what} ({status}): {detail}"]
        lines += [f"  - {reason}" for reason in reasons[1:] if reason not in detail]
        return "\n".join(lines)
