"""A cancel as GitHub's runner sends it reaches the engine's CLI: SIGINT to the rollout's process only,
forwarded as Pulumi expects (cancel, then terminate, then kill), the rollout stopped before the abort.

A stand-in `pulumi` (a script of that name, as the Automation API starts it: a child of the rollout)
records the signals it gets and behaves as the CLI does on each (cancellation_scope.go)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.infra.conftest import INFRA

PULUMI = r"""#!{python}
import pathlib, signal, sys, time
log = pathlib.Path(sys.argv[-1])
got = []
def handle(signum, frame):
    got.append(signum)
    log.write_text(" ".join(signal.Signals(s).name for s in got))
    if len(got) == {exit_after}:
        sys.exit(255)
signal.signal(signal.SIGINT, handle)
log.write_text("started")
while True:
    time.sleep(0.05)
"""

PARENT = r"""
import subprocess, sys, time
from delivery.interrupt import Cancellation, Interrupted
cancellation = Cancellation(terminate_after_seconds=1.0, kill_after_seconds=2.5).install()
try:
    subprocess.run([{pulumi!r}, "up", "--stack", "dev", {log!r}])
    cancellation.check()
    print("not cancelled")
except Interrupted as stop:
    print("stopped:", stop)
    sys.exit(130)
"""


def start(tmp_path: Path, exit_after: int) -> tuple[subprocess.Popen[str], Path]:
    pulumi = tmp_path / "bin" / "pulumi"
    pulumi.parent.mkdir()
    pulumi.write_text(PULUMI.replace("{python}", sys.executable).replace("{exit_after}", str(exit_after)))
    pulumi.chmod(0o755)
    log = tmp_path / "signals"
    parent = PARENT.format(infra=str(INFRA), pulumi=str(pulumi), log=str(log))
    process = subprocess.Popen(
        [sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text()):
        assert time.monotonic() < deadline, "the stand-in never started"
        time.sleep(0.05)
    return process, log


@pytest.mark.parametrize(
    ("exit_after", "signals", "said"),
    [
        (1, "SIGINT", "the update was interrupted (SIGINT)"),  # a CLI that finishes its steps quickly
        (2, "SIGINT SIGINT", "then terminated (second SIGINT)"),  # in-flight steps abandoned
        (3, "SIGINT SIGINT", "then killed"),  # a CLI that would not stop
    ],
)
def test_the_runners_sigint_to_the_rollout_alone_stops_its_cli_and_the_rollout(
    tmp_path: Path, exit_after: int, signals: str, said: str
) -> None:
    process, log = start(tmp_path, exit_after)
    try:
        cancelled = time.monotonic()
        os.kill(process.pid, signal.SIGINT)  # the step's process only, not its group
        out, _ = process.communicate(timeout=10)
        seconds = time.monotonic() - cancelled
    finally:
        os.killpg(process.pid, signal.SIGKILL) if process.poll() is None else None
    assert process.returncode == 130, out
    assert log.read_text() == signals
    assert out.startswith("SIGINT: interrupting the running update")
    assert "stopped: cancelled (SIGINT)" in out
    assert said in out
    assert seconds < 5  # well before the runner's kill (about 10 s) and the abort step (12.5 s)


def test_a_cancel_between_updates_stops_the_rollout_at_once(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from delivery.interrupt import Cancellation, Interrupted\n"
        "Cancellation().install()\n"
        "try:\n    print('baking', flush=True); time.sleep(30)\n"
        "except Interrupted as stop:\n    print('stopped:', stop); sys.exit(130)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "baking\n"
    os.kill(process.pid, signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 130
    assert out == "stopped: cancelled (SIGTERM)\n"


def test_live_updates_are_the_cli_processes_updating_that_stack(tmp_path: Path) -> None:
    from delivery.interrupt import live_updates

    pulumi = tmp_path / "pulumi"
    pulumi.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    pulumi.chmod(0o755)
    running = [
        subprocess.Popen([pulumi, "--non-interactive", "up", "--yes", "--stack", "org/prod"]),
        subprocess.Popen([pulumi, "stack", "output", "--stack", "org/dev"]),
        subprocess.Popen([pulumi, "destroy", "--stack=org/dev"]),
    ]
    try:
        time.sleep(0.3)
        assert live_updates("org/prod") == [running[0].pid]
        assert live_updates("org/dev") == [running[2].pid]  # reading outputs holds no lock
        assert live_updates("org/staging") == []
    finally:
        for process in running:
            process.kill()
            process.wait()
