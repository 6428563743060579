"""The server process: uvicorn with a drain on SIGTERM, and a small supervisor for several workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
from multiprocessing.connection import wait
from types import FrameType

import uvicorn

from serving.http_server import DRAINING


class DrainingServer(uvicorn.Server):
    """On SIGTERM: readiness turns false at once, the server keeps serving for `drain_seconds`
    (so load balancers stop routing here), then stops accepting and lets in-flight requests finish."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        already_draining = DRAINING.is_set()
        DRAINING.set()
        if already_draining or self.drain_seconds == 0:
            super().handle_exit(sig, frame)
            return
        timer = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


def _worker(config: uvicorn.Config, drain_seconds: float, sock: socket.socket) -> None:
    DrainingServer(config, drain_seconds).run(sockets=[sock])


def supervise(config: uvicorn.Config, drain_seconds: float, workers: int) -> int:
    """Run workers on one shared socket and forward SIGTERM/SIGINT to them so each drains.

    A worker that dies unexpectedly stops the whole container (the orchestrator restarts it)
    rather than being respawned silently.
    """
    sock = config.bind_socket()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(config, drain_seconds, sock)) for _ in range(workers)]
    for process in processes:
        process.start()
    stopping = threading.Event()

    def forward(sig: int, frame: FrameType | None) -> None:
        stopping.set()
        for process in processes:
            if process.pid and process.is_alive():
                os.kill(process.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    wait([p.sentinel for p in processes])
    if not stopping.is_set():
        forward(signal.SIGTERM, None)
    for process in processes:
        process.join()
    failed = any(p.exitcode not in (0, -signal.SIGTERM) for p in processes)
    return 1 if failed or not stopping.is_set() else 0
