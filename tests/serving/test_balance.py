"""New connections shared between the workers: a burst of keep-alive connections, as wrk or a proxy's
pool opens them, lands on every worker, and a worker that stops turning holds no connection up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from serving.balance import Board, not_serving
from serving.tools.bench.spread import held_by
from serving.tools.bench.wrk import lua
from tests.serving.cases import PREDICT, ROW, body
from tests.serving.conftest import stop_server
from tests.serving.test_supervisor import owner_of, read_response, request, serving_pids, two_workers
from tests.tool_paths import tool

ROWS = 20_000
ROUNDS = 4


def test_a_burst_of_keep_alive_connections_lands_on_every_worker(model_root: Path, tmp_path: Path) -> None:
    """wrk opens its connections within microseconds. With requests that keep a worker busy for a few
    milliseconds (20,000 rows, as an image's would), libuv's accept gave all of them to one worker."""
    script = tmp_path / "post.lua"
    script.write_text(lua(body({"instances": [ROW] * ROWS}).decode()))
    server = two_workers(model_root, TWINSERVE_MAX_BATCH_ROWS=str(ROWS))
    try:
        pids = list(serving_pids(server).values())
        splits = []
        for _ in range(ROUNDS):
            load = subprocess.Popen(
                [tool("WRK"), "-t1", "-c4", "-d2", "-s", script, f"{server.url}{PREDICT}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                time.sleep(1)
                splits.append(dict(zip(pids, held_by(server.port, pids), strict=True)))
            finally:
                load.wait(timeout=30)
    finally:
        stop_server(server)
    assert all(sum(split.values()) == 4 for split in splits), splits
    assert all(min(split.values()) >= 1 for split in splits), f"a worker left without connections: {splits}"
    totals = [sum(split[pid] for split in splits) for pid in pids]
    assert max(totals) - min(totals) <= ROUNDS, f"{4 * ROUNDS} connections split {totals}"


def test_a_stopped_worker_holds_no_new_connection_up(model_root: Path) -> None:
    """Its turn comes round, and the worker still turning takes the connection a moment later."""
    server = two_workers(model_root)
    try:
        pids = serving_pids(server)
        stopped, running = pids[0], pids[1]
        os.kill(stopped, signal.SIGSTOP)
        try:
            owners, answers = [], []
            for _ in range(10):
                with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
                    connection.sendall(request())
                    answers.append(read_response(connection))  # a held-up connection: socket.timeout
                    owners.append(owner_of(connection, [stopped, running]))
        finally:
            os.kill(stopped, signal.SIGCONT)
    finally:
        stop_server(server)
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    assert owners == [running] * 10


@pytest.fixture
def cells() -> list[int]:
    """A board of three slots, all serving, as the supervisor shares it: flags, then the turn."""
    return [1, 1, 1, 0]


def test_turns_go_round_the_serving_workers(cells: list[int]) -> None:
    boards = [Board(cells, slot) for slot in range(3)]
    taken = []
    for _ in range(6):
        taker = next(board for board in boards if board.mine())
        taken.append(taker.slot)
        taker.pass_turn()
    assert taken == [0, 1, 2, 0, 1, 2]
    assert [board.mine() for board in boards] == [True, False, False]


def test_a_worker_not_serving_is_passed_over_and_its_turn_taken(cells: list[int]) -> None:
    boards = [Board(cells, slot) for slot in range(3)]
    boards[0].pass_turn()  # slot 1's turn
    not_serving(cells, 1)  # it died: the supervisor marks it
    assert boards[0].mine()  # either takes what slot 1 would have
    assert boards[2].mine()
    boards[2].pass_turn()
    assert boards[2].turn() == 0  # round past slot 1
    boards[0].serve(False)  # slot 0 stops serving with its turn: it passes it on
    assert boards[0].turn() == 2
    assert not boards[0].mine()


def test_a_worker_alone_takes_every_connection() -> None:
    board = Board([1, 0], 0)
    for _ in range(ROUNDS):
        assert board.mine()
        board.pass_turn()
