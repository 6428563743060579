"""CPU time a server process and its workers spent, read from /proc: what a request costs the server,
apart from what the load generator on the same cores could send. None where there is no /proc."""

from __future__ import annotations

import os
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def children(pid: int) -> list[int]:
    """The processes `pid` started that are alive; none if it is gone (or the kernel lacks the file)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """The process and every process under it (a supervisor's workers, their helpers)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children(current))
    return found


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU of `pid` and its descendants alive now; None without /proc."""
    if not Path(f"/proc/{pid}/stat").exists():
        return None
    ticks = 0
    for process in descendants(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited between the listing and the read
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return ticks / TICKS_PER_SECOND
