"""`make bench`, the image model: the digits CNN (`uint8 [-1, 8, 8, 1]`) imported by `make model SOURCE=…`,
served by twinserve on LiteRT and TensorFlow against Flask + Keras `predict` on the same `.keras`
file, at batch 1 and 32, same machine and load (wrk, 8 connections). Prints a table and the ratios."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from serving.bench.__main__ import Result, measure, table
from serving.bench.wrk import lua, wrk_missing

PATH = "/v1/models/digits:predict"
BASELINE = "baseline (Flask + keras predict)"


def prepare(workdir: Path) -> tuple[Path, Path]:
    """The example's `.keras` file and the artifact root it is imported into (reused when up to date)."""
    examples, root = workdir / "examples", workdir / "models"
    if not (examples / "digits.keras").is_file():
        subprocess.run([sys.executable, "-m", "model.examples", "--out", str(examples)], check=True)
    subprocess.run(
        [sys.executable, "-m", "model", "--source", str(examples / "digits.keras"), "--output", str(root)],
        check=True,
    )
    return examples / "digits.keras", root


def bodies() -> dict[int, str]:
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.uint8)[..., None]
    return {rows: json.dumps({"instances": images[:rows].tolist()}) for rows in (1, 32)}


def servers(source: Path, root: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    ours = {
        "TWINSERVE_MODEL_ROOT": str(root),
        "TWINSERVE_DRAIN_SECONDS": "0",
        "TWINSERVE_ACCESS_LOG": "false",
    }
    serve = [sys.executable, "-m", "serving"]
    return {
        BASELINE: ([sys.executable, "-m", "serving.bench.baseline_flask_keras", str(source), "digits"], {}),
        "twinserve, TensorFlow": (serve, {**ours, "TWINSERVE_RUNTIME": "tensorflow"}),
        "twinserve, LiteRT": (serve, {**ours, "TWINSERVE_RUNTIME": "litert"}),
    }


def ratios(results: dict[int, list[Result]]) -> str:
    lines = []
    for rows, measured in results.items():
        by_name = {r.server: r for r in measured}
        base = by_name[BASELINE]
        for name in ("twinserve, LiteRT", "twinserve, TensorFlow"):
            r = by_name[name]
            lines.append(
                f"- batch {rows}, {name}: {r.requests_per_second / base.requests_per_second:,.1f}x the "
                f"baseline's throughput, p99 {r.p99_ms / base.p99_ms:.3f} of its"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("build/bench/digits"))
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if wrk_missing():
        return 2
    source, root = prepare(args.workdir)
    options = argparse.Namespace(seconds=args.seconds, connections=[args.connections])
    results: dict[int, list[Result]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for rows, body in bodies().items():
            script = Path(scratch) / f"batch-{rows}.lua"
            script.write_text(lua(body))
            results[rows] = [
                r
                for name, (command, env) in servers(source, root).items()
                for r in measure(name, command, env, options, script, (PATH, body))
            ]
    print(table([replace(r, server=f"{r.server}, batch {rows}") for rows, m in results.items() for r in m]))
    failed = [f"{r.server}, batch {rows}" for rows, m in results.items() for r in m if r.errors]
    if failed:
        print(f"error: non-2xx answers or socket errors from {failed}", file=sys.stderr)
        return 1
    print(f"\nAt {args.connections} connections:")
    print(ratios(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
