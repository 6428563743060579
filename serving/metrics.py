"""Prometheus metrics of the HTTP adapter, named after MLServer's REST metrics.

They are served on a port of their own (TWINSERVE_METRICS_PORT), never the model's: a Service or
load balancer that exposes the model does not expose them. With several worker processes,
prometheus_client's multiprocess mode sums them (PROMETHEUS_MULTIPROC_DIR, set before the workers
start) and the supervisor serves the sum.
"""

from __future__ import annotations

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


def observe(model: str, route: str, status: int, seconds: float, rows: int) -> None:
    requests, latency, batch_size = _request_series(model, route, status)
    requests.inc()
    latency.observe(seconds)
    if rows:
        batch_size.observe(rows)


def count_predictions(model: str) -> Callable[[str, str, str, int], None]:
    """What serving/prediction_mix.py counts with, for this model."""

    @functools.lru_cache(maxsize=1024)  # one series per class (prediction_mix.MIX_MAX_CLASSES at most)
    def series(output: str, column: str, label: str) -> Any:
        return PREDICTIONS.labels(model, output, column, label)

    def count(output: str, column: str, label: str, rows: int) -> None:
        series(output, column, label).inc(rows)

    return count


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
