"""HTTP adapter, the container's entrypoint: a bare ASGI app on uvicorn (httptools, uvloop).

It only turns requests into route-table requests and answers back, and adds what a long-running
server needs: metrics (served on their own port, serving/metrics.py), JSON access logs, limits and a
graceful drain. Requests come two ways, with the same limits and accounting: as ASGI messages, and,
on LiteRT, straight from the protocol once all of a request has arrived (`admit_whole` and
`answer_whole`, called by serving/connection.py), which spares them the ASGI cycle's cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from serving import capture
from serving.app import build_dataplane
from serving.batching import MicroBatcher
from serving.connection import BODY_TIMED_OUT
from serving.contract import LIVE_PATH, READY_PATH, SHADOW_HEADER
from serving.dataplane import DataPlane
from serving.errors import PayloadTooLarge, RequestTimeout, Timeout, TooManyRequests, Unavailable
from serving.jsonio import dumps
from serving.metrics import TurnTally, count_capture, shadow_counters
from serving.prediction_mix import PredictionMix
from serving.routes import Request, Response, body_too_large, error_response, handle, route_label
from serving.settings import Settings
from serving.shadow import Counts, Mirror, Mirrored
from serving.stdout import HeldLines
from serving.v2 import decimal

INFERENCE_THREADS = 8
WHOLE_METHODS = frozenset({"GET", "POST"})
PROBES = frozenset({LIVE_PATH, READY_PATH})  # never refused: an overloaded pod is still alive


class Flag:
    """A one-way switch a signal handler may set: a plain attribute, so no lock that a second
    signal could interrupt and re-enter (threading.Event.set takes a non-reentrant lock)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


DRAINING = Flag()  # set by SIGTERM/SIGINT; signals are per process, so is this flag


class ServingApp:
    """One per worker process; the model is loaded at ASGI lifespan startup, before traffic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.plane: DataPlane | None = None
        self.on_loop = False  # LiteRT answers on the event loop, TensorFlow on the inference threads
        self.inflight = 0  # requests between headers and answer, for the concurrency limit
        self.buffered = 0  # body bytes held by requests in flight, for the memory budget
        self.inferring = 0  # requests on the inference threads, for the micro-batcher
        self.capture: capture.BackgroundWriter | None = None
        self.access_log: HeldLines | None = None
        self.tally: TurnTally | None = None
        self.mix: PredictionMix | None = None
        self.mirror: Mirror | None = None
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
                    self._start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start(self) -> None:
        """The model, and what each answer feeds: capture, the prediction mix, the shadow, the log."""
        self.plane = self._batched(build_dataplane(self.settings))
        self.on_loop = self.plane.runtime.name == "litert"
        self.capture = self._capture(self.plane)
        self.tally = TurnTally(self.plane.spec.name, asyncio.get_running_loop())
        self.mix = PredictionMix(self.plane.spec, self.tally.count_prediction)
        self.mirror = self._mirror(self.plane)
        if self.settings.access_log:
            self.access_log = HeldLines(asyncio.get_running_loop())

    def _stop(self) -> None:
        self.executor.shutdown(wait=True)
        if self.tally is not None:
            self.tally.flush()
        if self.access_log is not None:
            self.access_log.flush()
        if self.capture is not None:
            self.capture.close()
        if self.mirror is not None:
            self.mirror.close()

    def _capture(self, plane: DataPlane) -> capture.BackgroundWriter | None:
        """Payload capture on its own thread, or None when the environment leaves it off."""
        recorder = capture.recorder_for(self.settings.capture, plane.spec, "kubernetes", self.settings.track)
        if recorder is None:
            return None
        model = plane.spec.name
        return capture.BackgroundWriter(recorder, lambda outcome: count_capture(model, outcome))

    def _mirror(self, plane: DataPlane) -> Mirror | None:
        """Shadow traffic on its own thread, or None unless TWINSERVE_SHADOW_URL names the new model."""
        if not self.settings.shadow_url or self.settings.shadow_sample_rate <= 0:
            return None
        counts = Counts(*shadow_counters(plane.spec.name))
        settings = self.settings
        return Mirror(
            plane.spec, settings.shadow_url, settings.shadow_sample_rate, counts, settings.shadow_queue
        )

    def _batched(self, plane: DataPlane) -> DataPlane:
        """A TensorFlow call costs about the same for one row or many: concurrent requests share calls."""
        if plane.runtime.name == "tensorflow" and self.settings.batch_wait_ms > 0:
            plane.runtime = MicroBatcher(
                plane.runtime,
                plane.max_batch_rows,
                self.settings.batch_wait_ms / 1000,
                lambda: self.inferring,
            )
        return plane

    async def _read_body(self, receive: Any, held: list[int]) -> bytes:
        """The body, its bytes counted against the worker's budget as they arrive (`held[0]`, given
        back by the caller when the request is answered)."""
        chunks, size, limit = [], 0, self.settings.max_body_bytes
        budget = self.settings.max_buffered_bytes
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise body_too_large(limit)
            if self.buffered + len(chunk) > budget:
                raise Unavailable(
                    f"this worker already holds {self.buffered} bytes of requests; retry shortly"
                )
            self.buffered += len(chunk)
            held[0] += len(chunk)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _limited(self, scope: dict[str, Any], headers: dict[str, str], receive: Any) -> Response:
        """Every request but the probes is in flight from its headers to its answer, on both runtimes."""
        if self.inflight >= self.settings.max_concurrency:
            return error_response(
                TooManyRequests(f"more than {self.settings.max_concurrency} requests in flight")
            )
        self.inflight += 1
        held = [0]
        try:
            body = await self._receive_body(scope, headers, receive, held)
            if isinstance(body, Response):
                return body
            deadline = time.perf_counter() + self.settings.timeout_seconds
            request = Request(scope["method"], scope["path"], headers, body)
            if self.on_loop:
                return await self._inline(request, deadline)
            return await self._in_thread(request, deadline)
        finally:
            self.inflight -= 1
            self.buffered -= held[0]

    async def _receive_body(
        self, scope: dict[str, Any], headers: dict[str, str], receive: Any, held: list[int]
    ) -> bytes | Response:
        """The body, or the refusal to send: too large by its declared length (before reading any of it),
        too large as it streams in, or not all there within the read timeout."""
        limit, declared = self.settings.max_body_bytes, decimal(headers.get("content-length", ""))
        if declared is not None and declared > limit:
            return _closing(error_response(body_too_large(limit)))
        try:
            body = await self._read_body(receive, held)
        except (PayloadTooLarge, Unavailable) as error:
            return _closing(error_response(error))
        timed_out = scope.get("extensions", {}).get(BODY_TIMED_OUT)
        if timed_out is not None:
            return _body_timed_out(timed_out)
        return body

    async def _inline(self, request: Request, deadline: float) -> Response:
        """LiteRT answers in microseconds, so it runs on the event loop; the yield first lets requests that
        arrived together count as in flight, and the deadline holds for time spent queued behind them."""
        await asyncio.sleep(0)
        return self._answer_now(request, deadline)

    def _answer_now(self, request: Request, deadline: float) -> Response:
        if time.perf_counter() > deadline:
            return self._timed_out()
        response = handle(self.plane, request, self.settings.max_body_bytes)  # type: ignore[arg-type]
        return self._timed_out() if time.perf_counter() > deadline else response

    async def _in_thread(self, request: Request, deadline: float) -> Response:
        """TensorFlow calls take milliseconds: on inference threads, so the loop keeps accepting."""
        left = deadline - time.perf_counter()
        if left <= 0:
            return self._timed_out()
        self.inferring += 1
        try:
            work = asyncio.get_running_loop().run_in_executor(
                self.executor, handle, self.plane, request, self.settings.max_body_bytes
            )
            return await asyncio.wait_for(work, left)
        except TimeoutError:
            return self._timed_out()
        finally:
            self.inferring -= 1

    def _timed_out(self) -> Response:
        return error_response(Timeout(f"no answer within {self.settings.timeout_seconds:g}s"))

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        self._note_draining()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if path in PROBES:
            response = self._probe(method, path, headers)
        else:
            response = self._labelled(await self._limited(scope, headers, receive), method, path)
        response = self._closing_if_draining(response)
        raw_headers = [(k.encode(), v.encode()) for k, v in response.headers]
        raw_headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": response.body})
        self._answered(scope.get("client"), method, path, headers, response, started)

    def admit_whole(self, method: str, declared: int) -> bool:
        """Whether a request is answered where its last byte is read (serving/connection.py): on LiteRT,
        inside every limit the task path checks (so none of its refusals could apply), and then in flight
        with its declared body held in the budget until `answer_whole`, `refuse_whole` or
        `release_whole`."""
        admitted = (
            self.on_loop
            and method in WHOLE_METHODS
            and declared <= self.settings.max_body_bytes
            and self.inflight < self.settings.max_concurrency
            and self.buffered + declared <= self.settings.max_buffered_bytes
        )
        if admitted:
            self.inflight += 1
            self.buffered += declared
        return admitted

    def release_whole(self, declared: int) -> None:
        """An admitted request leaves: answered, refused, handed to the task path, or its client gone."""
        self.inflight -= 1
        self.buffered -= declared

    def answer_whole(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        client: tuple[str, int] | None,
        send: Callable[[Response], None],
    ) -> None:
        """A request `admit_whole` admitted, all of it at hand: answered and sent at once, with no task,
        receive or send cycle, and accounted for as the task path accounts for its requests."""
        started = time.perf_counter()
        self._note_draining()
        try:
            if path in PROBES:
                response = self._probe(method, path, headers)
            else:
                deadline = started + self.settings.timeout_seconds
                response = self._answer_now(Request(method, path, headers, body), deadline)
                response = self._labelled(response, method, path)
        finally:
            self.release_whole(len(body))
        send(self._closing_if_draining(response))
        self._answered(client, method, path, headers, response, started)

    def refuse_whole(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        declared: int,
        client: tuple[str, int] | None,
        send: Callable[[Response], None],
    ) -> None:
        """An admitted request whose body stopped arriving: 408 and close, as the task path answers it."""
        started = time.perf_counter()
        self.release_whole(declared)
        response = self._labelled(_body_timed_out(self.settings.read_timeout_seconds), method, path)
        send(response)
        self._answered(client, method, path, headers, response, started)

    def _note_draining(self) -> None:
        if DRAINING.is_set():
            self.plane.ready = False  # type: ignore[union-attr]

    def _probe(self, method: str, path: str, headers: dict[str, str]) -> Response:
        return handle(self.plane, Request(method, path, headers), self.settings.max_body_bytes)  # type: ignore[arg-type]

    @staticmethod
    def _labelled(response: Response, method: str, path: str) -> Response:
        if response.route == "unmatched":  # refused before the route table: shed, too large, too slow
            return response.labelled(route_label(method, path))
        return response

    @staticmethod
    def _closing_if_draining(response: Response) -> Response:
        # Clients reconnect elsewhere instead of reusing this connection.
        return _closing(response) if DRAINING.is_set() else response

    def _answered(
        self,
        client: tuple[str, int] | None,
        method: str,
        path: str,
        headers: dict[str, str],
        response: Response,
        started: float,
    ) -> None:
        """Metrics, the access log, the prediction mix, the shadow's share and payload capture."""
        seconds = time.perf_counter() - started
        self._record(client, method, path, response, seconds)
        if self.mix is not None and response.status == 200:
            self.mix.add(response.outputs)
        if self.mirror is not None and self._mirrors(response, headers):
            self.mirror.offer(Mirrored(response.inputs, response.outputs))  # type: ignore[arg-type]
        if self.capture is not None and self.capture.recorder.sampled(response.route):
            request_id = headers.get("x-request-id") or capture.new_request_id()
            self.capture.offer(capture.exchange(response, request_id, seconds))

    def _mirrors(self, response: Response, headers: dict[str, str]) -> bool:
        """An answered inference, not itself mirrored here by another server, in the sampled share."""
        return response.answered_inference and SHADOW_HEADER not in headers and self.mirror.sampled()  # type: ignore[union-attr]

    def _record(
        self, client: tuple[str, int] | None, method: str, path: str, response: Response, seconds: float
    ) -> None:
        self.tally.observe(response.route, response.status, seconds, response.rows)  # type: ignore[union-attr]
        if self.access_log is not None:
            line = {
                "ts": round(time.time(), 3),
                "method": method,
                "path": path,
                "status": response.status,
                "route": response.route,
                "rows": response.rows,
                "ms": round(seconds * 1000, 3),
                "bytes": len(response.body),
                "client": client[0] if client else "",
            }
            self.access_log.add(dumps(line) + b"\n")


def _body_timed_out(seconds: float) -> Response:
    """The one 408 for a body that stopped arriving, on both ways a request comes in; then close."""
    return _closing(error_response(RequestTimeout(f"request body not received within {seconds:g}s")))


def _closing(response: Response) -> Response:
    """The response with `Connection: close`: uvicorn closes the connection once it is sent."""
    if ("connection", "close") in response.headers:
        return response
    return replace(response, headers=(*response.headers, ("connection", "close")))


def create_app() -> ServingApp:
    """uvicorn's factory: each worker process builds its own app (and loads its own model)."""
    return ServingApp(Settings.from_env())
