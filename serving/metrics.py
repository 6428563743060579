"""Prometheus metrics of the HTTP adapter, named after MLServer's REST metrics.

With several worker processes, prometheus_client's multiprocess mode aggregates
them; PROMETHEUS_MULTIPROC_DIR must be set before this module is imported.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector

LABELS = ("model", "route", "status_code")
REQUESTS = Counter("rest_server_requests", "HTTP requests handled.", LABELS)
LATENCY = Histogram(
    "rest_server_request_duration_seconds",
    "Time from request received to response sent.",
    LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SIZE = Histogram(
    "model_infer_batch_size",
    "Rows per inference call.",
    ("model",),
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)


def observe(model: str, route: str, status: int, seconds: float, rows: int) -> None:
    labels = (model, route, str(status))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(seconds)
    if rows:
        BATCH_SIZE.labels(model).observe(rows)


def exposition() -> tuple[bytes, str]:
    """The text format, summed over worker processes when there are several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
