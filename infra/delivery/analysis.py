"""The canary's arithmetic, pure: a scrape of the server's own Prometheus metrics (inference routes of
one model), the window between two scrapes, and the SLO signals judged on it.

- error ratio: 5xx answers over all answers;
- throttle ratio: 429 answers (load shed) over all answers;
- p99 latency: from the histogram's buckets, as Prometheus' `histogram_quantile` computes it;
- shadow disagreement (read from the stable pods that mirror to the new model): the share of
  mirrored rows whose top class the new model answered otherwise, once MIN_SHADOW_ROWS were compared;
- prediction mix (a classifier's, against a stable pod's over the same bake): the population
  stability index of the shares of answered rows per top class, once each side has answered
  MIX_ROWS_PER_CLASS rows per class it named (so a sample's noise alone stays well under the threshold).

A counter that went down restarted (a pod replaced) and counts from zero, as Prometheus' rate() does.
Nothing here waits or loops: `watch.watch` is the one bake loop, and `canary.py` its CLI.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from drift.report import psi
from program.settings import Settings, Slo
from program.slo import INFERENCE_ROUTES, LATENCY, MIN_SHADOW_ROWS, REQUESTS
from prometheus_client.parser import text_string_to_metric_families

from delivery.errors import MetricsError
from serving.contract import PREDICTIONS_METRIC, SHADOW_ROWS_METRIC


@dataclass(frozen=True)
class Snapshot:
    """Cumulative counts from one scrape of one model: its inference routes' answers, and its mix."""

    statuses: dict[str, float] = field(default_factory=dict)  # status code -> answers
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> answers at most that slow
    predictions: dict[str, float] = field(default_factory=dict)  # class (column) -> rows it topped
    labels: dict[str, str] = field(default_factory=dict)  # class (column) -> its name
    shadow_rows: dict[str, float] = field(default_factory=dict)  # agreed / disagreed -> mirrored rows


def parse(text: str, model: str) -> Snapshot:
    snapshot = Snapshot()
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as error:
        raise MetricsError(f"not Prometheus text: {error}") from None
    for family in families:
        for sample in family.samples:
            if sample.labels.get("model") == model:
                _add(snapshot, sample.name, sample.labels, sample.value)
    return snapshot


def _add(snapshot: Snapshot, name: str, labels: dict[str, str], value: float) -> None:
    """One sample of the model's into the snapshot's sums (several workers' or series' add up)."""
    if name == f"{SHADOW_ROWS_METRIC}_total":
        verdict = labels["top_class"]
        snapshot.shadow_rows[verdict] = snapshot.shadow_rows.get(verdict, 0.0) + value
    elif name == f"{PREDICTIONS_METRIC}_total":
        column = labels["class"]
        snapshot.predictions[column] = snapshot.predictions.get(column, 0.0) + value
        snapshot.labels[column] = labels.get("label", column)
    elif labels.get("route") not in INFERENCE_ROUTES:
        return
    elif name == f"{REQUESTS}_total":
        code = labels.get("status_code", "")
        snapshot.statuses[code] = snapshot.statuses.get(code, 0.0) + value
    elif name == f"{LATENCY}_bucket":
        bound = float(labels["le"])
        snapshot.buckets[bound] = snapshot.buckets.get(bound, 0.0) + value


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
    mix: dict[str, float] = field(default_factory=dict)  # class (column) -> rows it topped
    labels: dict[str, str] = field(default_factory=dict)  # class (column) -> its name
    shadow_rows: dict[str, float] = field(default_factory=dict)  # agreed / disagreed -> mirrored rows

    @property
    def disagreement(self) -> float | None:
        """Mirrored rows the new model ranked another class first, over all compared; None before any."""
        compared = sum(self.shadow_rows.values())
        return self.shadow_rows.get("disagreed", 0.0) / compared if compared else None

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
        mix=_delta(before.predictions, after.predictions),
        labels=after.labels,
        shadow_rows=_delta(before.shadow_rows, after.shadow_rows),
    )


MIX_ROWS_PER_CLASS = 20


@dataclass(frozen=True)
class MixShift:
    """The new model's prediction mix against the stable model's over the same window."""

    psi: float | None  # None until both sides answered enough rows
    new: dict[str, float]  # class (column) -> share
    stable: dict[str, float]
    rows_needed: int
    labels: dict[str, str] = field(default_factory=dict)  # class (column) -> its name

    def moved(self, most: int = 3) -> str:
        """The classes whose shares moved most, as `name stable% → new%`."""
        ranked = sorted(self.new, key=lambda c: -abs(self.new[c] - self.stable[c]))[:most]
        return ", ".join(f"{self.labels.get(c, c)} {self.stable[c]:.0%} → {self.new[c]:.0%}" for c in ranked)


def mix_shift(new: Window, stable: Window, min_rows: int) -> MixShift | None:
    """None when neither side answered a classifier's rows (the model has no mix). Classes are matched
    by column; the stable side's names are shown."""
    classes = sorted(set(new.mix) | set(stable.mix))
    if not classes:
        return None
    new_rows, stable_rows = sum(new.mix.values()), sum(stable.mix.values())
    needed = max(min_rows, MIX_ROWS_PER_CLASS * len(classes))
    new_shares = {c: new.mix.get(c, 0.0) / new_rows if new_rows else 0.0 for c in classes}
    stable_shares = {c: stable.mix.get(c, 0.0) / stable_rows if stable_rows else 0.0 for c in classes}
    enough = min(new_rows, stable_rows) >= needed
    index = psi([stable_shares[c] for c in classes], [new_shares[c] for c in classes]) if enough else None
    return MixShift(index, new_shares, stable_shares, needed, {**new.labels, **stable.labels})


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


def mix_breach(shift: MixShift | None, slo: Slo) -> Breach | None:
    """A judged prediction mix past alarmPredictionMixPsi, with the classes that moved; else None."""
    if shift is None or shift.psi is None or shift.psi <= slo.prediction_mix_psi:
        return None
    return Breach("prediction mix PSI", f"{shift.psi:.3f} ({shift.moved()})", f"{slo.prediction_mix_psi:g}")


def judge(seen: Window, thresholds: Thresholds, stable: Window | None = None) -> list[Breach]:
    """Every signal over its threshold; none before there are enough requests to judge. With the stable
    side's window, the prediction mix too."""
    if seen.requests < thresholds.min_requests:
        return []
    breaches = []
    slo = thresholds.slo
    shift = mix_shift(seen, stable, thresholds.min_requests) if stable else None
    disagreement = (
        stable.disagreement if stable and sum(stable.shadow_rows.values()) >= MIN_SHADOW_ROWS else None
    )
    if disagreement is not None and disagreement > slo.max_disagreement:
        breaches.append(Breach("shadow disagreement", f"{disagreement:.4f}", f"{slo.max_disagreement:g}"))
    moved = mix_breach(shift, slo)
    if moved is not None:
        breaches.append(moved)
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
