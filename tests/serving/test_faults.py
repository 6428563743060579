"""The server under faults and hostile clients: real processes, real sockets, counts rather than durations."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.cases import PREDICT, ROW, body
from tests.serving.conftest import Server, start_server, stop_server

ONE_ROW = body({"instances": [ROW]})
SLOW_ROWS = 100_000


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def raw_request(port: int, data: bytes, *, wait: float = 10) -> bytes:
    """Send bytes on a fresh connection and read until the server closes it (or `wait` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass  # closed, with bytes it never read still queued: a reset instead of a FIN
    return received


def status_and_error(response: bytes) -> tuple[int, str]:
    head, _, payload = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)["error"]


@pytest.fixture
def guarded(model_root: Path):
    """A LiteRT server with short read limits, started per test."""
    running = start_server(
        model_root,
        TWINSERVE_RUNTIME="litert",
        TWINSERVE_DRAIN_SECONDS="0",
        TWINSERVE_READ_TIMEOUT_SECONDS="1",
        TWINSERVE_MAX_CONNECTIONS="40",
    )
    yield running
    stop_server(running)


def test_sigterm_under_keep_alive_load_drops_nothing_and_then_refuses(model_root: Path) -> None:
    server = start_server(
        model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_WORKERS="2", TWINSERVE_DRAIN_SECONDS="2"
    )
    answered, closing, failures = [0], [0], []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while True:
                try:
                    response = http.post(PREDICT, content=ONE_ROW)
                except httpx.ConnectError:
                    return  # the listening socket is gone: nothing was sent
                except httpx.HTTPError as error:
                    with lock:
                        failures.append(repr(error))
                    return
                with lock:
                    answered[0] += response.status_code == 200
                    closing[0] += response.headers.get("connection") == "close"

    threads = [threading.Thread(target=client) for _ in range(32)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=60)
    assert server.process.wait(timeout=30) == 0
    assert failures == []
    assert answered[0] > 100
    assert closing[0] > 0  # from SIGTERM on, answers tell keep-alive clients to reconnect
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5)


@pytest.mark.parametrize("runtime", ["litert", "tensorflow"])
def test_max_concurrency_holds_on_both_runtimes(model_root: Path, runtime: str) -> None:
    server = start_server(model_root, TWINSERVE_RUNTIME=runtime, TWINSERVE_MAX_CONCURRENCY="1")
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.sendall(
                f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(ONE_ROW)}\r\n\r\n".encode()
            )
            slow.sendall(ONE_ROW[:5])  # in flight: its body is still arriving
            time.sleep(0.3)
            refused = httpx.post(f"{server.url}{PREDICT}", content=ONE_ROW)
            probe = httpx.get(f"{server.url}/v2/health/ready")
            slow.sendall(ONE_ROW[5:])
            finished = read_status(slow)
        after = httpx.post(f"{server.url}{PREDICT}", content=ONE_ROW)
    finally:
        stop_server(server)
    assert (refused.status_code, refused.json()) == (429, {"error": "more than 1 requests in flight"})
    assert probe.status_code == 200  # probes are never refused
    assert (finished, after.status_code) == (200, 200)


def read_status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        head += sock.recv(4096)
    return int(head.split()[1])


@pytest.mark.parametrize("runtime", ["litert", "tensorflow"])
def test_timeout_holds_on_both_runtimes(model_root: Path, runtime: str) -> None:
    # 100,000 rows (2 MB of JSON) take about 16 ms on LiteRT here, 16 times the timeout; 1,024 rows took
    # 0.2 ms since the JSON paths got fast, and came back 200 inside it.
    server = start_server(
        model_root,
        TWINSERVE_RUNTIME=runtime,
        TWINSERVE_TIMEOUT_SECONDS="0.001",
        TWINSERVE_MAX_BATCH_ROWS=str(SLOW_ROWS),
    )
    try:
        big = httpx.post(f"{server.url}{PREDICT}", content=body({"instances": [ROW] * SLOW_ROWS}))
        probe = httpx.get(f"{server.url}/v2/health/ready")
    finally:
        stop_server(server)
    assert (big.status_code, big.json()) == (504, {"error": "no answer within 0.001s"})
    assert probe.status_code == 200


def test_a_body_that_never_arrives_gets_408_and_the_connection_closes(guarded: Server) -> None:
    head = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode()
    response = raw_request(guarded.port, head + ONE_ROW, wait=10)
    assert status_and_error(response) == (408, "request body not received within 1s")
    assert b"connection: close" in response.lower()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(guarded: Server) -> None:
    head = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**9}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=5) as sock:
        sock.sendall(head)  # and not one byte of the body
        response = read_until_closed(sock)
    assert status_and_error(response) == (413, "request body exceeds the limit of 6291456 bytes")


def test_oversized_headers_get_431(guarded: Server) -> None:
    response = raw_request(guarded.port, b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
    assert status_and_error(response) == (431, "request line and headers exceed the limit of 16384 bytes")


def test_a_whole_oversized_header_block_in_one_write_is_refused_not_answered(guarded: Server) -> None:
    """The limit holds inside one read too: the parser's callbacks count, so a complete 120 KB head
    sent at once is refused with 431 and never reaches the model."""
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 1000) for i in range(120))
    request = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    response = raw_request(guarded.port, request)
    assert status_and_error(response) == (431, "request line and headers exceed the limit of 16384 bytes")
    assert response.count(b"HTTP/1.1") == 1  # one answer: the refusal, not the route's
    assert httpx.get(f"{guarded.url}/v2/health/live").status_code == 200


def test_a_64_mb_header_line_leaves_memory_flat(guarded: Server) -> None:
    before = rss_kib(guarded.process.pid)
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        try:
            for _ in range(64):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early, as it should be
    grown_mib = (rss_kib(guarded.process.pid) - before) / 1024
    assert grown_mib < 8
    assert httpx.get(f"{guarded.url}/v2/health/live").status_code == 200


def test_slow_header_senders_are_closed_and_idle_connections_too(guarded: Server) -> None:
    port = guarded.port
    slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
    request = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    closed: set[int] = set()
    for byte in range(len(request)):  # one byte per socket every 0.2 s: headers never complete in time
        for index, sock in enumerate(slow):
            if index not in closed:
                try:
                    sock.sendall(request[byte : byte + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed.add(index)
        time.sleep(0.2)
        if len(closed) == len(slow):
            break
    answers = [read_until_closed(sock) for sock in slow]
    assert all(answer == b"" or answer.startswith(b"HTTP/1.1 408") for answer in answers)
    assert [read_until_closed(sock) for sock in idle] == [b""] * 5
    for sock in slow + idle:
        sock.close()
    assert httpx.get(f"{guarded.url}/v2/health/live").status_code == 200


def test_connections_beyond_the_cap_are_refused_with_503(guarded: Server) -> None:
    port = guarded.port
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    try:
        time.sleep(0.2)
        response = raw_request(port, b"")
        assert status_and_error(response) == (
            503,
            "this worker already holds 40 open connections; retry shortly",
        )
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{guarded.url}/v2/health/live").status_code == 200


def test_concurrent_worst_case_bodies_leave_memory_bounded_by_the_settings(guarded: Server) -> None:
    """Twelve concurrent 6 MiB bodies of `[[],[],…]` (each would parse into ~230 MB of lists) are
    refused by their count of JSON items before any is built; the worker grows by a few MiB."""
    worst = b'{"instances": [' + b"[]," * (2 * 1024 * 1024 - 8) + b"[]]}"
    assert len(worst) < 6 * 1024 * 1024
    before = rss_kib(guarded.process.pid)
    peak = [before]
    answers: list[tuple[int, str]] = []

    def send() -> None:
        response = httpx.post(f"{guarded.url}{PREDICT}", content=worst, timeout=60)
        answers.append((response.status_code, response.json()["error"]))
        peak[0] = max(peak[0], rss_kib(guarded.process.pid))

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == 12
    assert {status for status, _ in answers} <= {413, 503}  # refused by item count, or by the byte budget
    assert any("JSON arrays, objects and values; the model takes at most" in e for _, e in answers)
    grown_mib = (peak[0] - before) / 1024
    assert grown_mib < 100, f"the worker grew {grown_mib:.0f} MiB"
    assert httpx.post(f"{guarded.url}{PREDICT}", content=ONE_ROW).status_code == 200


def test_a_worker_holding_its_byte_budget_answers_503_and_recovers(model_root: Path) -> None:
    """Bodies still arriving count against TWINSERVE_MAX_BUFFERED_BYTES: past it a request gets 503
    (retry), and once they are answered the budget is free again."""
    server = start_server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_MAX_BUFFERED_BYTES=str(1 << 20))
    try:
        head = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {900_000}\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
            slow.sendall(head + b"x" * 800_000)  # holds 800 KB of the 1 MiB budget, still sending
            time.sleep(0.5)
            refused = httpx.post(f"{server.url}{PREDICT}", content=b" " * 400_000, timeout=30)
            assert refused.status_code == 503
            assert "this worker already holds" in refused.json()["error"]
        time.sleep(0.5)  # the slow one is gone, its bytes given back
        assert httpx.post(f"{server.url}{PREDICT}", content=ONE_ROW, timeout=30).status_code == 200
    finally:
        stop_server(server)
