"""Shadow traffic: a stable server mirrors a share of the inference requests it answered to the new model's
servers, after answering, and compares their answers with its own. The client never waits for the shadow
and never sees its answer.

The request is mirrored as the decoded inputs in a V2 JSON body (whatever protocol the client used, the
shadow is asked the same question in one form), to the same model name without a version (the shadow
serves the new version). A bounded queue sits between the answered request and the one mirroring thread
per worker: when the shadow is behind, a request is dropped and counted, never waited for. While the
shadow is unreachable (its Service gone when a rollout ends or aborts), mirroring pauses for
PAUSE_SECONDS at a time instead of trying every request.

Each comparison counts, per model (serving/metrics.py): requests mirrored, dropped, failed and
compared; those with an output outside the contract's tolerance; for a classifier, each row whose top
class agreed or disagreed; and the shadow's latency. The canary analysis judges the disagreement ratio.
"""

from __future__ import annotations

import queue
import random
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import httptools
import numpy as np

from serving.artifact import ModelSpec
from serving.contract import SHADOW_HEADER
from serving.prediction_mix import classifier
from serving.shadow_verdict import answer_outputs, compare, request_body
from serving.tensors import Inputs

QUEUE_REQUESTS = 64
QUEUE_BYTES = 16 * 1024 * 1024  # decoded inputs a worker holds for the shadow: an image's are ~0.6 MB each
PAUSE_SECONDS = 5.0
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Mirrored:
    """An answered request: its decoded inputs and the stable model's outputs."""

    inputs: Inputs
    outputs: Mapping[str, np.ndarray]

    @cached_property
    def nbytes(self) -> int:
        """What its inputs hold, against the queue's byte bound."""
        return sum(array.nbytes for array in self.inputs.values())


class Counts(NamedTuple):
    """What the mirror reports, through the metrics module's counters (a stand-in in tests)."""

    request: Callable[[str], None]  # by outcome
    rows: Callable[[str, int], None]  # by top-class verdict
    latency: Callable[[float], None]


class _Answer:
    """httptools' callbacks for one response: its body, whether it has all arrived, and whether the
    server closes the connection after it."""

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.complete = False
        self.closing = False  # the server said `connection: close`

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"connection" and value.strip().lower() == b"close":
            self.closing = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    """One kept-alive HTTP/1.1 connection to the shadow: each request written whole, each answer read
    with httptools' parser (the C parser the server itself uses). http.client spends ~0.4 ms of Python
    per exchange, time the stable server's event loop would wait on for the GIL."""

    def __init__(self, target: urllib.parse.SplitResult) -> None:
        self.host = target.hostname or ""
        self.port = target.port or (443 if target.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if target.scheme == "https" else None
        self.sock: socket.socket | None = None

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT_SECONDS)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host) if self.tls else sock
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
            f"{SHADOW_HEADER}: 1\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode("latin-1") + body)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.complete:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise OSError("the shadow closed the connection")
            parser.feed_data(chunk)
        status = parser.get_status_code()
        if answer.closing:
            self.close()
        return status, b"".join(answer.body)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Mirror:
    """The HTTP server's side: `offer` never blocks; a daemon thread sends, compares and counts."""

    def __init__(self, spec: ModelSpec, url: str, sample_rate: float, counts: Counts,
                 queue_size: int = QUEUE_REQUESTS) -> None:  # fmt: skip
        target = urllib.parse.urlsplit(url)
        self.spec, self.sample_rate, self.counts = spec, sample_rate, counts
        self.scored, _ = classifier(spec)
        self.connection = Connection(target)
        self.path = f"{target.path.rstrip('/')}/v2/models/{spec.name}/infer"
        self.paused_until = 0.0
        self.pending: queue.Queue[Mirrored | None] = queue.Queue(maxsize=queue_size)
        self.held, self.held_lock = 0, threading.Lock()  # bytes of the queued requests' inputs
        self.thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self.thread.start()

    def sampled(self) -> bool:
        return random.random() < self.sample_rate  # noqa: S311 - a traffic share, not a secret

    def offer(self, mirrored: Mirrored) -> None:
        if time.monotonic() < self.paused_until:
            self.counts.request("paused")
            return
        with self.held_lock:
            if self.held + mirrored.nbytes > QUEUE_BYTES:
                self.counts.request("dropped")
                return
            try:
                self.pending.put_nowait(mirrored)
            except queue.Full:
                self.counts.request("dropped")
                return
            self.held += mirrored.nbytes

    def _run(self) -> None:
        while (mirrored := self.pending.get()) is not None:
            try:
                self._mirror(mirrored)
            except Exception:  # a mirror must never take the server down
                self.counts.request("failed")
            finally:
                with self.held_lock:
                    self.held -= mirrored.nbytes

    def _mirror(self, mirrored: Mirrored) -> None:
        body = request_body(self.spec, mirrored.inputs)
        if body is None:
            self.counts.request("skipped")
            return
        started = time.perf_counter()
        try:
            status, answer = self._post(body)
        except OSError:
            self.paused_until = time.monotonic() + PAUSE_SECONDS
            self.counts.request("failed")
            return
        self.counts.request("mirrored")
        self.counts.latency(time.perf_counter() - started)
        if status != 200:
            self.counts.request("failed")
            return
        verdict = compare(self.spec, self.scored, mirrored.outputs, answer_outputs(self.spec, answer))
        self.counts.request("compared" if verdict.within_tolerance else "differed")
        if verdict.rows_agreed:
            self.counts.rows("agreed", verdict.rows_agreed)
        if verdict.rows_disagreed:
            self.counts.rows("disagreed", verdict.rows_disagreed)

    def _post(self, body: bytes) -> tuple[int, bytes]:
        """One request on the kept-alive connection; a broken one is opened again once."""
        for attempt in (1, 2):
            try:
                return self.connection.post(self.path, body)
            except (httptools.HttpParserError, OSError) as error:
                self.connection.close()
                if attempt == 2:
                    raise OSError(f"the shadow at {self.connection.host}: {error}") from error
        raise AssertionError("unreachable")

    def close(self, timeout: float = 5.0) -> None:
        """Mirrors what is queued (within `timeout`), then stops the thread."""
        deadline = time.monotonic() + timeout
        try:
            self.pending.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout=max(0.0, deadline - time.monotonic()))
