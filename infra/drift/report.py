"""Each reference feature against the captured records: the population stability index, the bins
that moved, categories never seen in the reference, and a markdown report a person can read at a
glance (a bar chart per drifting feature)."""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from serving.contract import READS_CATEGORY, READS_TOP_CLASS, feature_values

UNSEEN = "(unseen)"  # the bucket of categories the reference never had
FLOOR = 1e-4  # an empty bin's share, so the index stays finite


def psi(expected: Iterable[float], observed: Iterable[float]) -> float:
    """The population stability index of two share vectors over the same buckets (an empty bucket
    counts as FLOOR, so the index stays finite)."""
    return sum(
        (max(o, FLOOR) - max(e, FLOOR)) * math.log(max(o, FLOOR) / max(e, FLOOR))
        for e, o in zip(expected, observed, strict=True)
    )


@dataclass
class FeatureDrift:
    name: str
    group: str
    buckets: list[str]
    expected: list[float]
    observed: list[float] = field(default_factory=list)
    count: int = 0
    unseen: list[str] = field(default_factory=list)

    @property
    def psi(self) -> float:
        return psi(self.expected, self.observed)


@dataclass
class Drift:
    model: str
    version: str
    records: int  # the model version's records read
    skipped: int  # other models' or versions' records
    features: list[FeatureDrift]
    max_psi: float
    min_records: int
    source: str

    @property
    def judged(self) -> bool:
        return self.records >= self.min_records

    @property
    def drifting(self) -> list[FeatureDrift]:
        return [f for f in self.features if self.judged and f.count and f.psi > self.max_psi]


def _buckets(feature: dict[str, Any]) -> tuple[list[str], list[float]]:
    if feature["reads"] in (READS_CATEGORY, READS_TOP_CLASS):
        shares = feature["shares"]
        return [*shares, UNSEEN], [*shares.values(), 0.0]
    edges = feature["edges"]
    names = [f"< {_number(edges[0])}"] if edges else ["all"]
    names += [f"{_number(low)} to {_number(high)}" for low, high in itertools.pairwise(edges)]
    names += [f"≥ {_number(edges[-1])}"] if edges else []
    return names, list(feature["shares"])


def _number(value: float) -> str:
    return f"{value:.4g}"


def measure(
    reference: dict[str, Any],
    records: Iterable[dict[str, Any]],
    model: str,
    version: str,
    max_psi: float,
    min_records: int,
) -> Drift:
    """One pass over the records: each feature's values counted into its reference buckets."""
    features = reference["features"]
    indexes = [_category_index(feature) for feature in features]  # once, not per record
    counts = [Counter() for _ in features]
    unseen: list[Counter[str]] = [Counter() for _ in features]
    read = skipped = 0
    for record in records:
        if record.get("model") != model or str(record.get("model_version")) != version:
            skipped += 1
            continue
        read += 1
        tensors = {(g, t.get("name")): t for g in ("inputs", "outputs") for t in record.get(g) or ()}
        for i, feature in enumerate(features):
            tensor = tensors.get((feature["group"], feature["tensor"]))
            if tensor is not None:
                _count(feature, indexes[i], feature_values(feature, tensor), counts[i], unseen[i])
    drifts = []
    for feature, counted, strangers in zip(features, counts, unseen, strict=True):
        names, expected = _buckets(feature)
        total = sum(counted.values())
        observed = [counted[i] / total if total else 0.0 for i in range(len(names))]
        drifts.append(FeatureDrift(feature["name"], feature["group"], names, expected, observed, total,
                                   [name for name, _ in strangers.most_common(5)]))  # fmt: skip
    source = reference.get("source", "training")
    return Drift(model, version, read, skipped, drifts, max_psi, min_records, source)


def _category_index(feature: dict[str, Any]) -> dict[str, int] | None:
    """A category feature's bucket of each known name (the unseen bucket comes after them); None for
    a numeric one."""
    if feature["reads"] not in (READS_CATEGORY, READS_TOP_CLASS):
        return None
    return {name: i for i, name in enumerate(feature["shares"])}


def _count(
    feature: dict[str, Any],
    index: dict[str, int] | None,
    values: list[Any],
    counted: Counter[int],
    unseen: Counter[str],
) -> None:
    if index is not None:
        for value in values:
            bucket = index.get(value)
            if bucket is None:
                unseen[value] += 1
                bucket = len(index)
            counted[bucket] += 1
        return
    edges = feature["edges"]
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            counted[bisect.bisect_right(edges, value)] += 1


BAR = 30  # characters of the widest bar


def markdown(drift: Drift) -> str:
    """The summary first (verdict, records, the worst features), then a chart per drifting feature."""
    lines = [f"# Drift of {drift.model} v{drift.version}", ""]
    if not drift.judged:
        lines += [f"Not judged: {drift.records} records of this version, fewer than the "
                  f"{drift.min_records} a verdict needs. Raise the capture rate or the window."]  # fmt: skip
    elif drift.drifting:
        names = ", ".join(f"`{f.name}`" for f in drift.drifting)
        lines += [f"**Drift**: {len(drift.drifting)} of {len(drift.features)} features moved past "
                  f"PSI {drift.max_psi:g}: {names}."]  # fmt: skip
    else:
        lines += [f"No drift: every feature within PSI {drift.max_psi:g}."]
    lines += ["", f"{drift.records} records read ({drift.skipped} of other models or versions skipped)."]
    if drift.source == "generated":
        lines += ["", "The reference was made from generated rows, not data: export with `EVAL=` to judge "
                  "against your own."]  # fmt: skip
    lines += ["", "| feature | PSI | records | unseen categories |", "|---|---:|---:|---|"]
    for feature in sorted(drift.features, key=lambda f: -f.psi if f.count else 0):
        psi = f"{feature.psi:.3f}" if feature.count else "none read"
        flag = " ⚠" if feature in drift.drifting else ""
        unseen = ", ".join(f"`{u}`" for u in feature.unseen) or ""
        lines.append(f"| `{feature.name}`{flag} | {psi} | {feature.count} | {unseen} |")
    for feature in drift.drifting:
        lines += ["", f"## `{feature.name}` (PSI {feature.psi:.3f})", "", "```", *_chart(feature), "```"]
    return "\n".join(lines) + "\n"


def _chart(feature: FeatureDrift) -> list[str]:
    """Reference (░) and production (█) share of each bucket, side by side."""
    width = max(len(name) for name in feature.buckets)
    peak = max([*feature.expected, *feature.observed, 1e-9])
    rows = []
    for name, expected, observed in zip(feature.buckets, feature.expected, feature.observed, strict=True):
        rows.append(
            f"{name:>{width}}  reference  {'░' * round(BAR * expected / peak):<{BAR}} {expected:6.1%}"
        )
        rows.append(f"{'':>{width}}  production {'█' * round(BAR * observed / peak):<{BAR}} {observed:6.1%}")
    return rows
