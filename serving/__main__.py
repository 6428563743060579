"""`python -m serving`: validate settings, then run the HTTP server with a graceful drain on SIGTERM."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from types import FrameType

import uvicorn
from uvicorn.supervisors import Multiprocess

from serving.cpus import available_cpus
from serving.http_server import DRAINING
from serving.settings import Settings, SettingsError


class DrainingServer(uvicorn.Server):
    """On SIGTERM: readiness turns false at once, the server keeps serving for `drain_seconds`
    (so load balancers stop routing here), then stops accepting and lets in-flight requests finish."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if DRAINING.is_set() or self.drain_seconds == 0:
            DRAINING.set()
            super().handle_exit(sig, frame)
            return
        DRAINING.set()
        timer = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


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
    server = DrainingServer(config, settings.drain_seconds)
    if workers > 1:
        Multiprocess(config, target=server.run, sockets=[config.bind_socket()]).run()
    else:
        server.run()
    return 0 if server.started or workers > 1 else 1


if __name__ == "__main__":
    sys.exit(main())
