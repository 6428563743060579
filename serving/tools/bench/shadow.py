"""`make bench-shadow`: what mirroring to a shadow model costs the stable server's clients, at sample
rates 0, 0.1 and 1, in one run (`rates.py`: a server per rate, measured in turn).

Every stable server mirrors to one shadow server of the same model. Here both share the machine's cores,
so the shadow's own work at rate 1 is charged to the stable side too; in a cluster the shadow's pods
run elsewhere and the stable side pays only for its mirroring thread (encoding, sending, comparing).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from serving.tools.bench import rates
from serving.tools.bench.__main__ import _require_free, _wait
from serving.tools.bench.json_paths import serve
from serving.tools.bench.workload import WrongAnswer, add_model_arguments, from_arguments
from serving.tools.bench.wrk import wrk_missing

PORT = 18110
SHADOW_PORT = PORT + len(rates.RATES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    rates.add_arguments(parser)
    args = parser.parse_args(argv)
    if wrk_missing():
        return 2
    workload = from_arguments(args)
    shadow_url = f"http://127.0.0.1:{SHADOW_PORT}"

    def mirroring(rate: float) -> dict[str, str]:
        return (
            {"TWINSERVE_SHADOW_URL": shadow_url, "TWINSERVE_SHADOW_SAMPLE_RATE": f"{rate:g}"} if rate else {}
        )

    _require_free(SHADOW_PORT)
    with tempfile.TemporaryDirectory() as scratch, (Path(scratch) / "shadow.log").open("wb") as sink:
        shadow = serve(workload, args.runtime, sink, SHADOW_PORT)
        try:
            _wait(shadow_url, shadow, workload, "the shadow", checked=True)
            figures = rates.measure(workload, args, Path(scratch), PORT, "shadow", mirroring)
        except WrongAnswer as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            shadow.terminate()
            shadow.wait(timeout=60)
    print(f"Model {workload.name}, {args.runtime}, 2 workers each, {args.connections} connections, "
          f"{args.rows} row(s); median of {args.rounds} rounds of {args.seconds} s.\n")  # fmt: skip
    print(rates.table("mirror", figures, {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
