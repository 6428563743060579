"""`make bench-capture`: what payload capture costs a client, at sample rates 0, 0.1 and 1, in one run
(`rates.py`: a server per rate, measured in turn). Records go to a file, as a container's stdout goes to
its log pipeline, and every record each server wrote is counted."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from serving.contract import CAPTURE_SCHEMA
from serving.tools.bench import rates
from serving.tools.bench.workload import WrongAnswer

PORT = 18100


def main(argv: list[str] | None = None) -> int:
    given = rates.arguments(__doc__ or "", argv)
    if given is None:
        return 2
    args, workload = given
    with tempfile.TemporaryDirectory() as scratch:
        try:
            figures = rates.measure(workload, args, Path(scratch), PORT, "capture",
                                    lambda rate: {"TWINSERVE_CAPTURE_SAMPLE_RATE": f"{rate:g}"})  # fmt: skip
        except WrongAnswer as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        logs = {
            rate: (Path(scratch) / f"rate-{rate:g}.log").read_text(errors="replace") for rate in rates.RATES
        }
        written = {rate: f"{log.count(CAPTURE_SCHEMA):,}" for rate, log in logs.items()}
    print(f"Model {workload.name}, {args.runtime}, 2 workers, {args.connections} connections, "
          f"{args.rows} row(s); median of {args.rounds} rounds of {args.seconds} s.\n")  # fmt: skip
    print(rates.table("capture", figures, {"records written": written}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
