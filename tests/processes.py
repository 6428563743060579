"""Which processes a test session started and left running: each inherits a marker in its environment."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MARKER = "TESTS_SESSION_ID"  # not TWINSERVE_*: the server refuses unknown settings of its own prefix


def marked(value: str) -> dict[int, str]:
    """pid -> command line of every live process (zombies aside) whose environment holds MARKER=value."""
    wanted = f"{MARKER}={value}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone, or not ours to read
            continue
        if command:  # a zombie has no command line
            found[int(entry.name)] = command.strip()
    return found


def leftovers(value: str, patience: float = 5.0) -> dict[int, str]:
    """What is still running after `patience` seconds; those are then killed, so nothing outlives
    the session even when it fails."""
    deadline = time.monotonic() + patience
    while (alive := marked(value)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive
