"""The supervisor: N worker processes on one listening socket, kept alive, stopped within a deadline.

It replaces a worker that dies (after a back-off) or whose event loop stops turning (its
heartbeat goes stale), stops on SIGTERM/SIGINT by draining every worker and killing what is
left at the deadline, and its workers die with it even when it is SIGKILLed. The workers take new
connections in turn, through a board it shares with them (`serving/balance.py`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from types import FrameType
from typing import Any

import uvicorn

from serving.balance import Board, new_board, not_serving
from serving.server import DrainingServer

logger = logging.getLogger("uvicorn.error")
MAX_START_FAILURES = 5  # workers in a row that die before serving: a crash loop, so stop
FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 10.0
HUNG_CHECK_SECONDS = 1.0  # how often, at most, the supervisor looks at the heartbeats
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    drain_seconds: float  # each worker's not-ready time after the stop signal
    grace_seconds: float  # then, the most a worker may take to finish in-flight requests and exit
    hung_seconds: float  # a serving worker whose loop has not beaten for this long is killed


def die_with_parent(parent_pid: int) -> None:
    """Exit when the supervisor is gone, however it went (a SIGKILL runs none of its code).

    Linux delivers SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); elsewhere a thread
    watches for the process being re-parented. Either way, a supervisor that died before this
    ran is caught by the parent check."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        watched = sys.platform.startswith("linux") and libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        watched = False
    if os.getppid() != parent_pid:
        os._exit(1)
    if not watched:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()


def _worker(
    config: uvicorn.Config,
    drain_seconds: float,
    sock: socket.socket,
    slot: int,
    beat: ctypes.c_double,
    parent_pid: int,
    board: Any,
) -> None:
    die_with_parent(parent_pid)
    config.configure_logging()  # a spawned process starts with logging unconfigured

    def heartbeat() -> None:
        if beat.value == 0.0:
            logger.info("Worker %d (pid %d) serving", slot, os.getpid())
        beat.value = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the host

    server = DrainingServer(config, drain_seconds, heartbeat, Board(board, slot))
    server.run(sockets=[sock])  # exits 3 if the model never loads


@dataclass
class Worker:
    process: SpawnProcess
    beat: ctypes.c_double  # 0 until the worker serves, then its loop's last tick (monotonic)

    @property
    def served(self) -> bool:
        return self.beat.value > 0.0


class Supervisor:
    """Runs `workers` processes on one listening socket and replaces any that dies or hangs.

    Only SIGTERM/SIGINT stop the server. The handler only records the signal and writes to a
    non-blocking wakeup pipe, so repeated signals are harmless. The supervisor then closes its
    own copy of the socket (so once the workers stop accepting, new connections are refused
    rather than left in a backlog nobody reads), sends each worker one SIGTERM, and gives them
    the drain plus the grace period; a worker still running after that is SIGKILLed with a log
    line, and the server exits 1. Workers that keep dying before they serve (a crash loop)
    stop the server with a message instead of spinning.
    """

    def __init__(self, config: uvicorn.Config, workers: int, limits: Limits) -> None:
        self.config = config
        self.workers = workers
        self.limits = limits
        self.context = multiprocessing.get_context("spawn")
        self.running: dict[int, Worker] = {}  # slot -> worker
        self.respawn_at: dict[int, float] = {}
        self.start_failures = 0
        self.ever_started = False
        self.stop_signal: int | None = None
        self.wakeup_read, self.wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_write, False)
        self.sock: socket.socket | None = None
        self.board = new_board(self.context, workers)  # the workers take connections in turn through it

    def run(self) -> int:
        self.sock = self.config.bind_socket()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self.workers):
            self._spawn(slot)
        failure = None
        while self.stop_signal is None and failure is None:
            failure = self._watch()
        killed = self._stop()
        if failure is not None:
            logger.error(failure)
        return 1 if failure is not None or killed else 0

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.stop_signal = sig
        with contextlib.suppress(BlockingIOError):  # the pipe is full of earlier wakeups: one is enough
            os.write(self.wakeup_write, b"x")

    def _spawn(self, slot: int) -> None:
        beat = self.context.Value(ctypes.c_double, 0.0, lock=False)
        args = (self.config, self.limits.drain_seconds, self.sock, slot, beat, os.getpid(), self.board)
        process = self.context.Process(target=_worker, args=args, daemon=False)
        process.start()
        self.running[slot] = Worker(process, beat)
        logger.info("Worker %d spawned (pid %d)", slot, process.pid)

    def _watch(self) -> str | None:
        """Wait for a death, a signal, a due respawn or the next heartbeat check; returns a reason
        to stop, if any."""
        timeout = min(HUNG_CHECK_SECONDS, self.limits.hung_seconds / 4)
        if self.respawn_at:
            timeout = max(0.0, min(timeout, min(self.respawn_at.values()) - time.monotonic()))
        wait([*(w.process.sentinel for w in self.running.values()), self.wakeup_read], timeout)
        if self.stop_signal is not None:
            return None
        self._kill_hung()
        self.ever_started |= any(w.served for w in self.running.values())
        for slot, worker in list(self.running.items()):
            if worker.process.is_alive():
                continue
            worker.process.join()
            del self.running[slot]
            not_serving(self.board, slot)
            reason = self._died(slot, worker)
            if reason:
                return reason
        for slot, due in list(self.respawn_at.items()):
            if due <= time.monotonic():
                del self.respawn_at[slot]
                self._spawn(slot)
        return None

    def _kill_hung(self) -> None:
        """SIGKILL a serving worker whose loop has stopped turning; its death then replaces it."""
        now = time.monotonic()
        for slot, worker in self.running.items():
            silent = now - worker.beat.value
            if worker.served and silent > self.limits.hung_seconds and worker.process.is_alive():
                logger.error(
                    "Worker %d (pid %d) has not run its event loop for %.1fs (limit %.1fs); killing it",
                    slot, worker.process.pid, silent, self.limits.hung_seconds,
                )  # fmt: skip
                worker.process.kill()

    def _died(self, slot: int, worker: Worker) -> str | None:
        code, pid = worker.process.exitcode, worker.process.pid
        if worker.served:
            self.ever_started, self.start_failures = True, 0
        else:
            self.start_failures += 1
            if not self.ever_started or self.start_failures >= MAX_START_FAILURES:
                return (
                    f"worker {slot} (pid {pid}) exited with code {code} before serving, "
                    f"{self.start_failures} time(s) in a row; stopping"
                )
        backoff = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**self.start_failures)
        logger.warning(
            "Worker %d (pid %d) exited with code %s; replacing it in %.2fs", slot, pid, code, backoff
        )
        self.respawn_at[slot] = time.monotonic() + backoff
        return None

    def _stop(self) -> bool:
        """Drain every worker within the deadline; returns whether any had to be killed."""
        if self.sock is not None:
            self.sock.close()
        for worker in self.running.values():
            if worker.process.is_alive() and worker.process.pid:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.limits.drain_seconds + self.limits.grace_seconds
        alive = [w.process for w in self.running.values() if w.process.is_alive()]
        while alive and (left := deadline - time.monotonic()) > 0:
            wait([p.sentinel for p in alive], left)
            alive = [p for p in alive if p.is_alive()]
        for process in alive:
            logger.error(
                "Worker pid %d still running %.1fs after the stop signal; killing it",
                process.pid, self.limits.drain_seconds + self.limits.grace_seconds,
            )  # fmt: skip
            process.kill()
        for worker in self.running.values():
            worker.process.join()
        return bool(alive)


def supervise(config: uvicorn.Config, workers: int, limits: Limits) -> int:
    return Supervisor(config, workers, limits).run()
