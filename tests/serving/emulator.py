"""A function's bootstrap under AWS's Lambda Runtime Interface Emulator (built by `make tools`): the
emulator serves the real Runtime API to the runtime interface client and takes invocations over its
own HTTP endpoint, as `docker run` of a Lambda image does locally."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.ports import free_ports
from tests.tool_paths import tool

INVOCATIONS = "/2015-03-31/functions/function/invocations"


@contextmanager
def emulated(
    bootstrap: list[str], cwd: Path, env: dict[str, str], log: Path
) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """Yields `invoke(event) -> the handler's answer`; the emulator and its runtime are gone after."""
    port, api_port = free_ports(2)
    command = [str(tool("LAMBDA_RIE")), "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
               "--runtime-api-address", f"127.0.0.1:{api_port}", *bootstrap]  # fmt: skip
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=sink, stderr=sink, start_new_session=True
        )  # its own group: the runtime it starts goes with it

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{INVOCATIONS}", json.dumps(event).encode())
        with urllib.request.urlopen(request, timeout=180) as answer:
            return json.loads(answer.read())

    try:
        _listening(port, process, log)
        yield invoke
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _listening(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the emulator exited with {process.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the emulator did not listen within 30 s: {log.read_text()}")
