"""Prometheus metrics of the HTTP adapter, named after MLServer's REST metrics.

They are served on a port of their own (TWINSERVE_METRICS_PORT), never the model's: a Service or
load balancer that exposes the model does not expose them. With several worker processes,
prometheus_client's multiprocess mode sums them (PROMETHEUS_MULTIPROC_DIR, set before the workers
start) and the supervisor serves the sum.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Histogram, start_wsgi_server, values
from prometheus_client.multiprocess import MultiProcessCollector

from serving.contract import (
    BATCH_METRIC,
    CAPTURE_METRIC,
    LATENCY_METRIC,
    PREDICTIONS_METRIC,
    REQUESTS_METRIC,
    SHADOW_LATENCY_METRIC,
    SHADOW_REQUESTS_METRIC,
    SHADOW_ROWS_METRIC,
)

_pid = os.getpid()


def _process_id() -> int:
    """This process's id, read once and again after a fork. prometheus_client asks on every increment,
    in multiprocess mode, to notice a fork: a system call each time, six a request, where this is not."""
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # as prometheus_client chooses its value class, at import
    os.register_at_fork(after_in_child=_forked)
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_id)

LABELS = ("model", "route", "status_code")
REQUESTS = Counter(REQUESTS_METRIC, "HTTP requests handled.", LABELS)
LATENCY = Histogram(
    LATENCY_METRIC,
    "Time from request received to response sent.",
    LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SIZE = Histogram(
    BATCH_METRIC,
    "Rows per inference call.",
    ("model",),
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)

PREDICTIONS = Counter(
    PREDICTIONS_METRIC,
    "Answered rows by the class their answer ranked first (classifiers only).",
    ("model", "output", "class", "label"),
)

SHADOW_REQUESTS = Counter(
    SHADOW_REQUESTS_METRIC, "Requests mirrored to the shadow model, by outcome.", ("model", "outcome")
)
SHADOW_ROWS = Counter(
    SHADOW_ROWS_METRIC, "Mirrored rows by whether the shadow's top class agreed.", ("model", "top_class")
)
SHADOW_LATENCY = Histogram(
    SHADOW_LATENCY_METRIC,
    "The shadow model's answer time, as the mirroring server saw it.",
    ("model",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

CAPTURED = Counter(
    CAPTURE_METRIC,
    "Payload capture records: written, dropped (the writer was behind), failed.",
    ("model", "outcome"),
)


@functools.lru_cache(maxsize=4096)  # models x routes x statuses: a few dozen in practice
def _request_series(model: str, route: str, status: int) -> tuple[Any, Any, Any]:
    """One request's counter, latency histogram and batch histogram, looked up once per label set:
    `labels()` costs microseconds on every request otherwise."""
    labels = (model, route, str(status))
    return REQUESTS.labels(*labels), LATENCY.labels(*labels), BATCH_SIZE.labels(model)


@functools.lru_cache(maxsize=1024)  # one series per class (prediction_mix.MIX_MAX_CLASSES at most)
def _prediction_series(model: str, output: str, column: str, label: str) -> Any:
    return PREDICTIONS.labels(model, output, column, label)


class TurnTally:
    """The request metrics of one turn of the event loop, written at its end.

    In multiprocess mode each increment is a locked write to a memory-mapped file, and a request made
    six (its count, its latency's bucket and sum, its rows' bucket and sum, its top class): under load
    a turn answers several requests, and here each series is written once a turn. Histograms get their
    observations bucket by bucket, as `observe` would have counted them one at a time."""

    def __init__(self, model: str, loop: asyncio.AbstractEventLoop) -> None:
        self.model = model
        self._loop = loop
        self._requests: dict[tuple[str, int], tuple[list[float], list[int]]] = {}
        self._predictions: dict[tuple[str, str, str], int] = {}
        self._pending = False

    def observe(self, route: str, status: int, seconds: float, rows: int) -> None:
        self._hold()
        latencies, batches = self._requests.setdefault((route, status), ([], []))
        latencies.append(seconds)
        if rows:
            batches.append(rows)

    def count_prediction(self, output: str, column: str, label: str, rows: int) -> None:
        """What serving/prediction_mix.py counts with."""
        self._hold()
        key = (output, column, label)
        self._predictions[key] = self._predictions.get(key, 0) + rows

    def _hold(self) -> None:
        if not self._pending:
            self._pending = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        requests, self._requests = self._requests, {}
        predictions, self._predictions = self._predictions, {}
        self._pending = False
        for (route, status), (latencies, batches) in requests.items():
            counter, latency, batch_size = _request_series(self.model, route, status)
            counter.inc(len(latencies))
            _observe_all(latency, latencies)
            if batches:
                _observe_all(batch_size, batches)
        for (output, column, label), rows in predictions.items():
            _prediction_series(self.model, output, column, label).inc(rows)


def _observe_all(histogram: Any, amounts: list[float] | list[int]) -> None:
    """`histogram.observe` of each amount, in one write per bucket touched and one to the sum.

    prometheus_client has no call for several observations; this writes the same values its
    `observe` does (the first bucket whose bound holds the amount, and the sum), through the child's
    `_buckets` and `_sum` (tests/serving/test_metrics.py checks the two give the same exposition)."""
    if len(amounts) == 1:
        histogram.observe(amounts[0])
        return
    histogram._sum.inc(sum(amounts))
    counts: dict[int, int] = {}
    bounds = histogram._upper_bounds
    for amount in amounts:
        index = bisect.bisect_left(bounds, amount)
        counts[index] = counts.get(index, 0) + 1
    for index, count in counts.items():
        histogram._buckets[index].inc(count)


def shadow_counters(
    model: str,
) -> tuple[Callable[[str], None], Callable[[str, int], None], Callable[[float], None]]:
    """What serving/shadow.py counts with, for this model: requests, rows and latency."""
    return (
        lambda outcome: SHADOW_REQUESTS.labels(model, outcome).inc(),
        lambda verdict, rows: SHADOW_ROWS.labels(model, verdict).inc(rows),
        lambda seconds: SHADOW_LATENCY.labels(model).observe(seconds),
    )


def count_capture(model: str, outcome: str) -> None:
    CAPTURED.labels(model, outcome).inc()


def registry() -> CollectorRegistry:
    """This process's metrics, or, with several workers, all of theirs summed at each scrape."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        summed = CollectorRegistry()
        MultiProcessCollector(summed)
        return summed
    return DEFAULT_REGISTRY


def serve(host: str, port: int) -> Callable[[], None]:
    """The text format on `host:port`, from a thread of this process; returns what stops it. Binding
    here, before any worker starts, makes a taken port an error at once."""
    server, thread = start_wsgi_server(port, host, registry())

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
