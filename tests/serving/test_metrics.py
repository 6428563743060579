"""Request metrics held for a turn of the event loop: the same counts, buckets and sums as one write each."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from prometheus_client import CollectorRegistry, Histogram

from serving.contract import BATCH_METRIC, LATENCY_METRIC, PREDICTIONS_METRIC, REQUESTS_METRIC
from serving.metrics import DEFAULT_REGISTRY, TurnTally, _observe_all

AMOUNTS = [0.0001, 0.0005, 0.0007, 0.003, 0.003, 0.2, 7.0, 12.0, 0.0]


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("le", "")): s.value for m in histogram.collect() for s in m.samples
            if not s.name.endswith("_created")}  # fmt: skip


@pytest.mark.parametrize("amounts", [AMOUNTS, AMOUNTS[:1], [1, 1, 2, 4096, 5000]])
def test_observing_all_at_once_exposes_what_observing_one_by_one_does(amounts: list[float]) -> None:
    buckets = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    one_by_one = Histogram("one", "h", registry=CollectorRegistry(), buckets=buckets)
    at_once = Histogram("one", "h", registry=CollectorRegistry(), buckets=buckets)
    for amount in amounts:
        one_by_one.observe(amount)
    _observe_all(at_once, amounts)
    expected, got = _samples(one_by_one), _samples(at_once)
    assert got.keys() == expected.keys()
    assert got == pytest.approx(expected)


def test_a_turns_requests_and_predictions_are_all_counted_once_the_turn_ends() -> None:
    model = "tally-test"

    def value(name: str, **labels: str) -> float:
        return DEFAULT_REGISTRY.get_sample_value(name, {"model": model, **labels}) or 0.0

    async def run() -> tuple[float, float]:
        tally = TurnTally(model, asyncio.get_running_loop())
        for seconds in (0.0004, 0.0004, 0.02):
            tally.observe("v2_infer", 200, seconds, 1)
        tally.observe("v2_infer", 400, 0.0001, 0)
        tally.count_prediction("probabilities", "0", "setosa", 1)
        tally.count_prediction("probabilities", "0", "setosa", 3)
        during = value(f"{REQUESTS_METRIC}_total", route="v2_infer", status_code="200")
        await asyncio.sleep(0)
        return during, value(f"{REQUESTS_METRIC}_total", route="v2_infer", status_code="200")

    during, after = uvloop.run(run())
    assert (during, after) == (0.0, 3.0)
    ok = {"route": "v2_infer", "status_code": "200"}
    assert value(f"{LATENCY_METRIC}_bucket", le="0.0005", **ok) == 2.0
    assert value(f"{LATENCY_METRIC}_bucket", le="0.025", **ok) == 3.0
    assert value(f"{LATENCY_METRIC}_sum", **ok) == pytest.approx(0.0208)
    assert value(f"{REQUESTS_METRIC}_total", route="v2_infer", status_code="400") == 1.0
    assert value(f"{BATCH_METRIC}_count") == 3.0  # the refused request had no rows
    top = {"output": "probabilities", "class": "0", "label": "setosa"}
    assert value(f"{PREDICTIONS_METRIC}_total", **top) == 4.0
