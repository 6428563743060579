"""What a feature sampled at a rate costs a client: one server per rate (same model, runtime and workers),
all up at once and measured in turn over several rounds so that none is favoured by the machine's moment;
each rate's median round is reported with its throughput and p99 over rate 0's. Every server's answer is
checked against TensorFlow's first. `make bench-capture` and `make bench-shadow` run it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path

from serving.tools.bench.__main__ import _require_free, _wait
from serving.tools.bench.json_paths import bodies, check_answers, serve
from serving.tools.bench.workload import Workload, WrongAnswer, add_model_arguments, from_arguments
from serving.tools.bench.wrk import WrkFigures, lua_file, run_wrk, wrk_missing

RATES = (0.0, 0.1, 1.0)
Settings = Callable[[float], dict[str, str]]  # a rate's TWINSERVE_* variables


def arguments(description: str, argv: list[str] | None) -> tuple[argparse.Namespace, Workload] | None:
    """A rate bench's command line and the model it measures; None (after saying so) without wrk."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--runtime", default="litert", choices=["litert", "tensorflow"])
    args = parser.parse_args(argv)
    if wrk_missing():
        return None
    return args, from_arguments(args)


def measure(
    workload: Workload,
    args: argparse.Namespace,
    scratch: Path,
    port: int,
    name: str,
    settings: Settings,
    inspect: Callable[[float], None] = lambda rate: None,
) -> dict[float, list[WrkFigures]]:
    """Every rate's wrk figures, round by round; each server's output in scratch/rate-<rate>.log.
    `inspect(rate)` is called for each rate after the rounds, while its server still runs."""
    body = bodies(workload, args.rows)["V2 JSON"]
    figures: dict[float, list[WrkFigures]] = {rate: [] for rate in RATES}
    urls = {rate: f"http://127.0.0.1:{port + i}" for i, rate in enumerate(RATES)}
    servers: dict[float, subprocess.Popen[bytes]] = {}
    try:
        for i, rate in enumerate(RATES):
            _require_free(port + i)
            with (scratch / f"rate-{rate:g}.log").open("wb") as sink:
                servers[rate] = serve(workload, args.runtime, sink, port + i, **settings(rate))
        for rate in RATES:
            _wait(urls[rate], servers[rate], workload, f"{name} at {rate:g}", checked=True)
            check_answers(urls[rate], workload, {"V2 JSON": body}, args.rows)
        (scratch / "body").write_bytes(body.data)
        script = scratch / "post.lua"
        script.write_text(lua_file(scratch / "body", body.headers))
        for _ in range(args.rounds):
            for rate in RATES:
                run_wrk(urls[rate], args.connections, 1, script, body.path)  # warm-up
                result = run_wrk(urls[rate], args.connections, args.seconds, script, body.path)
                if result.errors:
                    raise WrongAnswer(f"{name} at {rate:g}: {result.errors} requests answered with an error")
                figures[rate].append(result)
        for rate in RATES:
            inspect(rate)
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=60)
    return figures


def table(name: str, figures: dict[float, list[WrkFigures]], extra: dict[str, dict[float, str]]) -> str:
    """Each rate's median round against rate 0's, with `extra` columns by heading."""
    headings = "".join(f" {h} |" for h in extra)
    lines = [
        f"| {name} rate | requests/s | p99 ms |{headings} throughput vs 0 | p99 vs 0 |",
        "|---:|---:|---:|" + "---:|" * len(extra) + "---:|---:|",
    ]
    base_rate = statistics.median(f.requests_per_second for f in figures[0.0])
    base_p99 = statistics.median(f.p99_ms for f in figures[0.0])
    for rate in RATES:
        rps = statistics.median(f.requests_per_second for f in figures[rate])
        p99 = statistics.median(f.p99_ms for f in figures[rate])
        cells = "".join(f" {column[rate]} |" for column in extra.values())
        lines.append(
            f"| {rate:g} | {rps:,.0f} | {p99:.2f} |{cells} {rps / base_rate:.2f} | {p99 / base_p99:.2f}x |"
        )
    return "\n".join(lines)
