"""`python -m model`: train, gate and export; a problem prints one line and exits 1."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training config YAML")
    parser.add_argument("--output", type=Path, required=True, help="artifact root directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from model.errors import PipelineError
    from model.pipeline import run

    started = time.perf_counter()
    try:
        target, metrics, written = run(args.config, args.output)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    scores = f"accuracy {metrics['accuracy']:.3f}, log_loss {metrics['log_loss']:.3f}"
    if written:
        print(f"exported {target} ({scores}) in {elapsed:.1f}s")
    else:
        print(f"{target} is up to date: its inputs (data, config, code, lock) are unchanged ({scores})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
