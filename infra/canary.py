"""Canary analysis: watch a new model's servers through their own Prometheus metrics for a bake
period and decide promote or roll back, with every step's figures against its thresholds.

`python infra/canary.py --metrics-url http://…/metrics --model NAME` scrapes `/metrics` (a canary
pod's metrics port, 8082, port-forwarded, or any server of the new model) every `--interval` seconds.
The window is everything since the first scrape: inference requests (V2 infer and TF Serving
predict) by status, and their latency histogram. SLO-style signals, not raw counts:

- error ratio: 5xx answers over all answers;
- throttle ratio: 429 answers (load shed) over all answers;
- p99 latency: from the histogram's buckets, as Prometheus' `histogram_quantile` computes it.

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
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from settings import Settings, read_environment
from slo import INFERENCE_ROUTES, LATENCY, REQUESTS

PROMOTE, ROLL_BACK, INCONCLUSIVE, UNREADABLE = 0, 1, 2, 3


class MetricsError(RuntimeError):
    """The metrics endpoint did not answer, or answered something that is not Prometheus text."""


@dataclass(frozen=True)
class Snapshot:
    """Cumulative counts from one scrape, inference routes of one model only."""

    statuses: dict[str, float] = field(default_factory=dict)  # status code -> answers
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> answers at most that slow


def parse(text: str, model: str) -> Snapshot:
    statuses: dict[str, float] = {}
    buckets: dict[float, float] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as error:
        raise MetricsError(f"not Prometheus text: {error}") from None
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model") != model or labels.get("route") not in INFERENCE_ROUTES:
                continue
            if sample.name == f"{REQUESTS}_total":
                code = labels.get("status_code", "")
                statuses[code] = statuses.get(code, 0.0) + sample.value
            elif sample.name == f"{LATENCY}_bucket":
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return Snapshot(statuses, buckets)


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """`histogram_quantile(q, …)` over cumulative buckets: linear inside the bucket that holds the
    rank; the highest finite bound when the rank falls in +Inf; None without observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass(frozen=True)
class Window:
    """What the new model's clients saw between two scrapes."""

    requests: float
    errors: float
    throttled: float
    p99_seconds: float | None

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def throttle_ratio(self) -> float:
        return self.throttled / self.requests if self.requests else 0.0


def _delta(before: dict, after: dict) -> dict:
    """Counter increase per key; a counter that went down restarted (a pod replaced), so its
    current value is the increase, as Prometheus' rate() treats a reset."""
    return {k: (v - before.get(k, 0.0) if v >= before.get(k, 0.0) else v) for k, v in after.items()}


def window(before: Snapshot, after: Snapshot) -> Window:
    statuses = _delta(before.statuses, after.statuses)
    return Window(
        requests=sum(statuses.values()),
        errors=sum(v for code, v in statuses.items() if code.startswith("5")),
        throttled=statuses.get("429", 0.0),
        p99_seconds=quantile(0.99, _delta(before.buckets, after.buckets)),
    )


@dataclass(frozen=True)
class Thresholds:
    max_error_ratio: float = 0.01
    max_throttle_ratio: float = 0.05
    max_p99_ms: float = 1000.0
    min_requests: int = 50

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        """An environment's SLO (its alarm* settings)."""
        return cls(settings.alarm_error_ratio, settings.alarm_throttle_ratio, settings.alarm_p99_ms)


@dataclass(frozen=True)
class Breach:
    signal: str
    value: str
    threshold: str

    def __str__(self) -> str:
        return f"{self.signal} {self.value} > {self.threshold}"


def judge(seen: Window, thresholds: Thresholds) -> list[Breach]:
    """Every signal over its threshold; none before there are enough requests to judge."""
    if seen.requests < thresholds.min_requests:
        return []
    breaches = []
    if seen.error_ratio > thresholds.max_error_ratio:
        breaches.append(Breach("error ratio", f"{seen.error_ratio:.4f}", f"{thresholds.max_error_ratio:.4f}"))
    if seen.throttle_ratio > thresholds.max_throttle_ratio:
        breaches.append(
            Breach("throttle ratio", f"{seen.throttle_ratio:.4f}", f"{thresholds.max_throttle_ratio:.4f}")
        )
    if seen.p99_seconds is not None and seen.p99_seconds * 1000 > thresholds.max_p99_ms:
        breaches.append(
            Breach("p99 latency", f"{seen.p99_seconds * 1000:.1f} ms", f"{thresholds.max_p99_ms:g} ms")
        )
    return breaches


@dataclass(frozen=True)
class Step:
    seconds: float
    seen: Window
    breaches: list[Breach]


@dataclass(frozen=True)
class Analysis:
    verdict: int
    steps: list[Step]
    reason: str


def analyse(
    scrape: Callable[[], Snapshot],
    thresholds: Thresholds,
    bake_seconds: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Analysis:
    """Scrape until the bake ends or a signal breaches; the window grows from the first scrape."""
    start, first = clock(), scrape()
    steps: list[Step] = []
    while True:
        sleep(interval)
        elapsed = clock() - start
        seen = window(first, scrape())
        breaches = judge(seen, thresholds)
        steps.append(Step(elapsed, seen, breaches))
        if breaches:
            return Analysis(ROLL_BACK, steps, "; ".join(map(str, breaches)))
        if elapsed >= bake_seconds:
            if seen.requests < thresholds.min_requests:
                needed = f"fewer than the {thresholds.min_requests} a verdict needs"
                reason = f"{seen.requests:.0f} requests in {elapsed:.0f} s, {needed}"
                return Analysis(INCONCLUSIVE, steps, reason)
            return Analysis(PROMOTE, steps, f"no breach in {elapsed:.0f} s and {seen.requests:.0f} requests")


def scraper(url: str, model: str, timeout: float = 10) -> Callable[[], Snapshot]:
    def scrape() -> Snapshot:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the canary's own URL
                return parse(response.read().decode(), model)
        except (urllib.error.URLError, OSError, UnicodeDecodeError) as error:
            raise MetricsError(f"{url}: {error}") from None

    return scrape


VERDICTS = {PROMOTE: "promote", ROLL_BACK: "roll back", INCONCLUSIVE: "inconclusive"}


def markdown(model: str, analysis: Analysis, thresholds: Thresholds) -> str:
    def p99(seen: Window) -> str:
        return "-" if seen.p99_seconds is None else f"{seen.p99_seconds * 1000:.1f}"

    lines = [
        f"### Canary analysis of {model}: {VERDICTS[analysis.verdict]}",
        "",
        f"{analysis.reason}. Thresholds: error ratio ≤ {thresholds.max_error_ratio:g}, throttle ratio ≤ "
        f"{thresholds.max_throttle_ratio:g}, p99 ≤ {thresholds.max_p99_ms:g} ms, judged from "
        f"{thresholds.min_requests} requests.",
        "",
        "| after s | requests | error ratio | throttle ratio | p99 ms | breach |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {s.seconds:.1f} | {s.seen.requests:.0f} | {s.seen.error_ratio:.4f} | {s.seen.throttle_ratio:.4f} "
        f"| {p99(s.seen)} | {'; '.join(map(str, s.breaches)) or '-'} |"
        for s in analysis.steps
    ]
    return "\n".join(lines) + "\n"


def thresholds_for(args: argparse.Namespace) -> Thresholds:
    """The environment's SLO settings (or the defaults), each overridden by its flag when given."""
    base = Thresholds()
    if args.env:
        base = Thresholds.of(read_environment(args.env))
    chosen = Thresholds(
        base.max_error_ratio if args.max_error_ratio is None else args.max_error_ratio,
        base.max_throttle_ratio if args.max_throttle_ratio is None else args.max_throttle_ratio,
        base.max_p99_ms if args.max_p99_ms is None else args.max_p99_ms,
        args.min_requests,
    )
    for flag, value in (("--max-error-ratio", chosen.max_error_ratio), ("--max-throttle-ratio",
                        chosen.max_throttle_ratio), ("--max-p99-ms", chosen.max_p99_ms)):  # fmt: skip
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"{flag} must be a finite number ≥ 0, not {value}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metrics-url", required=True, help="the new model's servers' /metrics")
    parser.add_argument("--model", required=True, help="the model name its metrics are labelled with")
    parser.add_argument("--bake-seconds", type=float, default=300)
    parser.add_argument("--interval", type=float, default=15)
    parser.add_argument("--env", help="take the thresholds from this environment's alarm* settings")
    parser.add_argument("--max-error-ratio", type=float, help=f"default {Thresholds.max_error_ratio}")
    parser.add_argument("--max-throttle-ratio", type=float, help=f"default {Thresholds.max_throttle_ratio}")
    parser.add_argument("--max-p99-ms", type=float, help=f"default {Thresholds.max_p99_ms:g}")
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
        analysis = analyse(
            scraper(args.metrics_url, args.model), thresholds, args.bake_seconds, args.interval
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
