"""uvicorn's httptools protocol with the guards it lacks against slow and hostile clients.

uvicorn bounds neither the size of a request's headers nor the time a client takes
to send them (its keep-alive timer is only armed after a response, and any byte
resets it), nor the number of open connections. Each connection here gets:
headers within `max_header_bytes` (431, then close), headers complete within
`read_timeout` of their first byte or of the connection opening (408, then close), the body
within `read_timeout` of the headers (408 from the app, then close),
and a refusal (503, then close) when the worker already holds `max_connections`.

A request the app admits whole (LiteRT, inside every limit, counted in flight from its headers) is
answered in the parser's callback that reads its last byte: no ASGI task, no receive/send cycle, its
body gathered as it arrives (no flow control round trip per 64 KiB), one write. That cycle cost as much
as Iris' whole inference. Its body, too, must arrive within `read_timeout` (408 from the app, then
close). Any other request goes through uvicorn's cycle as before, and so does one still arriving when
the server stops, so uvicorn waits for it.
"""

from __future__ import annotations

import asyncio
import functools
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from serving.jsonio import dumps

SHUTDOWN_GRACE_SECONDS = 0.5
BODY_TIMED_OUT = "twinserve.body_timed_out"  # scope extension: the body stopped arriving after this many s
REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}
INTERNAL_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
)


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    read_timeout: float
    max_connections: int


def refusal(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, with the same JSON error as the routes."""
    body = dumps({"error": message})
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


@dataclass
class WholeRequest:
    """A request to answer in the callback that reads its last byte, while its body arrives."""

    method: str
    path: str
    headers: dict[str, str]
    keep_alive: bool
    declared: int  # its body's length, which the app holds in its budget until it is answered
    chunks: list[bytes] = field(default_factory=list)


def response_bytes(response: Any, default_headers: list[tuple[bytes, bytes]], keep_alive: bool) -> bytes:
    """A route-table response as uvicorn would write it: its default headers (date, server), then the
    response's, a content length, and `connection: close` when the connection ends with it."""
    parts = [STATUS_LINE[response.status]]
    for name, value in default_headers:
        parts += [name, b": ", value, b"\r\n"]
    parts.append(_header_lines(response.headers))
    parts.append(b"content-length: %d\r\n" % len(response.body))
    if not keep_alive and ("connection", "close") not in response.headers:
        parts.append(b"connection: close\r\n")
    parts += [b"\r\n", response.body]
    return b"".join(parts)


@functools.lru_cache(maxsize=64)  # a few header sets: JSON, binary tensors (by header length), errors
def _header_lines(headers: tuple[tuple[str, str], ...]) -> bytes:
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)


class CoalescingTransport:
    """The connection's transport with the writes of one turn of the event loop sent as one.

    uvicorn writes a response's status line and headers, then its body: two `send()` calls, two
    segments, and on a small answer the second syscall is a sixth of the worker's time per request.
    Held here until the end of the loop's turn (the body is written in the same turn), they go in one
    write. A large write, a close and anything else the protocol asks flush what is held first."""

    LARGE = 64 * 1024  # a body this big is worth its own write: joining would copy it

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if len(data) >= self.LARGE:
            self.flush()
            self._transport.write(data)
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def write_now(self, data: bytes) -> None:
        """`data` in its own write, now, after anything held."""
        self.flush()
        self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, []
            if not self._transport.is_closing():
                self._transport.write(b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One per connection, reading in phases: `headers` from the connection's start and again after each
    request's body, `body` from a request's headers until its last byte. One deadline covers the phase
    in progress; it is only armed when a phase outlasts the bytes at hand, so a request that arrives
    whole costs no timer."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._phase = "headers"
        self._header_bytes = 0
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._stopping = False
        self._whole: WholeRequest | None = None
        self._admit_whole = getattr(self.app, "admit_whole", None)
        self._idle_since: float | None = None  # the last answer's time, until a byte arrives
        self._keep_alive: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        if len(self.connections) > self.limits.max_connections:
            limit = self.limits.max_connections
            self._refuse(503, f"this worker already holds {limit} open connections; retry shortly")
            return
        self._arm(self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        if self._refused:
            return
        if self._phase == "headers":
            self._header_bytes += len(data)
        super().data_received(data)
        if self._phase == "headers" and self._header_bytes > self.limits.max_header_bytes:
            limit = self.limits.max_header_bytes
            self._refuse(431, f"request line and headers exceed the limit of {limit} bytes")
        elif self._deadline is None and not self.transport.is_closing():
            if self._phase == "body":
                self._arm(self._body_too_slow)
            elif self._header_bytes:
                self._arm(self._headers_too_slow)

    def on_message_begin(self) -> None:
        """What the parser's callbacks fill; uvicorn's scope is built only for a request its cycle takes."""
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_headers_complete(self) -> None:
        self._phase, self._header_bytes = "body", 0
        self._cancel()
        if self._refused:
            return  # refused and closed: no request to answer
        limit = self.limits.max_header_bytes
        if len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) > limit:
            # A whole oversized head in one read: refused before it is answered.
            self._refuse(431, f"request line and headers exceed the limit of {limit} bytes")
            return
        self._whole = self._whole_request()
        if self._whole is None:
            self._start_cycle()

    def _start_cycle(self) -> None:
        """uvicorn's request-response cycle for the request whose headers the parser has read: its scope
        (uvicorn's `on_message_begin`, keeping what the parser read), then its own `on_headers_complete`."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect
        self.headers.extend(headers)  # the list the scope holds
        super().on_headers_complete()
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False

    def _hand_over(self, whole: WholeRequest) -> None:
        """uvicorn's cycle takes the request and what arrived of its body: it reads (and times) the rest."""
        self._whole = None
        self.app.release_whole(whole.declared)
        if self.transport.is_closing():
            return
        self._start_cycle()
        for chunk in whole.chunks:
            super().on_body(chunk)

    def _whole_request(self) -> WholeRequest | None:
        """The request, to be answered when its last byte is read, if nothing in it or in the connection
        needs uvicorn's cycle (an upgrade, 100-continue, a chunked body, an answer still being written or
        waiting on a slow reader) and the app takes it."""
        admit_whole = self._admit_whole
        busy = self.cycle is not None and not self.cycle.response_complete
        if admit_whole is None or busy or self.expect_100_continue or self.flow.write_paused:
            return None
        if self.transport.is_closing() or self.parser.should_upgrade() or self._stopping:
            return None
        declared = self._declared_length()
        try:
            path = self.root_path + httptools.parse_url(self.url).path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return None  # uvicorn's cycle refuses it as it refuses any
        method = self.parser.get_method().decode("ascii")
        if declared is None or not admit_whole(method, declared):
            return None
        if "%" in path:
            path = urllib.parse.unquote(path)
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in self.headers}
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        return WholeRequest(method, path, headers, keep_alive, declared)

    def _declared_length(self) -> int | None:
        """The body's length as its header declares it (0 without one), None for a chunked body."""
        declared = 0
        for name, value in self.headers:
            if name == b"transfer-encoding":
                return None
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return None  # the parser refuses it in any case
        return declared

    def on_body(self, body: bytes) -> None:
        if self._whole is not None:
            self._whole.chunks.append(body)
        elif not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        if self._whole is not None:
            whole, self._whole = self._whole, None
            self._answer(whole)
        else:
            super().on_message_complete()
        self._phase = "headers"
        self._cancel()

    def _answer(self, whole: WholeRequest) -> None:
        """The app's answer, written at once; then what uvicorn does after any response (keep-alive)."""
        sent = False

        def send(response: Any) -> None:
            nonlocal sent
            sent = True
            self._send(response, whole.keep_alive)

        body = whole.chunks[0] if len(whole.chunks) == 1 else b"".join(whole.chunks)
        try:
            self.app.answer_whole(whole.method, whole.path, whole.headers, body, self.client, send)
        except Exception as exc:  # as uvicorn's cycle treats an app that raises (the app gave back its hold)
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not sent:
                self.transport.write_now(INTERNAL_ERROR)
            self.transport.close()
            return
        self._response_complete()

    def _response_complete(self) -> None:
        """uvicorn's `on_response_complete` after a request answered whole, but its keep-alive timer
        armed once an idle stretch and moved on when it fires early, not armed and cancelled around
        every request (a timer object each: about 6% of a worker's time on Iris, in a profile)."""
        if self.pipeline or self.transport.is_closing():
            self.on_response_complete()
            return
        self.server_state.total_requests += 1
        self.flow.resume_reading()
        self._idle_since = self.loop.time()
        if self._keep_alive is None:
            self._keep_alive = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        """Close the connection if no byte has arrived for `timeout_keep_alive` since its last answer."""
        self._keep_alive = None
        if self._idle_since is None or self.transport.is_closing():
            return  # a request arrived since: its answer starts the next idle stretch
        left = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self._keep_alive = self.loop.call_later(left, self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

    def _send(self, response: Any, keep_alive: bool) -> None:
        keep_alive = keep_alive and ("connection", "close") not in response.headers
        self.transport.write_now(response_bytes(response, self.server_state.default_headers, keep_alive))
        if not keep_alive:
            self.transport.close()

    def shutdown(self) -> None:
        """uvicorn closes an idle connection at once when it stops, losing a request already on the wire:
        an idle one gets `SHUTDOWN_GRACE_SECONDS` to send it (answered, then closed) before it is closed."""
        self._stopping = True
        if self._whole is not None:
            self._hand_over(self._whole)  # uvicorn waits for its cycle's task to answer it, not for ours
        if self.cycle is not None and not self.cycle.response_complete:
            super().shutdown()
            return
        self.loop.call_later(SHUTDOWN_GRACE_SECONDS, self._close_if_idle)

    def _close_if_idle(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self._phase == "headers" and self._header_bytes == 0 and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            self._keep_alive = None
        if self._whole is not None:  # the client left mid-body: nothing to answer, its hold given back
            self.app.release_whole(self._whole.declared)
            self._whole = None
        super().connection_lost(exc)

    def _arm(self, callback: Callable[[], None]) -> None:
        self._deadline = self.loop.call_later(self.limits.read_timeout, callback)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self._phase != "headers" or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm(self._headers_too_slow)  # still answering the previous request: the clock starts after
            return
        if self._header_bytes == 0:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        self._refuse(408, f"request headers not received within {self.limits.read_timeout:g}s")

    def _body_too_slow(self) -> None:
        """The app is reading the body: end it here and flag the scope, so the app answers 408 itself;
        for a request admitted whole, the app answers 408 at once."""
        self._deadline = None
        if self._phase != "body" or self.transport.is_closing():
            return
        whole = self._whole
        if whole is not None:
            self._whole, self._refused = None, True  # the rest of its body is not read
            send = functools.partial(self._send, keep_alive=False)
            self.app.refuse_whole(whole.method, whole.path, whole.headers, whole.declared, self.client, send)
            return
        cycle = self.cycle
        if cycle is None or cycle.response_started:
            self.transport.close()  # answered already; the rest of the body is not worth waiting for
            return
        cycle.scope.setdefault("extensions", {})[BODY_TIMED_OUT] = self.limits.read_timeout  # type: ignore[typeddict-item]
        cycle.more_body = False
        cycle.message_event.set()

    def _refuse(self, status: int, message: str) -> None:
        self._refused = True
        if self.transport.is_closing():
            return
        self._cancel()
        self.transport.write(refusal(status, message))
        self.transport.close()
