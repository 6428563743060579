"""`python -m serving`: validate settings, then run the HTTP server with a graceful drain on SIGTERM."""

from __future__ import annotations

import functools
import os
import resource
import sys
import tempfile

import uvicorn

from serving.connection import ConnectionLimits, GuardedHttpToolsProtocol
from serving.cpus import available_cpus
from serving.metrics import serve as serve_metrics
from serving.server import DrainingServer
from serving.settings import Settings, SettingsError
from serving.supervisor import Limits, supervise


def raise_open_files_limit(max_connections: int) -> None:
    """Containers often start with a soft limit of 1024 open files: raise it (up to the hard limit)
    so `TWINSERVE_MAX_CONNECTIONS` is what refuses connections, not a failing accept()."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + 256  # the model, logs, metrics files, the listening socket
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    workers = settings.workers or available_cpus()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="twinserve-metrics-")
    limits = ConnectionLimits(
        settings.max_header_bytes, settings.read_timeout_seconds, settings.max_connections
    )
    raise_open_files_limit(settings.max_connections)
    try:  # in this process: the supervisor sums its workers' metrics, a single worker serves its own
        stop_metrics = serve_metrics(settings.host, settings.metrics_port) if settings.metrics_port else None
    except OSError as exc:
        print(
            f"error: cannot serve metrics on {settings.host}:{settings.metrics_port} "
            f"(TWINSERVE_METRICS_PORT): {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    try:
        return _serve(settings, config_for(settings, workers, limits), workers)
    finally:
        if stop_metrics:
            stop_metrics()


def config_for(settings: Settings, workers: int, limits: ConnectionLimits) -> uvicorn.Config:
    return uvicorn.Config(
        "serving.http_server:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        loop="uvloop",
        http=functools.partial(GuardedHttpToolsProtocol, limits=limits),  # type: ignore[arg-type]
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # X-Forwarded-* from anyone is not trusted; the access log names the peer
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.timeout_seconds) + 1,
    )


def _serve(settings: Settings, config: uvicorn.Config, workers: int) -> int:
    if workers > 1:
        # A worker's shutdown after the drain: the accept queue (0.2 s), idle connections (0.5 s),
        # in-flight requests (timeout_graceful_shutdown), then interpreter exit.
        grace = config.timeout_graceful_shutdown + 2.0
        return supervise(config, workers, Limits(settings.drain_seconds, grace, settings.hung_worker_seconds))
    server = DrainingServer(config, settings.drain_seconds)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
