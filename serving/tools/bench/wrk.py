"""wrk, the load generator every benchmark here uses: the script that sends the model's example, and
its figures read from the JSON line the script's `done()` hook prints, not from wrk's text report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# wrk calls done() once, after the run, with its own summary and latency histogram (microseconds).
DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{"wrk": {"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, '
    .. '"status": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass(frozen=True)
class WrkFigures:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers, socket errors and timeouts
    requests: int


def wrk_missing() -> bool:
    """True, with a message saying how to install it, when wrk is not on PATH."""
    if shutil.which("wrk") is not None:
        return False
    print("error: wrk is not installed (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
    return True


def lua(body: str) -> str:
    """A wrk script that POSTs `body` as JSON (in a Lua long string whose brackets JSON cannot close)
    and reports its figures as one JSON line."""
    if "]====]" in body:
        raise ValueError("the body holds Lua's closing bracket ]====]")
    content_type = 'wrk.headers["Content-Type"] = "application/json"'
    return f'wrk.method = "POST"\nwrk.body = [====[{body}]====]\n{content_type}\n{DONE}'


def lua_file(body: Path, headers: dict[str, str]) -> str:
    """A wrk script that POSTs the bytes of `body` (binary too: read from the file, never quoted) with
    these headers besides JSON's content type, and reports as `lua` does."""
    lines = [
        'wrk.method = "POST"',
        f'local file = assert(io.open("{body}", "rb"))',
        'wrk.body = file:read("*a")',
        "file:close()",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
    return "\n".join(lines) + "\n" + DONE


def read_report(stdout: str) -> WrkFigures:
    """The figures from the done() hook's JSON line."""
    for line in reversed(stdout.splitlines()):
        if line.startswith('{"wrk":'):
            figures = json.loads(line)["wrk"]
            break
    else:
        raise SystemExit(f"error: wrk printed no report from its done() hook:\n{stdout}")
    seconds = figures["duration_us"] / 1e6
    errors = sum(figures[k] for k in ("status", "connect", "read", "write", "timeout"))
    requests = figures["requests"]
    return WrkFigures(requests / seconds, figures["p50_us"] / 1e3, figures["p99_us"] / 1e3, errors, requests)


def run_wrk(url: str, connections: int, seconds: int, script: Path, path: str) -> WrkFigures:
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url + path],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    return read_report(out)
