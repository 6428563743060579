"""Lines on stdout, which several worker processes share (a pipe under Kubernetes): each line whole."""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the Lambda handler writes through this module: asyncio's import is ~15 ms of its init
    import asyncio

PIPE_BUF = getattr(select, "PIPE_BUF", 512)  # POSIX: a write of at most this many bytes to a pipe is atomic


def write_whole(data: bytes) -> None:
    """All of `data` to stdout, in one write unless the kernel takes less."""
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


class HeldLines:
    """Lines held until the end of the event loop's turn, then written together, at most `PIPE_BUF`
    bytes a write: so two workers' lines never interleave, and under load one write carries many lines
    where each line had cost a write (the image runs Python unbuffered). A line is never split."""

    def __init__(self, loop: asyncio.AbstractEventLoop, write: Callable[[bytes], None] = write_whole) -> None:
        self._loop = loop
        self._write = write
        self._held: list[bytes] = []
        self._size = 0

    def add(self, line: bytes) -> None:
        if self._size + len(line) > PIPE_BUF:
            self.flush()
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(line)
        self._size += len(line)

    def flush(self) -> None:
        if self._held:
            held, self._held, self._size = self._held, [], 0
            self._write(b"".join(held))
