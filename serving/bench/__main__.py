"""`make bench`: requests/s and p50/p99 for the baseline, our server on each runtime, and a bare floor.

Same machine, same model, same load generator (wrk on 127.0.0.1), concurrency 1, 8 and 32.
Prints a markdown table and the ratios the targets are stated in.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from serving.bench.wrk import BODY, LUA, PATH, run_wrk, wrk_missing


@dataclass(frozen=True)
class Result:
    server: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _wait(url: str, process: subprocess.Popen[bytes], path: str = PATH, body: str = BODY) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: server exited with {process.returncode}")
        try:
            headers = {"content-type": "application/json"}
            request = urllib.request.Request(url + path, data=body.encode(), headers=headers)  # noqa: S310
            with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - local URL
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"error: {url} did not answer within 120 s")


def _require_free(port: int) -> None:
    """A stale server on the port would answer in place of the one under test."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"error: port {port} is already in use; stop what listens there and re-run")


def servers(model_root: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    artifact = next(model_root.glob("*/*/saved_model.pb")).parent
    ours = {"TWINSERVE_MODEL_ROOT": str(model_root), "TWINSERVE_DRAIN_SECONDS": "0"}
    serve = [sys.executable, "-m", "serving"]
    quiet = {**ours, "TWINSERVE_RUNTIME": "litert", "TWINSERVE_ACCESS_LOG": "false"}
    return {
        "baseline (Flask + keras predict)": (
            [sys.executable, "-m", "serving.bench.baseline_flask", str(artifact)],
            {},
        ),
        "twinserve, TensorFlow": (serve, {**ours, "TWINSERVE_RUNTIME": "tensorflow"}),
        "twinserve, TensorFlow, no micro-batching": (
            serve,
            {**ours, "TWINSERVE_RUNTIME": "tensorflow", "TWINSERVE_BATCH_WAIT_MS": "0"},
        ),
        "twinserve, LiteRT": (serve, {**ours, "TWINSERVE_RUNTIME": "litert"}),
        "twinserve, LiteRT, no access log": (serve, quiet),
        "floor (constant JSON, asyncio)": ([sys.executable, "-m", "serving.bench.floor"], {}),
    }


def measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    args: argparse.Namespace,
    script: Path,
    request: tuple[str, str] = (PATH, BODY),
) -> list[Result]:
    """Start the server, warm it up, then one wrk run per connection count; `request` is (path, body)."""
    port = "18080"
    url = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "PORT": port, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    _require_free(int(port))
    with tempfile.TemporaryFile() as sink:
        process = subprocess.Popen(command, env=full_env, stdout=sink, stderr=sink)
        try:
            _wait(url, process, *request)
            run_wrk(url, 8, 2, script, request[0])  # warm-up
            return [
                Result(name, c, *run_wrk(url, c, args.seconds, script, request[0])) for c in args.connections
            ]
        finally:
            process.terminate()
            process.wait(timeout=60)


def table(results: list[Result]) -> str:
    lines = [
        "| server | connections | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.server} | {r.connections} | {r.requests_per_second:,.0f} "
        f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |"
        for r in results
    ]
    return "\n".join(lines)


def ratios(results: list[Result], connections: int) -> str:
    at = {r.server: r for r in results if r.connections == connections}
    base, floor = at["baseline (Flask + keras predict)"], at["floor (constant JSON, asyncio)"]
    lines = [f"\nAt {connections} connections:"]
    for name in ("twinserve, LiteRT", "twinserve, TensorFlow", "twinserve, LiteRT, no access log"):
        r = at[name]
        lines.append(
            f"- {name}: {r.requests_per_second / base.requests_per_second:,.0f}x the baseline's throughput, "
            f"p99 {r.p99_ms / base.p99_ms:.4f} of its, "
            f"{r.requests_per_second / floor.requests_per_second:.2f} of the floor"
        )
    batched, unbatched = at["twinserve, TensorFlow"], at["twinserve, TensorFlow, no micro-batching"]
    speedup = batched.requests_per_second / unbatched.requests_per_second
    lines.append(
        f"- TensorFlow micro-batching: {speedup:.2f}x the throughput of no batching, "
        f"p99 {batched.p99_ms / unbatched.p99_ms:.2f} of its"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-root", type=Path, required=True)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    if wrk_missing():
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(LUA)
        results = [
            r
            for name, (cmd, env) in servers(args.model_root).items()
            for r in measure(name, cmd, env, args, script)
        ]
    print(table(results))
    if 32 in args.connections:
        print(ratios(results, 32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
