"""A/B of the server against another commit's, same run, same artifact: did a change cost throughput?

`python -m serving.tools.bench.ab --model-root build/models --ref main` checks the ref out in a temporary
worktree and alternates rounds of the two servers (one worker, pinned to CPU 0 when `taskset`
exists), printing requests/s per round and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from serving.tools.bench.__main__ import Candidate, measure
from serving.tools.bench.workload import add_model_arguments, from_arguments
from serving.tools.bench.wrk import lua, wrk_missing

REPO = Path(__file__).resolve().parents[3]


def _pinned(command: list[str], cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if shutil.which("taskset") else command


def _server(checkout: Path) -> list[str]:
    """`python -m serving` from the checkout; its spawned workers inherit the same `sys.path`."""
    code = f"import runpy, sys; sys.path.insert(0, {str(checkout)!r}); runpy.run_module('serving', run_name='__main__')"  # noqa: E501
    return _pinned([sys.executable, "-c", code], 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--ref", required=True, help="the commit to compare against")
    parser.add_argument("--runtime", choices=["litert", "tensorflow"], default="litert")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if wrk_missing():
        return 2
    workload = from_arguments(args)
    env = {
        "TWINSERVE_MODEL_ROOT": str(workload.artifact.parents[1].resolve()),
        "TWINSERVE_MODEL_NAME": workload.name,
        "TWINSERVE_RUNTIME": args.runtime,
        "TWINSERVE_WORKERS": "1",
        "TWINSERVE_DRAIN_SECONDS": "0",
        "TWINSERVE_ACCESS_LOG": "false",
    }
    options = argparse.Namespace(seconds=args.seconds, connections=[args.connections])
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.ref], cwd=REPO, check=True,
                       capture_output=True)  # fmt: skip
        script = Path(scratch) / "post.lua"
        script.write_text(lua(workload.body.decode()))
        rates: dict[str, list[float]] = {"this tree": [], args.ref: []}
        try:
            for round_ in range(args.rounds):
                for label, checkout in (("this tree", REPO), (args.ref, base)):
                    (result,) = measure(label, Candidate(_server(checkout), env), workload, options, script)
                    rates[label].append(result.requests_per_second)
                    print(f"round {round_ + 1}, {label}: {result.requests_per_second:,.0f} requests/s")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, check=False)
    ours, theirs = (statistics.median(rates[k]) for k in ("this tree", args.ref))
    print(f"{args.runtime}: {ours:,.0f} against {theirs:,.0f} requests/s at {args.ref}: {ours / theirs:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
