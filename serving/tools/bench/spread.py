"""How the workers share a burst of keep-alive connections: wrk opens `--connections` at once, as a
proxy's pool does, and each worker's share of them is read from /proc while wrk runs, round after
round (each round's connections new, the last round's still closing). Also the rate of each round:
a worker left without connections idles for as long as they live.

    python -m serving.tools.bench.spread --model-root build/bench/image-model --connections 4 8
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serving.tools.bench.__main__ import _require_free, _wait
from serving.tools.bench.cpu import children
from serving.tools.bench.json_paths import PORT, bodies, serve
from serving.tools.bench.workload import add_model_arguments, from_arguments
from serving.tools.bench.wrk import lua_file, read_report, wrk_missing

ESTABLISHED = "01"


def workers_of(supervisor: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker beside them)."""
    return sorted(
        pid for pid in children(supervisor) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    )


def held_by(port: int, pids: list[int]) -> list[int]:
    """How many established connections to `port` each of `pids` holds, from /proc/net/tcp."""
    inodes = {
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split()) and int(fields[1].split(":")[1], 16) == port and fields[3] == ESTABLISHED
    }
    held: collections.Counter[int] = collections.Counter()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                    held[pid] += 1
            except FileNotFoundError:
                continue
    return [held[pid] for pid in pids]


def rounds_of(
    url: str, path: str, script: Path, pids: list[int], args: argparse.Namespace, connections: int
) -> str:
    """One line: how often each split of the connections came up, and the rounds' rates."""
    splits: collections.Counter[tuple[int, ...]] = collections.Counter()
    rates = []
    for _ in range(args.rounds):
        command = ["wrk", "-t1", f"-c{connections}", f"-d{args.seconds}s", "-s", str(script), url + path]
        load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(args.seconds / 2)
        splits[tuple(sorted(held_by(PORT, pids), reverse=True))] += 1
        report = load.communicate(timeout=args.seconds + 60)[0]
        rates.append(read_report(report).requests_per_second)
    shares = ", ".join(f"{'-'.join(map(str, split))} in {n}" for split, n in splits.most_common())
    return f"- {connections} connections: {shares}; {min(rates):.0f} to {max(rates):.0f} requests/s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--runtime", default="litert")
    parser.add_argument("--connections", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=2)
    args = parser.parse_args(argv)
    if wrk_missing():
        return 2
    workload = from_arguments(args)
    url = f"http://127.0.0.1:{PORT}"
    _require_free(PORT)
    body = bodies(workload, 1)["V2 binary"]
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryFile() as sink:
        (Path(scratch) / "body").write_bytes(body.data)
        script = Path(scratch) / "post.lua"
        script.write_text(lua_file(Path(scratch) / "body", body.headers))
        process = serve(workload, args.runtime, sink)
        try:
            _wait(url, process, workload, f"twinserve, {args.runtime}", checked=True)
            pids = workers_of(process.pid)
            print(
                f"{workload.name}, V2 binary, {args.runtime}: {len(pids)} workers, {args.rounds} rounds each"
            )
            for connections in args.connections:
                print(rounds_of(url, body.path, script, pids, args, connections))
        finally:
            process.terminate()
            process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
