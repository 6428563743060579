"""The canary's arithmetic, pure: a scrape of the server's own Prometheus metrics (inference routes of
one model), the window between two scrapes, and the SLO signals judged on it.

- error ratio: 5xx answers over all answers;
- throttle ratio: 429 answers (load shed) over all answers;
- p99 latency: from the histogram's buckets, as Prometheus' `histogram_quantile` computes it.

A counter that went down restarted (a pod replaced) and counts from zero, as Prometheus' rate() does.
Nothing here waits or loops: `watch.watch` is the one bake loop, and `canary.py` its CLI.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from program.settings import Settings, Slo
from program.slo import INFERENCE_ROUTES, LATENCY, REQUESTS
from prometheus_client.parser import text_string_to_metric_families

from delivery.errors import MetricsError


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
    """An environment's SLO, and the fewest answers a verdict needs."""

    slo: Slo
    min_requests: int = 50

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        return cls(settings.slo)


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
    slo = thresholds.slo
    if seen.error_ratio > slo.error_ratio:
        breaches.append(Breach("error ratio", f"{seen.error_ratio:.4f}", f"{slo.error_ratio:.4f}"))
    if seen.throttle_ratio > slo.throttle_ratio:
        breaches.append(Breach("throttle ratio", f"{seen.throttle_ratio:.4f}", f"{slo.throttle_ratio:.4f}"))
    if seen.p99_seconds is not None and seen.p99_seconds * 1000 > slo.p99_ms:
        breaches.append(Breach("p99 latency", f"{seen.p99_seconds * 1000:.1f} ms", f"{slo.p99_ms:g} ms"))
    return breaches


def scraper(url: str, model: str, timeout: float = 10) -> Callable[[], Snapshot]:
    def scrape() -> Snapshot:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the canary's own URL
                return parse(response.read().decode(), model)
        except (urllib.error.URLError, OSError, UnicodeDecodeError) as error:
            raise MetricsError(f"{url}: {error}") from None

    return scrape
