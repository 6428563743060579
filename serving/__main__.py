"""`python -m serving`: validate settings, then run the HTTP server with a graceful drain on SIGTERM."""

from __future__ import annotations

import os
import sys
import tempfile

import uvicorn

from serving.cpus import available_cpus
from serving.server import DrainingServer, supervise
from serving.settings import Settings, SettingsError


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    workers = settings.workers or available_cpus()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="twinserve-metrics-")
    config = uvicorn.Config(
        "serving.http_server:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.timeout_seconds) + 1,
    )
    if workers > 1:
        return supervise(config, settings.drain_seconds, workers)
    server = DrainingServer(config, settings.drain_seconds)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
