"""A/B of the Lambda zip against another commit's: its size on each architecture, and its cold start in
alternating rounds of fresh processes, in one run.

`python -m serving.tools.bench.zip_ab --model-root build/models --ref <commit>` checks the ref out in a
temporary worktree; each tree builds its zips with its own packaging code (a dependency it adds, a module
its handler imports, counts), for Lambda's Python on each `--arch`, and once more for this interpreter.
Those are unpacked as /var/task and timed as `cold_start` times the zip: import + model load + first
answer to the model's example, each answer checked. Prints the sizes, each round's median and the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from serving.tools.bench.cold_start import host_target, time_zip, unpack, write_event
from serving.tools.bench.workload import Workload, add_model_arguments, from_arguments

REPO = Path(__file__).resolve().parents[3]
THIS_TREE = "this tree"
# Run in a fresh interpreter with the checkout first on the path: the ref's own packaging code.
BUILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from serving.tools.packaging.lambda_zip import build
package = build(Path(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5]), Path(sys.argv[6]))
sizes = {"zipped": package.zipped_bytes, "unzipped": package.unzipped_bytes}
print(json.dumps({"path": str(package.path), **sizes}))
"""


@dataclass(frozen=True)
class Zip:
    path: Path
    zipped_mib: float
    unzipped_mib: float


def build_zip(checkout: Path, artifact: Path, arch: str, version: str, scratch: Path) -> Zip:
    """One tree's zip for one architecture and Python, built by that tree's `lambda_zip.build`."""
    where = scratch / f"{arch}-{version}"
    result = subprocess.run(
        [sys.executable, "-c", BUILD, str(checkout), str(artifact), arch, version, str(where / "dist"),
         str(where / "staging")],
        cwd=checkout, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(
            f"error: the zip for {arch}, Python {version} did not build in {checkout}:\n{result.stderr}"
        )
    built = json.loads(result.stdout.strip().splitlines()[-1])
    return Zip(Path(built["path"]), built["zipped"] / 2**20, built["unzipped"] / 2**20)


def sizes_table(zips: dict[str, dict[tuple[str, str], Zip]], ref: str) -> str:
    lines = [f"| zip | {ref} | {THIS_TREE} | ratio |", "|---|---:|---:|---:|"]
    for key in zips[THIS_TREE]:
        theirs, ours = zips[ref][key], zips[THIS_TREE][key]
        lines.append(
            f"| {key[0]}, Python {key[1]} | {theirs.zipped_mib:.2f} MiB ({theirs.unzipped_mib:.1f} unzipped) "
            f"| {ours.zipped_mib:.2f} MiB ({ours.unzipped_mib:.1f} unzipped) "
            f"| {ours.zipped_mib / theirs.zipped_mib:.3f}x |"
        )
    return "\n".join(lines)


def time_cold_starts(
    tasks: dict[str, Path], workload: Workload, rounds: int, runs: int, scratch: Path
) -> dict[str, list[tuple[float, float]]]:
    """Each round, `runs` fresh processes per tree in turn; per round, the medians of seconds and RSS."""
    event = write_event(workload, scratch)
    medians: dict[str, list[tuple[float, float]]] = {label: [] for label in tasks}
    for round_ in range(rounds):
        for label, task in tasks.items():
            start = time_zip(task, event, runs, workload.check_lambda)
            medians[label].append((start.median_seconds, start.median_rss_mib))
            print(f"round {round_ + 1}, {label}: cold start median {start.median_seconds * 1000:.1f} ms, "
                  f"peak RSS {start.median_rss_mib:.0f} MiB")  # fmt: skip
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--ref", required=True, help="the commit to compare against")
    parser.add_argument("--arch", nargs="+", default=["x86_64", "arm64"], choices=["x86_64", "arm64"])
    parser.add_argument("--python-version", default="3.12", help="Lambda's Python, as for `make package`")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per tree and round")
    args = parser.parse_args(argv)
    workload = from_arguments(args)
    artifact = workload.artifact.resolve()
    targets = [(arch, args.python_version) for arch in args.arch]
    host = host_target()
    targets += [host] if host not in targets else []
    with tempfile.TemporaryDirectory(prefix="zip-ab-") as scratch_dir:
        scratch = Path(scratch_dir)
        base = scratch / "ref"
        added = subprocess.run(["git", "worktree", "add", "--detach", str(base), args.ref], cwd=REPO,
                               capture_output=True, text=True, check=False)  # fmt: skip
        if added.returncode != 0:
            print(f"error: cannot check {args.ref!r} out: {added.stderr.strip()}", file=sys.stderr)
            return 2
        try:
            trees = {args.ref: base, THIS_TREE: REPO}
            zips = {
                label: {key: build_zip(tree, artifact, *key, scratch / f"zips-{n}") for key in targets}
                for n, (label, tree) in enumerate(trees.items())
            }
            print(sizes_table(zips, args.ref))
            tasks = {
                label: unpack(zips[label][host].path, scratch / f"task-{n}") for n, label in enumerate(zips)
            }
            medians = time_cold_starts(tasks, workload, args.rounds, args.runs, scratch)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, check=False)
    (ref_s, ref_rss), (our_s, our_rss) = (
        (statistics.median(s for s, _ in medians[k]), statistics.median(r for _, r in medians[k]))
        for k in (args.ref, THIS_TREE)
    )
    print(
        f"cold start, {host[0]} Python {host[1]}: {our_s * 1000:.1f} against {ref_s * 1000:.1f} ms at "
        f"{args.ref} ({our_s / ref_s:.2f}x, median of the rounds' medians); peak RSS {our_rss:.0f} against "
        f"{ref_rss:.0f} MiB ({our_rss / ref_rss:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
