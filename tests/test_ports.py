"""The test ports: outside the kernel's ephemeral range, never handed to two processes, never taken."""

from __future__ import annotations

import multiprocessing
import socket
from pathlib import Path

import pytest

from tests import ports


@pytest.fixture(autouse=True)
def own_counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_COUNTER", tmp_path / "counter")


def _take(count: int, out: multiprocessing.Queue) -> None:
    out.put([port for _ in range(count) for port in ports.free_ports(2)])


def test_processes_taking_ports_at_once_never_share_one() -> None:
    forked = multiprocessing.get_context("fork")
    out = forked.Queue()
    takers = [forked.Process(target=_take, args=(40, out)) for _ in range(4)]
    for taker in takers:
        taker.start()
    taken = [port for _ in takers for port in out.get(timeout=60)]
    for taker in takers:
        taker.join(timeout=60)
    assert len(taken) == 4 * 40 * 2
    assert len(set(taken)) == len(taken)


def test_ports_lie_outside_the_range_the_kernel_gives_outgoing_connections() -> None:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()) as client,
    ):
        assert low <= client.getsockname()[1] <= high  # what an outgoing connection takes
    assert all(not low <= port <= high for port in ports.free_ports(50))


def test_a_port_something_listens_on_is_passed_over() -> None:
    first = ports.free_port()
    ports._COUNTER.write_text(str(ports._reserved_span().index(first)))  # the counter back on it
    with socket.create_server(("127.0.0.1", first)):
        again = ports.free_ports(3)
    assert first not in again
