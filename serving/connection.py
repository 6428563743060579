"""uvicorn's httptools protocol with the guards it lacks against slow and hostile clients.

uvicorn bounds neither the size of a request's headers nor the time a client takes
to send them (its keep-alive timer is only armed after a response, and any byte
resets it), nor the number of open connections. Each connection here gets:
headers within `max_header_bytes` (431, then close), headers complete within
`read_timeout` of their first byte or of the connection opening (408, then close),
and a refusal (503, then close) when the worker already holds `max_connections`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SHUTDOWN_GRACE_SECONDS = 0.5
REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    read_timeout: float
    max_connections: int


def refusal(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, with the same JSON error as the routes."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One per connection. `_awaiting_headers` holds from the connection's start, and again from the
    end of each request's body, until the next request's headers are complete."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_deadline: asyncio.TimerHandle | None = None
        self._stopping = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            limit = self.limits.max_connections
            self._refuse(503, f"this worker already holds {limit} open connections; retry shortly")
            return
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._header_bytes += len(data)
            if self._header_deadline is None:
                self._arm_header_deadline()
        super().data_received(data)
        if self._awaiting_headers and self._header_bytes > self.limits.max_header_bytes:
            self._refuse(
                431, f"request line and headers exceed the limit of {self.limits.max_header_bytes} bytes"
            )

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = 0
        self._cancel_header_deadline()
        super().on_headers_complete()
        if self._stopping and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True

    def shutdown(self) -> None:
        """uvicorn closes an idle connection at once when it stops, losing a request already on the wire:
        an idle one gets `SHUTDOWN_GRACE_SECONDS` to send it (answered, then closed) before it is closed."""
        self._stopping = True
        if self.cycle is not None and not self.cycle.response_complete:
            super().shutdown()
            return
        self.loop.call_later(SHUTDOWN_GRACE_SECONDS, self._close_if_idle)

    def _close_if_idle(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self._awaiting_headers and self._header_bytes == 0 and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(self.limits.read_timeout, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self._awaiting_headers or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_header_deadline()  # still answering the previous request: the clock starts after
            return
        if self._header_bytes == 0:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        self._refuse(408, f"request headers not received within {self.limits.read_timeout:g}s")

    def _refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        self._cancel_header_deadline()
        self.transport.write(refusal(status, message))
        self.transport.close()
