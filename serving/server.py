"""The server process: uvicorn with a drain on SIGTERM, and a supervisor that keeps N workers alive."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

import uvicorn

from serving.http_server import DRAINING

logger = logging.getLogger("uvicorn.error")
MAX_START_FAILURES = 5  # workers in a row that die before serving: a crash loop, so stop
FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 10.0
ACCEPT_QUEUE_SECONDS = 0.2
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
DROP_EVERY_PACKET = struct.pack("HBBI", 0x06, 0, 0, 0)  # classic BPF: `ret #0`


class DrainingServer(uvicorn.Server):
    """On SIGTERM: readiness turns false at once, the server keeps serving for `drain_seconds`
    (so load balancers stop routing here), then stops accepting and lets in-flight requests finish."""

    def __init__(
        self, config: uvicorn.Config, drain_seconds: float, on_started: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit and self.on_started is not None:
            self.on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        already_draining = DRAINING.is_set()
        DRAINING.set()
        if already_draining or self.drain_seconds == 0:
            super().handle_exit(sig, frame)
            return
        timer = threading.Timer(self.drain_seconds, self._end_drain, (sig, frame))
        timer.daemon = True
        timer.start()

    def _end_drain(self, sig: int, frame: FrameType | None) -> None:
        """From the drain timer's thread: no new handshakes, a moment to accept the ones queued, then stop."""
        refuse_new_connections([sock for server in self.servers for sock in server.sockets])
        time.sleep(ACCEPT_QUEUE_SECONDS)
        super().handle_exit(sig, frame)


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


def _worker(
    config: uvicorn.Config, drain_seconds: float, sock: socket.socket, slot: int, started: Event
) -> None:
    def serving() -> None:
        started.set()
        logger.info("Worker %d (pid %d) serving", slot, os.getpid())

    config.configure_logging()  # a spawned process starts with logging unconfigured
    DrainingServer(config, drain_seconds, serving).run(sockets=[sock])  # exits 3 if the model never loads


class Supervisor:
    """Runs `workers` processes on one listening socket and replaces any that dies, after a back-off.

    Only SIGTERM/SIGINT stop the server: they are forwarded so each worker drains, and the
    supervisor's own copy of the socket is closed, so once the workers stop accepting, new
    connections are refused rather than left in a backlog nobody reads. Workers that keep
    dying before they serve (a crash loop) stop the server with a message instead of spinning.
    """

    def __init__(self, config: uvicorn.Config, drain_seconds: float, workers: int) -> None:
        self.config = config
        self.drain_seconds = drain_seconds
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.processes: dict[int, tuple[SpawnProcess, Event]] = {}  # slot -> (process, started event)
        self.respawn_at: dict[int, float] = {}
        self.start_failures = 0
        self.ever_started = False
        self.stop_signal: int | None = None
        self.wakeup_read, self.wakeup_write = os.pipe()
        self.sock: socket.socket | None = None

    def run(self) -> int:
        self.sock = self.config.bind_socket()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self.workers):
            self._spawn(slot)
        failure = None
        while self.stop_signal is None and failure is None:
            failure = self._watch()
        self._stop(self.stop_signal or signal.SIGTERM)
        if failure is not None:
            logger.error(failure)
            return 1
        return 0

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.stop_signal = sig
        os.write(self.wakeup_write, b"x")

    def _spawn(self, slot: int) -> None:
        started = self.context.Event()
        process = self.context.Process(
            target=_worker, args=(self.config, self.drain_seconds, self.sock, slot, started), daemon=False
        )
        process.start()
        self.processes[slot] = (process, started)
        logger.info("Worker %d spawned (pid %d)", slot, process.pid)

    def _watch(self) -> str | None:
        """Wait for a death, a signal or a due respawn; returns a reason to stop, if any."""
        now = time.monotonic()
        timeout = max(0.0, min(self.respawn_at.values()) - now) if self.respawn_at else None
        sentinels = [process.sentinel for process, _ in self.processes.values()]
        wait([*sentinels, self.wakeup_read], timeout)
        if self.stop_signal is not None:
            return None
        self.ever_started |= any(started.is_set() for _, started in self.processes.values())
        for slot, (process, started) in list(self.processes.items()):
            if process.is_alive():
                continue
            process.join()
            del self.processes[slot]
            reason = self._died(slot, process, started.is_set())
            if reason:
                return reason
        for slot, due in list(self.respawn_at.items()):
            if due <= time.monotonic():
                del self.respawn_at[slot]
                self._spawn(slot)
        return None

    def _died(self, slot: int, process: SpawnProcess, served: bool) -> str | None:
        code = process.exitcode
        if served:
            self.ever_started, self.start_failures = True, 0
        else:
            self.start_failures += 1
            if not self.ever_started or self.start_failures >= MAX_START_FAILURES:
                return (
                    f"worker {slot} (pid {process.pid}) exited with code {code} before serving, "
                    f"{self.start_failures} time(s) in a row; stopping"
                )
        backoff = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**self.start_failures)
        logger.warning(
            "Worker %d (pid %d) exited with code %s; replacing it in %.2fs", slot, process.pid, code, backoff
        )
        self.respawn_at[slot] = time.monotonic() + backoff
        return None

    def _stop(self, sig: int) -> None:
        """Close our copy of the socket, forward the signal so each worker drains, and wait for them."""
        if self.sock is not None:
            self.sock.close()
        for process, _ in self.processes.values():
            if process.is_alive() and process.pid:
                os.kill(process.pid, sig)
        for process, _ in self.processes.values():
            process.join()


def supervise(config: uvicorn.Config, drain_seconds: float, workers: int) -> int:
    return Supervisor(config, drain_seconds, workers).run()
