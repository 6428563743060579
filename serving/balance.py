"""Which worker takes a new connection: each in turn.

The workers share one listening socket. Left to the event loop (libuv accepts every pending
connection in one go), a burst of connections all goes to whichever worker wakes first: wrk's 4 or
8 keep-alive connections, or a proxy's few upstream ones, land on one worker while the others idle,
at half the pod's capacity on 2 workers. Here the workers take new connections in turn, through a
board in memory the supervisor shares between them: which workers are serving, and whose turn it
is. Every worker is woken by a pending connection; one whose turn it is not stops listening for a
moment (`STEP_SECONDS`) and looks again, so the worker whose turn it is takes it. If that one does not
within `DEFER_SECONDS` (busy with a long request, or hung), the worker waiting takes it: a connection
waits at most that, and a burst of them that much each while the other worker stays busy (a worker
busy for a few milliseconds still gets its share of a burst: taking it all would idle it after).

Turns, not counts of open connections: a busy worker's count is stale (the connections its clients
closed are only counted once its loop turns), and that would send a whole burst elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("uvicorn.error")
STEP_SECONDS = 0.0001
DEFER_SECONDS = 0.001
MAX_ACCEPTS_PER_WAKEUP = 16  # as libuv, several per wakeup when connections arrive one after another
RETRY_SECONDS = 1.0  # out of file descriptors or buffers: as asyncio's own accept waits


def new_board(context: Any, workers: int) -> Any:
    """The shared board: one serving flag per worker's slot, then whose turn it is."""
    return context.Array("i", workers + 1, lock=False)


class Board:
    """One worker's view of the board. Its reads and writes are plain stores to shared memory with no
    lock: a race costs at most a connection taken out of turn."""

    def __init__(self, cells: Any, slot: int) -> None:
        self.cells = cells
        self.slot = slot
        self.workers = len(cells) - 1

    def serve(self, serving: bool) -> None:
        self.cells[self.slot] = int(serving)
        if not serving and self.turn() == self.slot:
            self.pass_turn()

    def turn(self) -> int:
        return self.cells[self.workers]

    def mine(self) -> bool:
        """Whether this worker takes the next connection: its turn, or the turn of one not serving."""
        turn = self.turn()
        return turn == self.slot or not self.cells[turn]

    def pass_turn(self) -> None:
        """The turn to the next serving worker after this one (back to this one if it is alone)."""
        for step in range(1, self.workers + 1):
            slot = (self.slot + step) % self.workers
            if self.cells[slot] or slot == self.slot:
                self.cells[self.workers] = slot
                return


def not_serving(cells: Any, slot: int) -> None:
    """For the supervisor, when a worker dies: its siblings stop leaving connections to it."""
    cells[slot] = 0


class BalancedListener:
    """Accepts from a shared listening socket for uvicorn, in place of `loop.create_server`'s server:
    `close`, `wait_closed` and `sockets` are what uvicorn and the drain use of one."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        board: Board,
        backlog: int,
    ) -> None:
        self.sockets = [sock]
        self._sock = sock
        self._factory = protocol_factory
        self._board = board
        self._loop = asyncio.get_running_loop()
        self._resume: asyncio.TimerHandle | None = None
        self._waiting_since: float | None = None  # when this worker first left what is pending to a turn
        self._turn_left_to = -1
        self._closed = False
        sock.setblocking(False)
        sock.listen(backlog)
        board.serve(True)
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(MAX_ACCEPTS_PER_WAKEUP):
            if not self._board.mine() and not self._waited_long_enough():
                self._pause()
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                self._waiting_since = None
                return  # none left: a sibling took it, or the client gave up
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection waits in the queue
                logger.error("Cannot accept a connection: %s; retrying in %gs", exc, RETRY_SECONDS)
                self._loop.remove_reader(self._sock.fileno())
                self._resume = self._loop.call_later(RETRY_SECONDS, self._listen_again)
                return
            self._waiting_since = None
            self._board.pass_turn()
            task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
            task.add_done_callback(_connection_started)

    def _waited_long_enough(self) -> bool:
        """Whether what is pending has been left to the turn's worker for `DEFER_SECONDS` (wall time: a
        busy loop turns slower than its timers ask); a wait starts when the turn is a new one."""
        turn, now = self._board.turn(), self._loop.time()
        if self._waiting_since is None or turn != self._turn_left_to:
            self._waiting_since, self._turn_left_to = now, turn
        return now - self._waiting_since >= DEFER_SECONDS

    def _pause(self) -> None:
        """Not listening for a step, so the worker whose turn it is takes what is pending."""
        self._loop.remove_reader(self._sock.fileno())
        self._resume = self._loop.call_later(STEP_SECONDS, self._listen_again)

    def _listen_again(self) -> None:
        self._resume = None
        if self._closed:
            return
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def close(self) -> None:
        """Stop accepting; uvicorn closes the socket itself."""
        if self._closed:
            return
        self._closed = True
        if self._resume is not None:
            self._resume.cancel()
        else:
            self._loop.remove_reader(self._sock.fileno())
        self._board.serve(False)

    async def wait_closed(self) -> None:
        return None


def _connection_started(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:  # reset before it was made: gone
        logger.debug("Connection lost as it was accepted: %s", task.exception())
