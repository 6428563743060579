"""Canary analysis by hand: watch a new model's servers through their own Prometheus metrics for a
bake period and decide promote or roll back, with every step's figures against its thresholds.

`python infra/delivery/canary.py --metrics-url http://…/metrics --model NAME` scrapes `/metrics` (a canary
pod's metrics port, 8082, port-forwarded, or any server of the new model) every `--interval` seconds,
through the deploy's own bake loop (`watch.watch`) and judged by `analysis.judge`. The window is
everything since the first scrape: inference requests (V2 infer and TF Serving predict) by status,
and their latency histogram. With `--stable-metrics-url` (a stable pod's), a classifier's prediction
mix is held against the stable model's over the same window too, and when the stable servers mirror
to the new model (shadow traffic, TWINSERVE_SHADOW_URL), the share of mirrored rows whose top class
it answered otherwise.

The first breach, once at least `--min-requests` were answered, rolls back at once; a bake that
ends clean promotes; a bake with too little traffic to judge is inconclusive. Exit 0 promote,
1 roll back (the breached signal named), 2 inconclusive, 3 the metrics (or the thresholds) could not be read.
`--summary FILE` appends the timeline as markdown (a GitHub job summary).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from program.settings import Slo, read_environment

from delivery.analysis import Snapshot, Thresholds, scraper
from delivery.errors import MetricsError
from delivery.watch import Poll, disagreed, mixed, watch

PROMOTE, ROLL_BACK, INCONCLUSIVE, UNREADABLE = 0, 1, 2, 3


@dataclass(frozen=True)
class Analysis:
    verdict: int
    steps: list[Poll]
    reason: str


def analyse(
    scrape: Callable[[], Snapshot],
    thresholds: Thresholds,
    bake_seconds: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stable: Callable[[], Snapshot] | None = None,
) -> Analysis:
    """The bake loop on the new model's metrics (and a stable server's, for the mix), and its verdict."""
    result = watch(bake_seconds, interval, thresholds, scrape, None, clock, sleep, stable)
    last = result.polls[-1]
    seen = last.kubernetes
    assert seen is not None  # the loop scraped
    if last.kubernetes_breaches:
        return Analysis(ROLL_BACK, result.polls, "; ".join(map(str, last.kubernetes_breaches)))
    if seen.requests < thresholds.min_requests:
        needed = f"fewer than the {thresholds.min_requests} a verdict needs"
        return Analysis(
            INCONCLUSIVE, result.polls, f"{seen.requests:.0f} requests in {last.seconds:.0f} s, {needed}"
        )
    return Analysis(
        PROMOTE, result.polls, f"no breach in {last.seconds:.0f} s and {seen.requests:.0f} requests"
    )


VERDICTS = {PROMOTE: "promote", ROLL_BACK: "roll back", INCONCLUSIVE: "inconclusive"}


def markdown(model: str, analysis: Analysis, thresholds: Thresholds) -> str:
    def row(poll: Poll) -> str:
        seen = poll.kubernetes
        assert seen is not None  # the loop scraped
        p99 = "-" if seen.p99_seconds is None else f"{seen.p99_seconds * 1000:.1f}"
        breaches = "; ".join(map(str, poll.kubernetes_breaches)) or "-"
        ratios = f"{seen.error_ratio:.4f} | {seen.throttle_ratio:.4f}"
        mix = (mixed(poll.mix) + disagreed(poll.stable)).removeprefix(", ") or "-"
        return f"| {poll.seconds:.1f} | {seen.requests:.0f} | {ratios} | {p99} | {mix} | {breaches} |"

    lines = [
        f"### Canary analysis of {model}: {VERDICTS[analysis.verdict]}",
        "",
        f"{analysis.reason}. Thresholds: error ratio ≤ {thresholds.slo.error_ratio:g}, throttle ratio ≤ "
        f"{thresholds.slo.throttle_ratio:g}, p99 ≤ {thresholds.slo.p99_ms:g} ms, prediction mix PSI ≤ "
        f"{thresholds.slo.prediction_mix_psi:g} against stable, shadow disagreement ≤ "
        f"{thresholds.slo.max_disagreement:g}, judged from {thresholds.min_requests} requests.",
        "",
        "| after s | requests | error ratio | throttle ratio | p99 ms | answers against stable | breach |",
        "|---:|---:|---:|---:|---:|---|---|",
    ]
    lines += [row(poll) for poll in analysis.steps]
    return "\n".join(lines) + "\n"


def thresholds_for(args: argparse.Namespace) -> Thresholds:
    """The environment's SLO settings (or their defaults), each overridden by its flag when given."""
    base = read_environment(args.env).slo if args.env else Slo()
    # Flags are checked below, as flags, so they are not validated as settings are.
    chosen = Slo.model_construct(
        error_ratio=base.error_ratio if args.max_error_ratio is None else args.max_error_ratio,
        throttle_ratio=base.throttle_ratio if args.max_throttle_ratio is None else args.max_throttle_ratio,
        p99_ms=base.p99_ms if args.max_p99_ms is None else args.max_p99_ms,
        prediction_mix_psi=base.prediction_mix_psi if args.max_mix_psi is None else args.max_mix_psi,
        max_disagreement=base.max_disagreement if args.max_disagreement is None else args.max_disagreement,
    )
    flags = {"--max-error-ratio": chosen.error_ratio, "--max-throttle-ratio": chosen.throttle_ratio,
             "--max-p99-ms": chosen.p99_ms, "--max-mix-psi": chosen.prediction_mix_psi,
             "--max-disagreement": chosen.max_disagreement}  # fmt: skip
    for flag, value in flags.items():
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"{flag} must be a finite number ≥ 0, not {value}")
    return Thresholds(chosen, args.min_requests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metrics-url", required=True, help="the new model's servers' /metrics")
    parser.add_argument("--model", required=True, help="the model name its metrics are labelled with")
    parser.add_argument("--bake-seconds", type=float, default=300)
    parser.add_argument("--interval", type=float, default=15)
    parser.add_argument("--env", help="take the thresholds from this environment's alarm* settings")
    default = Slo()
    parser.add_argument("--max-error-ratio", type=float, help=f"default {default.error_ratio}")
    parser.add_argument("--max-throttle-ratio", type=float, help=f"default {default.throttle_ratio}")
    parser.add_argument("--max-p99-ms", type=float, help=f"default {default.p99_ms:g}")
    parser.add_argument("--max-mix-psi", type=float, help=f"default {default.prediction_mix_psi:g}")
    parser.add_argument("--max-disagreement", type=float, help=f"default {default.max_disagreement:g}")
    parser.add_argument(
        "--stable-metrics-url",
        help="a stable server's /metrics: the prediction mix against it, and its mirrors' disagreement",
    )
    parser.add_argument("--min-requests", type=int, default=Thresholds.min_requests)
    parser.add_argument("--summary", type=Path, help="append the timeline here as markdown")
    args = parser.parse_args(argv)
    try:
        thresholds = thresholds_for(args)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return UNREADABLE
    for name in ("bake_seconds", "interval"):
        if getattr(args, name) < 0 or not math.isfinite(getattr(args, name)):
            parser.error(f"--{name.replace('_', '-')} must be a finite number ≥ 0")
    try:
        stable = scraper(args.stable_metrics_url, args.model) if args.stable_metrics_url else None
        analysis = analyse(
            scraper(args.metrics_url, args.model), thresholds, args.bake_seconds, args.interval, stable=stable
        )
    except MetricsError as error:
        print(f"error: the canary's metrics could not be read: {error}", file=sys.stderr)
        return UNREADABLE
    report = markdown(args.model, analysis, thresholds)
    print(report, end="")
    if args.summary:
        with args.summary.open("a") as summary:
            summary.write(report)
    if analysis.verdict != PROMOTE:
        print(f"error: canary {VERDICTS[analysis.verdict]}: {analysis.reason}", file=sys.stderr)
    return analysis.verdict


if __name__ == "__main__":
    sys.exit(main())
