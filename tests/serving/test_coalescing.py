"""One write per turn of the event loop: a response's head and body leave in one write, in order, and
nothing held is lost to a close. Over a real loopback TCP connection on uvloop: the writes reaching
the server's transport are recorded, and the client reads every byte."""

from __future__ import annotations

import asyncio
import socket

import uvloop

from serving.connection import CoalescingTransport


class Writes:
    """What the server's transport was asked to write, seen from below the coalescing layer."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.calls: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.calls.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.transport, name)


async def _exchange(act: object) -> tuple[list[bytes], bytes]:
    """A server transport on loopback, `act(coalescing)` run in one turn, then what the socket wrote
    and everything the client read until the server closed."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[asyncio.Transport] = loop.create_future()

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.set_result(transport)  # type: ignore[arg-type]

    server = await loop.create_server(Server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    try:
        writes = Writes(await accepted)
        coalescing = CoalescingTransport(writes, loop)  # type: ignore[arg-type]
        act(coalescing)  # type: ignore[operator]
        await asyncio.sleep(0.05)
        received = b""
        client.settimeout(5)
        while chunk := await loop.run_in_executor(None, client.recv, 1 << 20):
            received += chunk
        return writes.calls, received
    finally:
        client.close()
        server.close()
        await server.wait_closed()


def test_a_head_and_a_body_written_in_one_turn_leave_as_one_write() -> None:
    def respond(transport: CoalescingTransport) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        asyncio.get_running_loop().call_later(0.01, transport.close)

    calls, received = uvloop.run(_exchange(respond))
    assert calls == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert received == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"


def test_a_large_body_goes_on_its_own_after_what_was_held_and_a_close_sends_what_is_held() -> None:
    large = b"x" * CoalescingTransport.LARGE

    def respond(transport: CoalescingTransport) -> None:
        transport.write(b"head\r\n\r\n")
        transport.write(large)
        transport.write(b"tail")
        transport.close()  # in the same turn: the held tail is written before the close

    calls, received = uvloop.run(_exchange(respond))
    assert calls == [b"head\r\n\r\n", large, b"tail"]
    assert received == b"head\r\n\r\n" + large + b"tail"
