"""The supervisor with real processes: workers replaced when they die or hang, every signal
sequence ends within drain + grace, and no worker outlives the supervisor."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.serving.cases import PREDICT, ROW, body
from tests.serving.conftest import Server, start_server, stop_server

ONE_ROW = body({"instances": [ROW]})
DRAIN, TIMEOUT = 0.3, 1.0
DEADLINE = DRAIN + (int(TIMEOUT) + 1 + 2.0)  # drain + grace, as serving/__main__.py computes it


def two_workers(model_root: Path, **settings: str) -> Server:
    return start_server(
        model_root,
        TWINSERVE_RUNTIME="litert",
        TWINSERVE_WORKERS="2",
        TWINSERVE_DRAIN_SECONDS=str(DRAIN),
        TWINSERVE_TIMEOUT_SECONDS=str(TIMEOUT),
        **settings,
    )


def worker_pids(server: Server) -> dict[int, int]:
    """The latest worker of each slot, as the supervisor logs them."""
    spawned = re.findall(r"Worker (\d+) spawned \(pid (\d+)\)", server.log.read_text())
    return {int(slot): int(pid) for slot, pid in spawned}


def serving_pids(server: Server, workers: int = 2) -> dict[int, int]:
    """Wait until the latest worker of every slot has loaded its model and serves."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids, log = worker_pids(server), server.log.read_text()
        if len(pids) == workers and all(f"Worker {s} (pid {p}) serving" in log for s, p in pids.items()):
            return pids
        time.sleep(0.1)
    raise AssertionError(f"workers not serving within 60 s: {server.log.read_text()}")


def replacement(server: Server, slot: int, old: int) -> dict[int, int]:
    """Wait until `slot` has a new worker that serves."""
    deadline = time.monotonic() + 30
    while worker_pids(server)[slot] == old and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_pids(server)[slot] != old, f"worker {slot} not replaced: {server.log.read_text()}"
    return serving_pids(server)


def running(pid: int) -> bool:
    """True while any thread of the process is still alive. The main thread alone is not enough:
    it turns zombie before its siblings have exited, and their shared sockets close only with
    the last of them."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return any(state not in ("Z", "X") for state in states)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def owner_of(connection: socket.socket, candidates: list[int]) -> int:
    """The process holding the server side of a loopback connection, from /proc/net/tcp."""
    client_port = connection.getsockname()[1]
    server_port = connection.getpeername()[1]
    inode = next(
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split())
        and int(fields[1].split(":")[1], 16) == server_port
        and int(fields[2].split(":")[1], 16) == client_port
    )
    for pid in candidates:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except FileNotFoundError:
                continue
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def test_a_killed_worker_is_replaced_and_the_others_keep_serving(model_root: Path) -> None:
    server = two_workers(model_root)
    try:
        first = serving_pids(server)
        os.kill(first[0], signal.SIGKILL)
        statuses = []
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while worker_pids(server)[0] == first[0]:
                statuses.append(http.post(PREDICT, content=ONE_ROW).status_code)
                assert len(statuses) < 100_000, "worker 0 never replaced"
            replaced = replacement(server, 0, first[0])
            statuses += [http.post(PREDICT, content=ONE_ROW).status_code for _ in range(50)]
        log = server.log.read_text()
        assert replaced[0] != first[0]
        assert replaced[1] == first[1]
        assert f"Worker 0 (pid {first[0]}) exited with code -9; replacing it" in log
        assert set(statuses) == {200}
        assert server.process.poll() is None
        assert running(replaced[0])
    finally:
        stop_server(server)


def test_a_crash_loop_stops_the_server_with_a_message(model_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(model_root, root)
    server = two_workers(root)
    pids = serving_pids(server)
    shutil.rmtree(root)  # every replacement will fail to load its model
    os.kill(pids[0], signal.SIGKILL)
    assert server.process.wait(timeout=120) == 1
    log = server.log.read_text()
    assert "before serving, 5 time(s) in a row; stopping" in log
    # the first, its replacement after the kill, then four more that die at start: no spinning
    assert len(re.findall(r"Worker 0 spawned", log)) == 6
    assert not any(running(pid) for pid in pids.values())


def group_then_supervisor(process_group: int, supervisor: int) -> None:
    """What a process manager stopping the group does: every process gets SIGTERM, and each
    worker gets it again when the supervisor forwards it."""
    os.killpg(process_group, signal.SIGTERM)
    os.kill(supervisor, signal.SIGTERM)


def ctrl_c_twice(process_group: int, supervisor: int) -> None:
    """What an impatient terminal does: SIGINT to the whole group, twice."""
    os.killpg(process_group, signal.SIGINT)
    os.killpg(process_group, signal.SIGINT)


class Load:
    """Four keep-alive clients posting until stopped; refusals at the end are expected."""

    def __init__(self, url: str) -> None:
        self.url, self.stopping = url, threading.Event()
        self.clients = [threading.Thread(target=self._post) for _ in range(4)]

    def __enter__(self) -> Load:
        for client in self.clients:
            client.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for client in self.clients:
            client.join(timeout=30)

    def _post(self) -> None:
        with httpx.Client(base_url=self.url, timeout=DEADLINE + 5) as http:
            while not self.stopping.is_set():
                try:
                    http.post(PREDICT, content=ONE_ROW)
                except httpx.TransportError:
                    return


@pytest.mark.parametrize("send", [group_then_supervisor, ctrl_c_twice])
def test_repeated_signals_under_load_always_stop_cleanly_within_the_deadline(
    model_root: Path, send: Callable[[int, int], None]
) -> None:
    """15 rounds each, the signals landing at five different points of serving, three times each: every
    round exits 0 (nothing had to be killed) within drain + grace, and leaves no worker behind."""
    for round_ in range(15):
        server = two_workers(model_root)
        pids = serving_pids(server)
        with Load(server.url):
            time.sleep(0.05 * (round_ % 5))
            send(server.process.pid, server.process.pid)
            try:
                code = server.process.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired as timed_out:
                stop_server(server)
                message = f"round {round_}: still running after {DEADLINE}s\n{server.log.read_text()}"
                raise AssertionError(message) from timed_out
        assert code == 0, f"round {round_}: exit {code}\n{server.log.read_text()}"
        assert not any(running(pid) for pid in pids.values()), f"round {round_}: a worker outlived it"


def test_a_hung_worker_is_replaced_and_its_clients_get_an_error_not_a_hang(model_root: Path) -> None:
    server = two_workers(model_root, TWINSERVE_HUNG_WORKER_SECONDS="1")
    try:
        first = serving_pids(server)
        connections = []
        for _ in range(8):  # keep-alive connections, spread over both workers by the shared accept queue
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=60)
            connection.sendall(request())
            assert read_response(connection).startswith(b"HTTP/1.1 200")
            connections.append(connection)
        owners = [owner_of(connection, list(first.values())) for connection in connections]
        hung = owners[0]
        os.kill(hung, signal.SIGSTOP)  # its loop stops turning; the kernel still queues its clients' bytes
        outcomes = []
        for connection, owner in zip(connections, owners, strict=True):
            connection.sendall(request())
            outcomes.append((owner, read_response(connection)))  # a hang would raise socket.timeout (60 s)
            connection.close()
        slot = next(s for s, pid in first.items() if pid == hung)
        replacement(server, slot, hung)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            after = {http.post(PREDICT, content=ONE_ROW).status_code for _ in range(20)}
        log = server.log.read_text()
    finally:
        stop_server(server)
    silent = rf"Worker {slot} \(pid {hung}\) has not run its event loop for [\d.]+s \(limit 1.0s\)"
    assert re.search(silent, log)
    assert f"Worker {slot} (pid {hung}) exited with code -9; replacing it" in log
    for owner, response in outcomes:
        if owner == hung:
            assert response == b"", "a client of the hung worker is told by the connection closing"
        else:
            assert response.startswith(b"HTTP/1.1 200")
    assert after == {200}
    assert not running(hung)


def request() -> bytes:
    return f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(ONE_ROW)}\r\n\r\n".encode() + ONE_ROW


def read_response(connection: socket.socket) -> bytes:
    """One whole response (headers and Content-Length body), or what arrived before the close."""
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                return received
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))
        while len(rest) < length and (chunk := connection.recv(65536)):
            rest += chunk
    except ConnectionResetError:
        return received
    return received


def test_a_worker_that_never_finishes_is_killed_at_the_deadline_and_the_exit_is_1(model_root: Path) -> None:
    server = two_workers(model_root)
    pids = serving_pids(server)
    os.kill(pids[1], signal.SIGSTOP)  # it cannot drain: only a SIGKILL ends it
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=DEADLINE + 5)
    finally:
        stop_server(server)
    log = server.log.read_text()
    assert code == 1
    assert f"Worker pid {pids[1]} still running {DEADLINE:.1f}s after the stop signal; killing it" in log
    assert not any(running(pid) for pid in pids.values())


def test_a_killed_supervisor_takes_its_workers_with_it(model_root: Path) -> None:
    server = two_workers(model_root)
    pids = serving_pids(server)
    server.process.kill()
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 2
    while any(running(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids.values()), "workers outlived a SIGKILLed supervisor"
    assert refuses_connections(server.port), "the port is still held: the next start could not bind it"
