"""The plan service against clients that send too much: bodies without a token, huge headers or
trailers, too many connections or publishes at once, and a publish resent after its answer was
lost. Each test runs `ctraffic serve` on loopback and talks to it over real sockets."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from citybrain_traffic.service.client import PlanClient
from citybrain_traffic.service.store import PlanStore

from service_helpers import READ_TOKEN, WRITE, WRITE_TOKEN, doc, safe_plan, serving

BODY_BYTES = 7_864_320  # 7.5 MiB, under the 8 MiB limit


def _port(url: str) -> int:
    return urlsplit(url).port


def _exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        return answer


def _parts(answer: bytes) -> tuple[str, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), json.loads(body)


def _post_head(length: int, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST /v1/plans HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{auth}\r\n"
    ).encode()


def _health_latencies(
    url: str, *, while_running: threading.Thread, most: int = 400, seconds: float = 10.0
) -> list[float]:
    """/v1/health answer times (s), a request every 10 ms while ``while_running`` runs (bounded)."""
    latencies = []
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=10) as client:
        while while_running.is_alive() and len(latencies) < most and time.monotonic() < deadline:
            started = time.perf_counter()
            assert client.get(f"{url}/v1/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)
    return latencies


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_unauthenticated_body_is_refused_before_it_is_read(tmp_path):
    with serving(tmp_path / "plans.db") as (_, url):
        # Only the head is sent: a server that read the 7.5 MiB body first would never answer.
        for token, status in ((None, 401), (READ_TOKEN, 403)):
            head, body = _parts(_exchange(_port(url), _post_head(BODY_BYTES, token)))
            assert head.startswith(f"http/1.1 {status}") and "connection: close" in head
            assert set(body) == {"detail", "reasons"}
        assert (
            "www-authenticate: bearer" in _parts(_exchange(_port(url), _post_head(BODY_BYTES)))[0]
        )
        malformed = httpx.post(
            f"{url}/v1/plans", content=b'{"plans": [', headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code == 401 and malformed.json()["detail"].startswith(
            "missing token"
        )
        # With a write token the body is read: this head alone gets no answer.
        with socket.create_connection(("127.0.0.1", _port(url)), timeout=1.0) as s:
            s.sendall(_post_head(BODY_BYTES, WRITE_TOKEN))
            try:
                answered = s.recv(100)
            except TimeoutError:
                answered = b""
        assert answered == b""


def test_unauthenticated_clients_neither_slow_health_nor_grow_memory(tmp_path):
    with serving(tmp_path / "plans.db") as (server, url):
        before = _rss_mib(server.pid)
        hanging = []
        for _ in range(30):  # 30 bodies of 7.5 MiB, 1 MiB of each sent, then left unfinished
            s = socket.create_connection(("127.0.0.1", _port(url)), timeout=5)
            hanging.append(s)
            try:
                s.sendall(_post_head(BODY_BYTES) + b"[" * 2**20)
            except OSError:
                pass  # refused and closed before the megabyte was through
        time.sleep(0.5)
        grown = _rss_mib(server.pid) - before
        for s in hanging:
            s.close()

        stop = time.monotonic() + 3.0

        def flood():
            payload = _post_head(BODY_BYTES) + b"[" * BODY_BYTES
            while time.monotonic() < stop:
                try:
                    _exchange(_port(url), payload)
                except OSError:
                    pass

        senders = [threading.Thread(target=flood) for _ in range(4)]
        for sender in senders:
            sender.start()
        latencies = _health_latencies(url, while_running=senders[0])
        for sender in senders:
            sender.join()
    assert grown < 10, f"30 unfinished bodies without a token grew the server by {grown:.0f} MiB"
    assert len(latencies) > 50
    median, p90 = statistics.median(latencies), statistics.quantiles(latencies, n=10)[-1]
    assert median < 0.02 and p90 < 0.05, (
        f"health under 4 clients without a token: median {median:.3f} s, p90 {p90:.3f} s"
    )


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ",
        b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\nX-Trailer: ",
    ],
    ids=["header", "trailer"],
)
def test_huge_header_does_not_stall_health(tmp_path, head):
    sent: list[int] = []
    answers: list[bytes] = []

    def send_huge_headers(port: int) -> None:
        # The attack lasts its 2 s however fast the server refuses each connection, so that
        # /v1/health is timed throughout it (a count of connections ended it in 0.3 s on an
        # idle machine, too soon for the latencies to mean anything).
        deadline = time.monotonic() + 2.0
        chunk = b"a" * 65536
        while time.monotonic() < deadline:
            total = 0
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                try:
                    s.sendall(head)
                    for _ in range(1024):  # 64 MiB of one header
                        s.sendall(chunk)
                        total += len(chunk)
                    s.sendall(b"\r\n\r\n")
                except OSError:
                    pass  # the server closed the connection: it stopped reading
                try:
                    answers.append(s.recv(65536))
                except OSError:
                    pass
            sent.append(total)

    with serving(tmp_path / "plans.db") as (_, url):
        attacker = threading.Thread(target=send_huge_headers, args=(_port(url),))
        attacker.start()
        latencies = _health_latencies(url, while_running=attacker)
        attacker.join()
    assert len(sent) >= 2 and max(sent) < 16 * 2**20, (
        f"the server read {max(sent) / 2**20:.0f} MiB of one header"
    )
    assert any(a.startswith(b"HTTP/1.1 400") and b'"detail"' in a for a in answers), answers[:3]
    assert len(latencies) > 20
    median, worst = statistics.median(latencies), max(latencies)
    assert median < 0.02 and worst < 0.2, (
        f"health during 64 MiB headers: median {median:.3f} s, worst {worst:.3f} s"
    )


def test_connections_past_the_limit_are_refused_in_json(tmp_path):
    with serving(tmp_path / "plans.db", "--max-connections", "3") as (_, url):
        idle = [socket.create_connection(("127.0.0.1", _port(url))) for _ in range(3)]
        time.sleep(0.3)
        head, body = _parts(
            _exchange(_port(url), b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        )
        assert (
            head.startswith("http/1.1 503")
            and "retry-after" in head
            and "3 connections open" in body["detail"]
        )
        idle.pop().close()
        for _ in range(50):  # the server notices the closed connection within a moment
            time.sleep(0.05)
            answer = _exchange(
                _port(url),
                b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )
            if answer.startswith(b"HTTP/1.1 200"):
                break
        assert answer.startswith(b"HTTP/1.1 200")
        for s in idle:
            s.close()


def test_publishes_past_the_limit_get_a_json_503(tmp_path):
    body = json.dumps(doc(safe_plan("J1"))).encode()
    with serving(tmp_path / "plans.db") as (_, url):
        stalled = []
        for _ in range(4):  # the default limit per process: bodies being read
            s = socket.create_connection(("127.0.0.1", _port(url)), timeout=5)
            s.sendall(_post_head(len(body), WRITE_TOKEN) + body[:10])
            stalled.append(s)
        time.sleep(0.3)
        refused = httpx.post(
            f"{url}/v1/plans", content=body, headers={**WRITE, "Content-Type": "application/json"}
        )
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert refused.json()["detail"].startswith("the server is handling 4 publishes already")
        assert httpx.get(f"{url}/v1/health").status_code == 200
        for s in stalled:
            s.close()
        for _ in range(50):
            time.sleep(0.05)
            accepted = httpx.post(
                f"{url}/v1/plans",
                content=body,
                headers={**WRITE, "Content-Type": "application/json"},
            )
            if accepted.status_code != 503:
                break
        assert accepted.status_code == 201


class _DropFirstAnswer:
    """A loopback TCP proxy to ``port`` that closes its first connection when the answer comes,
    instead of passing it on: the request is done, and its sender does not know it."""

    def __init__(self, port: int):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            drop = self.connections == 1
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, drop), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, drop: bool) -> None:
        try:
            while data := source.recv(65536):
                if drop:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (
            source,
            sink,
        ):  # shutdown first: close alone leaves the other thread's recv waiting
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.listener.close()


def test_retried_publish_stores_one_batch(tmp_path):
    plans = [safe_plan(f"J{k}") for k in range(1, 6)]
    with serving(tmp_path / "plans.db") as (_, url):
        proxy = _DropFirstAnswer(_port(url))
        client = PlanClient(proxy.url, WRITE_TOKEN)
        answer = client.publish(plans)  # the first answer is lost; the client sends the batch again
        client.close()
        proxy.close()
        assert proxy.connections == 2
        listed = httpx.get(f"{url}/v1/intersections/J1/plans", headers=WRITE).json()["plans"]
    assert answer["batch"] == 1 and [p["version"] for p in answer["plans"]] == [1, 2, 3, 4, 5]
    assert [p["version"] for p in listed] == [1]
    store = PlanStore(tmp_path / "plans.db")
    assert store.batches() == [(1, 5)]
    store.close()
