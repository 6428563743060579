"""Which requests are answered where their last byte is read, and which go through uvicorn's cycle.

The protocol is driven in-process on uvloop, read by read, with an app that records the lane each
request took and answers with its own path: what a client reads is checked byte for byte, in order.
The real server's answers on both lanes are compared in test_http_server.py."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
import uvloop
from uvicorn.server import ServerState

from serving.__main__ import config_for
from serving.connection import ConnectionLimits, GuardedHttpToolsProtocol
from serving.http_server import ServingApp
from serving.settings import Settings

LIMITS = ConnectionLimits(max_header_bytes=16384, read_timeout=1.0, max_connections=100)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", "text/plain"),)


class RecordingApp:
    """Admits whole any request of at most `whole_bytes`; answers every request with its path, and
    counts what it holds for admitted requests (`held`), as the server's app does."""

    def __init__(self, whole_bytes: int = 1024, fail: bool = False) -> None:
        self.whole_bytes = whole_bytes
        self.fail = fail
        self.lanes: list[tuple[str, str, bytes]] = []
        self.held = 0

    def admit_whole(self, method: str, declared: int) -> bool:
        if declared > self.whole_bytes:
            return False
        self.held += 1
        return True

    def release_whole(self, declared: int) -> None:
        self.held -= 1

    def refuse_whole(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        declared: int,
        client: Any,
        send: Callable[[Answer], None],
    ) -> None:
        self.release_whole(declared)
        self.lanes.append(("refused", path, b""))
        send(Answer(408, b"late", (("connection", "close"),)))

    def answer_whole(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        client: Any,
        send: Callable[[Answer], None],
    ) -> None:
        self.release_whole(len(body))
        if self.fail:
            raise RuntimeError("the app broke")
        self.lanes.append(("whole", path, body))
        send(Answer(200, path.encode()))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        self.lanes.append(("cycle", scope["path"], body))
        answer = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})


class Transport(asyncio.Transport):
    """What the protocol writes, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False
        self.closed_by_server = False  # before the client went away
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8080)}.get(name, default)


STOP = None  # in place of a read: the server starts to stop


def exchange(app: RecordingApp, *reads: bytes | None, wait: float = 0.01, keep_alive: float = 5) -> Transport:
    """Each read handed to one connection's protocol (or the server stopping), `wait` seconds between
    them; then, once uvicorn's cycles have answered, the client gone. `keep_alive`: uvicorn's
    timeout_keep_alive (its default)."""

    async def run() -> Transport:
        config = uvicorn.Config(
            app,
            http=functools.partial(GuardedHttpToolsProtocol, limits=LIMITS),
            proxy_headers=False,  # as serving/__main__.py sets it: any middleware would hide the app
            access_log=False,
            timeout_keep_alive=keep_alive,  # type: ignore[arg-type]  # a float works, as asyncio's timers take it
        )
        config.load()
        state = ServerState()
        state.default_headers = [(b"server", b"test")]
        protocol = GuardedHttpToolsProtocol(config=config, server_state=state, app_state={}, limits=LIMITS)
        transport = Transport()
        protocol.connection_made(transport)
        for data in reads:
            if data is STOP:
                protocol.shutdown()
            else:
                protocol.data_received(data)
            await asyncio.sleep(wait)
        deadline = time.monotonic() + 10
        while state.tasks and time.monotonic() < deadline:  # cycles still answering, however slow the turn
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)  # and the writes they coalesced into the end of their turn
        transport.closed_by_server = transport.closed
        protocol.connection_lost(None)
        return transport

    return uvloop.run(run())


def post(path: str, body: bytes, *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in (f"POST {path} HTTP/1.1", "host: x", *extra))
    return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body


def answer(path: str, *, close: bool = False) -> bytes:
    closing = "connection: close\r\n" if close else ""
    return (
        f"HTTP/1.1 200 OK\r\nserver: test\r\ncontent-type: text/plain\r\ncontent-length: {len(path)}\r\n"
        f"{closing}\r\n{path}"
    ).encode()


def test_a_request_read_whole_is_answered_in_the_read_with_uvicorns_bytes() -> None:
    app = RecordingApp()
    transport = exchange(app, post("/a", b"{}"))
    assert app.lanes == [("whole", "/a", b"{}")]
    assert transport.written == answer("/a")
    assert not transport.closed_by_server


def test_a_body_split_across_reads_is_gathered_and_answered_whole() -> None:
    app = RecordingApp()
    request = post("/split", b'{"x": 1}')
    transport = exchange(app, request[:-6], request[-6:-3], request[-3:])
    assert app.lanes == [("whole", "/split", b'{"x": 1}')]
    assert transport.written == answer("/split")
    assert app.held == 0


def test_a_body_that_stops_arriving_is_refused_by_the_app_and_closed() -> None:
    app = RecordingApp()
    transport = exchange(app, post("/late", b'{"x": 1}')[:-2], wait=LIMITS.read_timeout + 0.5)
    assert app.lanes == [("refused", "/late", b"")]
    assert transport.written.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert transport.closed_by_server
    assert app.held == 0


def test_a_client_gone_mid_body_gives_its_hold_back() -> None:
    app = RecordingApp()
    exchange(app, post("/gone", b'{"x": 1}')[:-2])
    assert (app.lanes, app.held) == ([], 0)


def test_a_body_still_arriving_when_the_server_stops_goes_to_uvicorns_cycle() -> None:
    """uvicorn waits for its cycles' tasks as it stops, so the request is answered, then the connection
    closed."""
    app = RecordingApp()
    request = post("/stopping", b'{"x": 1}')
    transport = exchange(app, request[:-2], STOP, request[-2:])
    assert app.lanes == [("cycle", "/stopping", b'{"x": 1}')]
    assert transport.written == answer("/stopping", close=True)
    assert app.held == 0


def test_pipelined_requests_are_answered_in_order_across_both_lanes() -> None:
    app = RecordingApp(whole_bytes=4)
    reads = post("/1", b"{}") + post("/2", b"[1, 2, 3]") + post("/3", b"{}") + post("/4", b"{}")
    transport = exchange(app, reads)
    # /2 is too large to admit whole; /3 and /4 then wait for its cycle, as uvicorn queues pipelining.
    assert [lane[:2] for lane in app.lanes] == [("whole", "/1"), ("cycle", "/2"), ("cycle", "/3"),
                                                ("cycle", "/4")]  # fmt: skip
    assert transport.written == answer("/1") + answer("/2") + answer("/3") + answer("/4")


def test_what_needs_the_cycle_takes_it() -> None:
    chunked = b"POST /chunked HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    app = RecordingApp()
    transport = exchange(app, chunked, post("/continue", b"{}", "expect: 100-continue"))
    assert app.lanes == [("cycle", "/chunked", b"{}"), ("cycle", "/continue", b"{}")]
    assert transport.written == answer("/chunked") + b"HTTP/1.1 100 Continue\r\n\r\n" + answer("/continue")


def test_http_1_0_and_connection_close_are_answered_whole_and_closed() -> None:
    for request in (post("/close", b"{}", "connection: close"),
                    post("/old", b"{}").replace(b"HTTP/1.1", b"HTTP/1.0")):  # fmt: skip
        app = RecordingApp()
        transport = exchange(app, request)
        path = app.lanes[0][1]
        assert app.lanes[0][0] == "whole"
        assert transport.written == answer(path, close=True)
        assert transport.closed_by_server


def test_a_percent_encoded_path_reaches_the_app_decoded_on_both_lanes() -> None:
    app = RecordingApp(whole_bytes=2)
    exchange(app, post("/v2/models/a%20b", b"{}"), post("/v2/models/a%20b", b"[1, 2]"))
    assert [lane[:2] for lane in app.lanes] == [("whole", "/v2/models/a b"), ("cycle", "/v2/models/a b")]


def test_an_app_that_raises_answers_500_and_closes_as_uvicorns_cycle_does() -> None:
    app = RecordingApp(fail=True)
    transport = exchange(app, post("/a", b"{}"))
    assert transport.written.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert transport.written.endswith(b"\r\n\r\nInternal Server Error")
    assert transport.closed_by_server


def test_the_servers_own_config_hands_the_protocol_its_app_unwrapped() -> None:
    """A middleware around the app (uvicorn adds one for proxy headers) would hide `takes_whole`."""
    config = config_for(Settings.from_env({"TWINSERVE_MODEL_ROOT": "unused"}), 1, LIMITS)
    config.load()
    assert isinstance(config.loaded_app, ServingApp)


def test_a_connection_idle_past_the_keep_alive_timeout_is_closed() -> None:
    app = RecordingApp()
    transport = exchange(app, post("/a", b"{}"), wait=1.0, keep_alive=0.3)
    assert transport.written == answer("/a")
    assert transport.closed_by_server


def test_a_connection_whose_requests_keep_coming_within_the_timeout_stays_open() -> None:
    """Its keep-alive timer, armed at the first answer, fires between requests and waits on."""
    app = RecordingApp()
    transport = exchange(
        app, post("/a", b"{}"), post("/b", b"{}"), post("/c", b"{}"), wait=0.2, keep_alive=0.3
    )
    assert transport.written == answer("/a") + answer("/b") + answer("/c")
    assert not transport.closed_by_server
