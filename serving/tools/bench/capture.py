"""`make bench-capture`: what payload capture costs a client, at sample rates 0, 0.1 and 1, in one run.

One server per rate (same model, runtime and workers; records to a file, as a container's stdout goes
to its log pipeline), all up at once and measured in turn over several rounds so that none is favoured
by the machine's moment; each rate's median round is reported with its throughput and p99 over rate 0's.
Every server's answer is checked against TensorFlow's first, and every record it wrote is counted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from serving.contract import CAPTURE_SCHEMA
from serving.tools.bench.__main__ import _require_free, _wait
from serving.tools.bench.json_paths import bodies, check_answers, serve
from serving.tools.bench.workload import Workload, WrongAnswer, add_model_arguments, from_arguments
from serving.tools.bench.wrk import WrkFigures, lua_file, run_wrk, wrk_missing

PORT = 18100
RATES = (0.0, 0.1, 1.0)


def _serve(workload: Workload, runtime: str, port: int, rate: float, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return serve(workload, runtime, sink, port, TWINSERVE_CAPTURE_SAMPLE_RATE=f"{rate:g}")


def measure(workload: Workload, args: argparse.Namespace, scratch: Path) -> tuple[dict, dict[float, int]]:
    """Every rate's wrk figures, round by round, and how many records each server wrote."""
    body = bodies(workload, args.rows)["V2 JSON"]
    figures: dict[float, list[WrkFigures]] = {rate: [] for rate in RATES}
    logs = {rate: scratch / f"rate-{rate:g}.log" for rate in RATES}
    urls = {rate: f"http://127.0.0.1:{PORT + i}" for i, rate in enumerate(RATES)}
    servers = {}
    try:
        for i, rate in enumerate(RATES):
            _require_free(PORT + i)
            servers[rate] = _serve(workload, args.runtime, PORT + i, rate, logs[rate])
        for rate in RATES:
            _wait(urls[rate], servers[rate], workload, f"capture at {rate:g}", checked=True)
            check_answers(urls[rate], workload, {"V2 JSON": body}, args.rows)
        (scratch / "body").write_bytes(body.data)
        script = scratch / "post.lua"
        script.write_text(lua_file(scratch / "body", body.headers))
        for _ in range(args.rounds):
            for rate in RATES:
                run_wrk(urls[rate], args.connections, 1, script, body.path)  # warm-up
                result = run_wrk(urls[rate], args.connections, args.seconds, script, body.path)
                if result.errors:
                    raise WrongAnswer(f"capture at {rate:g}: {result.errors} requests answered with an error")
                figures[rate].append(result)
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=60)
    return figures, {rate: logs[rate].read_text(errors="replace").count(CAPTURE_SCHEMA) for rate in RATES}


def table(figures: dict[float, list[WrkFigures]], written: dict[float, int]) -> str:
    lines = [
        "| capture rate | requests/s | p99 ms | records written | throughput vs 0 | p99 vs 0 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    base_rate = statistics.median(f.requests_per_second for f in figures[0.0])
    base_p99 = statistics.median(f.p99_ms for f in figures[0.0])
    for rate in RATES:
        rps = statistics.median(f.requests_per_second for f in figures[rate])
        p99 = statistics.median(f.p99_ms for f in figures[rate])
        ratios = f"{rps / base_rate:.2f} | {p99 / base_p99:.2f}x"
        lines.append(f"| {rate:g} | {rps:,.0f} | {p99:.2f} | {written[rate]:,} | {ratios} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--runtime", default="litert", choices=["litert", "tensorflow"])
    args = parser.parse_args(argv)
    if wrk_missing():
        return 2
    workload = from_arguments(args)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            figures, written = measure(workload, args, Path(scratch))
        except WrongAnswer as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(f"Model {workload.name}, {args.runtime}, 2 workers, {args.connections} connections, "
          f"{args.rows} row(s); median of {args.rounds} rounds of {args.seconds} s.\n")  # fmt: skip
    print(table(figures, written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
