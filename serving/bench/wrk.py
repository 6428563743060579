"""wrk, the load generator every benchmark here uses: the request it sends and how its report is read."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

BODY = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
PATH = "/v1/models/iris:predict"
LUA = f'wrk.method = "POST"\nwrk.body = \'{BODY}\'\nwrk.headers["Content-Type"] = "application/json"\n'
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * UNITS[unit]


def wrk_missing() -> bool:
    """True, with a message saying how to install it, when wrk is not on PATH."""
    if shutil.which("wrk") is not None:
        return False
    print("error: wrk is not installed (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
    return True


def lua(body: str) -> str:
    """A wrk script that POSTs `body` as JSON (in a Lua long string whose brackets JSON cannot close)."""
    if "]====]" in body:
        raise ValueError("the body holds Lua's closing bracket ]====]")
    content_type = 'wrk.headers["Content-Type"] = "application/json"'
    return f'wrk.method = "POST"\nwrk.body = [====[{body}]====]\n{content_type}\n'


def run_wrk(
    url: str, connections: int, seconds: int, script: Path, path: str = PATH
) -> tuple[float, float, float, int]:
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url + path],  # noqa: E501
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    try:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        raise SystemExit(f"error: could not read wrk's report:\n{out}") from None
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: .*timeout (\d+)", out)
    return (
        rps,
        p50,
        p99,
        int(errors.group(1) if errors else 0) + int(socket_errors.group(1) if socket_errors else 0),
    )
