"""Lines held for a turn of the event loop: written together, never split, each write atomic on a pipe."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import uvloop

from serving.stdout import PIPE_BUF, HeldLines, write_whole


def _turns(lines_per_turn: list[list[bytes]], write: Callable[[bytes], None] | None = None) -> list[bytes]:
    """The writes HeldLines makes when each inner list is added in one turn of the loop (recorded, or
    made with `write`)."""
    writes: list[bytes] = []

    async def run() -> None:
        held = HeldLines(asyncio.get_running_loop(), write or writes.append)
        for lines in lines_per_turn:
            for line in lines:
                held.add(line)
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    uvloop.run(run())
    return writes


def test_the_lines_of_one_turn_leave_in_one_write_at_its_end() -> None:
    assert _turns([[b"a\n", b"b\n"], [b"c\n"]]) == [b"a\nb\n", b"c\n"]


def test_no_write_exceeds_pipe_buf_and_no_line_is_split_or_lost() -> None:
    line = b"x" * 199 + b"\n"
    lines = [line] * (3 * PIPE_BUF // len(line))
    writes = _turns([lines])
    assert all(len(write) <= PIPE_BUF for write in writes)
    assert b"".join(writes) == b"".join(lines)
    assert all(write.endswith(b"\n") for write in writes)


def test_a_line_longer_than_pipe_buf_is_written_whole_on_its_own() -> None:
    long = b"y" * (PIPE_BUF + 10) + b"\n"
    assert _turns([[b"a\n", long, b"b\n"]]) == [b"a\n", long, b"b\n"]


def test_two_processes_writing_to_one_pipe_never_interleave_their_lines() -> None:
    read, write = os.pipe()
    children = []
    for name in (b"first", b"second"):
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest, whatever happens
            try:
                os.close(read)
                os.dup2(write, 1)
                _turns([[name * 30 + b"\n"] * 40] * 25, write_whole)
            finally:
                os._exit(0)
        children.append(pid)
    os.close(write)
    received = b""
    while chunk := os.read(read, 1 << 16):
        received += chunk
    os.close(read)
    for pid in children:
        os.waitpid(pid, 0)
    lines = received.splitlines()
    assert sorted(set(lines)) == [b"first" * 30, b"second" * 30]
    assert len(lines) == 2 * 40 * 25
