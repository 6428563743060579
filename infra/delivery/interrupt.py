"""A cancelled deploy job stops its update the way Pulumi expects, before the job's abort step starts.

GitHub's runner cancels a step by sending SIGINT to the step's process only, SIGTERM 7.5 s later,
and kills it about 2.5 s after that; the `if: cancelled()` step starts about 12.5 s after the cancel
(actions/runner, ProcessInvoker.cs). The deploy step `exec`s the rollout, so the rollout receives
those signals; it forwards them to its `pulumi` CLI, whose first SIGINT finishes in-flight steps,
writes the checkpoint and releases the lock, and whose second abandons in-flight steps (recording
them as pending) and still releases the lock. Past `kill_seconds` the CLI is killed, so nothing of
this run is left updating the stack when the abort step starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

PROC = Path("/proc")
UPDATES = {"up", "destroy", "refresh", "import"}


class Interrupted(Exception):
    """The job was cancelled; the message says by which signal and what was stopped."""


def _processes() -> Iterator[tuple[int, int, str, list[str]]]:
    """(pid, parent pid, command name, argv) of every process this user can see."""
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            name = (entry / "comm").read_text().strip()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        yield int(entry.name), parent, name, [a for a in argv if a]


def engine_children() -> list[int]:
    """The `pulumi` CLIs this process started (the Automation API's)."""
    me = os.getpid()
    return [pid for pid, parent, name, _ in _processes() if parent == me and name == "pulumi"]


def live_updates(stack: str) -> list[int]:
    """`pulumi up|destroy|refresh … --stack STACK` processes alive on this machine: a cancelled run's
    CLI that is still winding down holds the stack's lock legitimately."""
    found = []
    for pid, _, name, argv in _processes():
        if name == "pulumi" and UPDATES & set(argv) and stack in _stack_args(argv):
            found.append(pid)
    return found


def _stack_args(argv: list[str]) -> set[str]:
    values = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--stack", "-s")}
    return values | {a.split("=", 1)[1] for a in argv if a.startswith("--stack=")}


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


@dataclass
class Cancellation:
    """Installed once by the rollout: the first SIGINT or SIGTERM starts stopping the engine."""

    terminate_after_seconds: float = 4.0  # then a second SIGINT: in-flight steps abandoned
    kill_after_seconds: float = 8.0  # then SIGKILL: the runner kills the step at about 10 s
    received: str | None = None
    stopped: list[str] = field(default_factory=list)

    def install(self) -> Cancellation:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def check(self) -> None:
        """Raise if the job was cancelled (after an update the signal cut short, say)."""
        if self.received:
            stopped = f"; {', '.join(self.stopped)}" if self.stopped else ""
            raise Interrupted(f"cancelled ({self.received}){stopped}")

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
            children = engine_children()
            if children:
                print(f"{self.received}: interrupting the running update (pulumi {children})", flush=True)
                threading.Thread(target=self._stop, args=(children,), daemon=True).start()
        # With an update running, the Automation API returns when its CLI exits (the caller checks);
        # otherwise (a bake, a smoke test) the rollout stops here.
        if not engine_children():
            self.check()

    def _stop(self, children: list[int]) -> None:
        started = time.monotonic()
        for pid in children:
            _signal(pid, signal.SIGINT)
        self.stopped.append("the update was interrupted (SIGINT)")
        for deadline, sig, said in (
            (self.terminate_after_seconds, signal.SIGINT, "then terminated (second SIGINT)"),
            (self.kill_after_seconds, signal.SIGKILL, "then killed"),
        ):
            while time.monotonic() - started < deadline:
                if not any(pid in engine_children() for pid in children):
                    return
                time.sleep(0.1)
            alive = [pid for pid in children if pid in engine_children()]
            if not alive:
                return
            for pid in alive:
                _signal(pid, sig)
            self.stopped.append(said)
