"""`make bench`: requests/s and p50/p99 for the baseline, our server on each runtime, and two bare
floors (an asyncio server, and an app on uvicorn's ASGI cycle, both answering a constant).

Same machine, same model, same load generator (wrk on 127.0.0.1), concurrency 1, 8 and 32; every
server is sent the model's own example (its metadata.json's) and every answer but the
floors' is checked against TensorFlow's before it is timed. Prints a markdown table and the ratios the
targets are stated in.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from serving.tools.bench.cpu import cpu_seconds
from serving.tools.bench.workload import Workload, WrongAnswer, add_model_arguments, from_arguments
from serving.tools.bench.wrk import lua, run_wrk, wrk_missing

BASELINE = "baseline (Flask + TensorFlow per request)"
FLOOR = "floor (constant JSON, asyncio)"
ASGI_FLOOR = "ASGI floor (constant JSON, uvicorn)"


@dataclass(frozen=True)
class Result:
    server: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float | None = None  # the server's processes' CPU over the run, per answer


@dataclass(frozen=True)
class Candidate:
    """A server to measure; `checked` is False only for the floor, which answers a constant."""

    command: list[str]
    env: dict[str, str]
    checked: bool = True


def _wait(url: str, process: subprocess.Popen[bytes], workload: Workload, name: str, checked: bool) -> None:
    """Until the server answers the example; then its answer must be TensorFlow's."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: {name} exited with {process.returncode}")
        headers = {"content-type": "application/json"}
        request = urllib.request.Request(url + workload.path, data=workload.body, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local URL
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        except OSError:
            time.sleep(0.3)
            continue
        if checked:
            workload.check(name, status, body)
        return
    raise SystemExit(f"error: {url} did not answer within 120 s")


def _require_free(port: int) -> None:
    """A stale server on the port would answer in place of the one under test."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"error: port {port} is already in use; stop what listens there and re-run")


def servers(workload: Workload) -> dict[str, Candidate]:
    """The baseline, our server on each runtime the model has, and the floor."""
    root, name = workload.artifact.parents[1], workload.name
    ours = {
        "TWINSERVE_MODEL_ROOT": str(root),
        "TWINSERVE_MODEL_NAME": name,
        "TWINSERVE_DRAIN_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",  # as the image runs it: each access-log write reaches stdout at once
    }
    serve = [sys.executable, "-m", "serving"]
    candidates = {
        BASELINE: Candidate(
            [sys.executable, "-m", "serving.tools.bench.baseline_flask", str(workload.artifact)], {}
        ),
        "twinserve, TensorFlow": Candidate(serve, {**ours, "TWINSERVE_RUNTIME": "tensorflow"}),
        "twinserve, TensorFlow, no micro-batching": Candidate(
            serve, {**ours, "TWINSERVE_RUNTIME": "tensorflow", "TWINSERVE_BATCH_WAIT_MS": "0"}
        ),
    }
    if (workload.artifact / "model.tflite").is_file():
        candidates["twinserve, LiteRT"] = Candidate(serve, {**ours, "TWINSERVE_RUNTIME": "litert"})
        candidates["twinserve, LiteRT, no access log"] = Candidate(
            serve, {**ours, "TWINSERVE_RUNTIME": "litert", "TWINSERVE_ACCESS_LOG": "false"}
        )
    candidates[ASGI_FLOOR] = Candidate(
        [sys.executable, "-m", "serving.tools.bench.asgi_floor"], {}, checked=False
    )
    candidates[FLOOR] = Candidate([sys.executable, "-m", "serving.tools.bench.floor"], {}, checked=False)
    return candidates


def measure(
    name: str,
    candidate: Candidate,
    workload: Workload,
    args: argparse.Namespace,
    script: Path,
) -> list[Result]:
    """Start the server, check its answer, warm it up, then one wrk run per connection count."""
    port = "18080"
    url = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "PORT": port, "TF_CPP_MIN_LOG_LEVEL": "3", **candidate.env}
    _require_free(int(port))
    with tempfile.TemporaryFile() as sink:
        process = subprocess.Popen(candidate.command, env=full_env, stdout=sink, stderr=sink)
        try:
            _wait(url, process, workload, name, candidate.checked)
            run_wrk(url, 8, 2, script, workload.path)  # warm-up
            results = []
            for connections in args.connections:
                cpu_before = cpu_seconds(process.pid)
                figures = run_wrk(url, connections, args.seconds, script, workload.path)
                cpu_after = cpu_seconds(process.pid)
                if figures.errors and candidate.checked:
                    raise WrongAnswer(
                        f"{name} answered {figures.errors} requests with an error at {connections}"
                    )
                cpu_us = (
                    (cpu_after - cpu_before) / figures.requests * 1e6
                    if cpu_before is not None and cpu_after is not None and figures.requests
                    else None
                )
                results.append(
                    Result(name, connections, figures.requests_per_second, figures.p50_ms, figures.p99_ms,
                           figures.errors, cpu_us)
                )  # fmt: skip
            return results
        finally:
            process.terminate()
            process.wait(timeout=60)


def table(results: list[Result]) -> str:
    lines = [
        "| server | connections | requests/s | p50 ms | p99 ms | errors | server CPU µs/request |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.server} | {r.connections} | {r.requests_per_second:,.0f} "
        f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | {_cpu(r)} |"
        for r in results
    ]
    return "\n".join(lines)


def _cpu(result: Result) -> str:
    return "-" if result.cpu_us_per_request is None else f"{result.cpu_us_per_request:,.1f}"


def ratios(results: list[Result], connections: int) -> str:
    at = {r.server: r for r in results if r.connections == connections}
    base, floor = at[BASELINE], at[FLOOR]
    lines = [f"\nAt {connections} connections:"]
    for name in ("twinserve, LiteRT", "twinserve, TensorFlow", "twinserve, LiteRT, no access log"):
        if name not in at:
            continue
        r = at[name]
        lines.append(
            f"- {name}: {r.requests_per_second / base.requests_per_second:,.1f}x the baseline's throughput, "
            f"p99 {r.p99_ms / base.p99_ms:.4f} of its, "
            f"{r.requests_per_second / floor.requests_per_second:.2f} of the floor"
            + _cpu_against_floor(r, floor)
        )
    if ASGI_FLOOR in at:
        ceiling = at[ASGI_FLOOR].requests_per_second / floor.requests_per_second
        lines.append(f"- the ASGI floor (any app on uvicorn): {ceiling:.2f} of the floor")
    batched, unbatched = at["twinserve, TensorFlow"], at["twinserve, TensorFlow, no micro-batching"]
    speedup = batched.requests_per_second / unbatched.requests_per_second
    lines.append(
        f"- TensorFlow micro-batching: {speedup:.2f}x the throughput of no batching, "
        f"p99 {batched.p99_ms / unbatched.p99_ms:.2f} of its"
    )
    return "\n".join(lines)


def _cpu_against_floor(result: Result, floor: Result) -> str:
    """The same comparison by the server's CPU per answer, which the load generator's own limit (it shares
    the cores, and caps the floor's rate) does not move."""
    if result.cpu_us_per_request is None or not floor.cpu_us_per_request:
        return ""
    share = floor.cpu_us_per_request / result.cpu_us_per_request
    return (
        f"; {result.cpu_us_per_request:,.1f} µs of server CPU a request against the floor's "
        f"{floor.cpu_us_per_request:,.1f} ({share:.2f} of the floor by CPU)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    if wrk_missing():
        return 2
    workload = from_arguments(args)
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(lua(workload.body.decode()))
        try:
            results = [
                r
                for name, candidate in servers(workload).items()
                for r in measure(name, candidate, workload, args, script)
            ]
        except WrongAnswer as error:
            print(f"error: {error}; a server that answers wrong gets no figures", file=sys.stderr)
            return 1
    model = workload.metadata
    print(f"Model {model.name} v{model.version}, its own example ({model.example.rows()} row).\n")
    print(table(results))
    if 32 in args.connections:
        print(ratios(results, 32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
