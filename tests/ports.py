"""Free loopback ports for the servers the tests start.

A port the kernel picks (bind to port 0) lies in its ephemeral range, where every outgoing
connection on the machine also takes its local port. A server that loads a model for ten seconds
before it binds can then find its port taken by some other test's client: EADDRINUSE. So ports
are handed out below that range, in turn, through a counter every test process on the machine
shares (the three tiers run at once, each with its own workers), and each is checked free
before it is handed out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from pathlib import Path

_COUNTER = Path(tempfile.gettempdir()) / "twinserve-test-ports"
_SPAN = 10_000  # ports the counter cycles through; a run takes a few hundred


def _reserved_span() -> range | None:
    """Loopback ports outside the kernel's ephemeral range, or None when it leaves too few."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return None
    if low - _SPAN >= 1024:
        return range(low - _SPAN, low)
    if 65536 - (high + 1) >= _SPAN:
        return range(high + 1, high + 1 + _SPAN)
    return None


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_ports(count: int) -> list[int]:
    """`count` distinct ports the kernel picks: each is held until all are found."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports no other test process on this machine is handed meanwhile."""
    span = _reserved_span()
    if span is None:
        return _kernel_ports(count)
    ports: list[int] = []
    with _COUNTER.open("a+") as counter:
        fcntl.flock(counter, fcntl.LOCK_EX)  # released when the file closes
        counter.seek(0)
        text = counter.read().strip()
        position = int(text) if text.isdigit() else os.getpid()
        for _ in range(len(span)):
            port = span[position % len(span)]
            position += 1
            if _is_free(port):
                ports.append(port)
                if len(ports) == count:
                    break
        counter.seek(0)
        counter.truncate()
        counter.write(str(position % len(span)))
    if len(ports) < count:
        raise RuntimeError(f"fewer than {count} free loopback ports in {span.start}-{span.stop - 1}")
    return ports


def free_port() -> int:
    return free_ports(1)[0]
