"""`make bench-shadow`: what mirroring to a shadow model costs the stable server's clients, at sample
rates 0, 0.1 and 1, in one run (`rates.py`: a server per rate, measured in turn), with what each stable
server's mirror did: requests compared, those with an answer outside the tolerance, and those dropped.

Every stable server mirrors to one shadow server of the same model. In a cluster the shadow's pods run
elsewhere and the stable side pays only for its mirroring thread (encoding, sending, reading, comparing);
here they share two cores, so the shadow runs at the lowest CPU priority (nice 19): its own work then
takes what the stable side leaves, and when it falls behind, the stable side drops mirrored requests as
it would in a cluster, rather than being charged for the shadow's inference.
"""

from __future__ import annotations

import sys
import tempfile
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from serving.contract import SHADOW_REQUESTS_METRIC
from serving.tools.bench import rates
from serving.tools.bench.__main__ import _require_free, _wait
from serving.tools.bench.json_paths import serve
from serving.tools.bench.workload import WrongAnswer

PORT = 18110
SHADOW_PORT = PORT + len(rates.RATES)
METRICS_PORT = SHADOW_PORT + 1
OUTCOMES = ("compared", "differed", "dropped")


def mirrored(metrics_url: str) -> dict[str, float]:
    """A stable server's mirrored requests by outcome, summed over its workers."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 - a local server
        text = response.read().decode()
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == f"{SHADOW_REQUESTS_METRIC}_total"
    }


def main(argv: list[str] | None = None) -> int:
    given = rates.arguments(__doc__ or "", argv)
    if given is None:
        return 2
    args, workload = given
    shadow_url = f"http://127.0.0.1:{SHADOW_PORT}"
    metrics_ports = {rate: METRICS_PORT + i for i, rate in enumerate(rates.RATES)}
    outcomes: dict[float, dict[str, float]] = {}

    def mirroring(rate: float) -> dict[str, str]:
        mirror = {"TWINSERVE_SHADOW_URL": shadow_url, "TWINSERVE_SHADOW_SAMPLE_RATE": f"{rate:g}"}
        return {"TWINSERVE_METRICS_PORT": str(metrics_ports[rate]), **(mirror if rate else {})}

    def inspect(rate: float) -> None:
        outcomes[rate] = mirrored(f"http://127.0.0.1:{metrics_ports[rate]}/metrics")

    for port in (SHADOW_PORT, *metrics_ports.values()):
        _require_free(port)
    with tempfile.TemporaryDirectory() as scratch, (Path(scratch) / "shadow.log").open("wb") as sink:
        shadow = serve(workload, args.runtime, sink, SHADOW_PORT, niceness=19)
        try:
            _wait(shadow_url, shadow, workload, "the shadow", checked=True)
            figures = rates.measure(workload, args, Path(scratch), PORT, "shadow", mirroring, inspect)
        except WrongAnswer as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            shadow.terminate()
            shadow.wait(timeout=60)
    print(f"Model {workload.name}, {args.runtime}, 2 workers each, {args.connections} connections, "
          f"{args.rows} row(s); median of {args.rounds} rounds of {args.seconds} s.\n")  # fmt: skip
    columns = {o: {rate: f"{outcomes[rate].get(o, 0):,.0f}" for rate in rates.RATES} for o in OUTCOMES}
    print(rates.table("mirror", figures, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
