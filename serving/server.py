"""One server process: uvicorn with a drain on SIGTERM/SIGINT, and a heartbeat from its event loop."""

from __future__ import annotations

import asyncio
import ctypes
import socket
import struct
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.server import STARTUP_FAILURE

from serving.balance import BalancedListener, Board
from serving.http_server import DRAINING

ACCEPT_QUEUE_SECONDS = 0.2
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
DROP_EVERY_PACKET = struct.pack("HBBI", 0x06, 0, 0, 0)  # classic BPF: `ret #0`


class DrainingServer(uvicorn.Server):
    """On SIGTERM or SIGINT: readiness turns false at once, the server keeps serving for
    `drain_seconds` (so load balancers stop routing here), then stops accepting and lets
    in-flight requests finish, for at most uvicorn's `timeout_graceful_shutdown`.

    The signal handler only sets flags, so any number of signals, in any order, re-enter it
    harmlessly; the event loop's tick (every 0.1 s) does the rest. `heartbeat` is called from
    that tick too: a loop that stops turning stops calling it.

    With a `board` (one of several workers on a shared socket), connections are accepted by a
    `BalancedListener`: the workers take them in turn (`serving/balance.py`).
    """

    def __init__(
        self,
        config: uvicorn.Config,
        drain_seconds: float,
        heartbeat: Callable[[], None] | None = None,
        board: Board | None = None,
    ) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.heartbeat = heartbeat
        self.board = board
        self.drain_ends: float | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup on shared sockets (lifespan, then listen), with its accepting done by a
        `BalancedListener` rather than the event loop's server."""
        if self.board is None or sockets is None:
            await super().startup(sockets)
            return
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config, board = self.config, self.board

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        self.servers = [
            BalancedListener(sock, create_protocol, board, config.backlog)  # type: ignore[misc]
            for sock in sockets
        ]
        self.started = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        DRAINING.set()
        if not self.started:
            self.should_exit = True  # still loading the model: nothing to drain

    async def on_tick(self, counter: int) -> bool:
        if self.heartbeat is not None:
            self.heartbeat()
        if DRAINING.is_set() and not self.should_exit:
            now = time.monotonic()
            if self.drain_ends is None:
                self.drain_ends = now + self.drain_seconds
            if now >= self.drain_ends:
                await self._end_drain()
        return await super().on_tick(counter)

    async def _end_drain(self) -> None:
        """No new handshakes, a moment to accept the ones already queued, then stop."""
        refuse_new_connections([sock for server in self.servers for sock in server.sockets])
        await asyncio.sleep(ACCEPT_QUEUE_SECONDS)
        self.should_exit = True


def refuse_new_connections(listeners: list[Any]) -> None:
    """Closing a listening socket resets the connections still in its accept queue, after their
    clients may have sent a request. On Linux, a socket filter that drops every packet first stops
    new handshakes from completing (a client's SYN is retried, then refused once the socket is
    closed), so the queue empties into the server. Elsewhere this does nothing."""
    program = ctypes.create_string_buffer(DROP_EVERY_PACKET)
    fprog = struct.pack("HL", 1, ctypes.addressof(program))
    for listener in listeners:
        try:
            listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        except OSError:
            return
