"""HTTP adapter, the container's entrypoint: a bare ASGI app on uvicorn (httptools, uvloop).

It only turns ASGI messages into route-table requests and back, and adds what a
long-running server needs: /metrics, JSON access logs, limits and a graceful drain.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from serving.app import build_dataplane
from serving.batching import MicroBatcher
from serving.dataplane import DataPlane
from serving.errors import PayloadTooLarge, Timeout, TooManyRequests
from serving.metrics import exposition, observe
from serving.routes import Request, Response, body_too_large, error_response, handle
from serving.settings import Settings

INFERENCE_THREADS = 8
DRAINING = threading.Event()  # set by SIGTERM; signals are per process, so is this flag


class ServingApp:
    """One per worker process; the model is loaded at ASGI lifespan startup, before traffic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.plane: DataPlane | None = None
        self.inflight = 0
        # Several threads, so concurrent TensorFlow requests can meet in the micro-batcher.
        self.executor = ThreadPoolExecutor(max_workers=INFERENCE_THREADS, thread_name_prefix="inference")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.plane = self._batched(build_dataplane(self.settings))
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _batched(self, plane: DataPlane) -> DataPlane:
        """A TensorFlow call costs about the same for one row or many: concurrent requests share calls."""
        if plane.runtime.name == "tensorflow" and self.settings.batch_wait_ms > 0:
            plane.runtime = MicroBatcher(
                plane.runtime, plane.max_batch_rows, self.settings.batch_wait_ms / 1000, lambda: self.inflight
            )
        return plane

    async def _read_body(self, receive: Any) -> bytes:
        chunks, size, limit = [], 0, self.settings.max_body_bytes
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise body_too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _respond(self, request: Request) -> Response:
        assert self.plane is not None
        if DRAINING.is_set():
            self.plane.ready = False
        if self.inflight >= self.settings.max_concurrency:
            return error_response(
                TooManyRequests(f"more than {self.settings.max_concurrency} requests in flight")
            )
        if self.plane.runtime.name == "litert":
            return handle(self.plane, request, self.settings.max_body_bytes)
        self.inflight += 1
        try:
            work = asyncio.get_running_loop().run_in_executor(
                self.executor, handle, self.plane, request, self.settings.max_body_bytes
            )
            return await asyncio.wait_for(work, self.settings.timeout_seconds)
        except TimeoutError:
            return error_response(Timeout(f"inference took longer than {self.settings.timeout_seconds}s"))
        finally:
            self.inflight -= 1

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        if path == "/metrics" and method == "GET":
            body, content_type = exposition()
            response = Response(200, body, (("content-type", content_type),), route="metrics")
        else:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                body = await self._read_body(receive)
            except PayloadTooLarge as error:
                response = error_response(error)
            else:
                response = await self._respond(Request(method, path, headers, body))
        raw_headers = [(k.encode(), v.encode()) for k, v in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": response.body})
        self._record(scope, method, path, response, time.perf_counter() - started)

    def _record(
        self, scope: dict[str, Any], method: str, path: str, response: Response, seconds: float
    ) -> None:
        model = self.plane.spec.name if self.plane else ""
        observe(model, response.route, response.status, seconds, response.rows)
        if self.settings.access_log:
            client = scope.get("client") or ("", 0)
            line = {
                "ts": round(time.time(), 3),
                "method": method,
                "path": path,
                "status": response.status,
                "route": response.route,
                "rows": response.rows,
                "ms": round(seconds * 1000, 3),
                "bytes": len(response.body),
                "client": client[0],
            }
            sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")


def create_app() -> ServingApp:
    """uvicorn's factory: each worker process builds its own app (and loads its own model)."""
    return ServingApp(Settings.from_env())
