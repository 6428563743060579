"""Payload capture: one JSON line per sampled inference request, in the same schema on both runtimes.

A record says what the model saw and answered: time, request id, model and version, runtime and
track, route, status (and the error of a refused request), latency, and the inputs and outputs as
V2 tensors, only those the allow-list names. It goes to the process's log stream, where the platform
already collects it (Kubernetes: the cluster's log pipeline; Lambda: CloudWatch Logs), so capture
needs no infrastructure of its own. Off unless TWINSERVE_CAPTURE_SAMPLE_RATE says so.

The HTTP server hands sampled exchanges to a writer thread through a bounded queue: the client's
answer never waits for a record, and a record that finds the queue full is dropped and counted.
Lambda freezes the environment between invocations, so there a record is written before returning.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from serving.artifact import ModelSpec
from serving.contract import CAPTURE_SCHEMA, INFERENCE_ROUTES
from serving.jsonio import dumps, v2_data
from serving.routes import Response
from serving.stdout import write_whole

QUEUE_RECORDS = 1024  # exchanges waiting for the writer thread; one more is dropped, not waited for
FIELD_GROUPS = ("inputs", "outputs")

Tensors = Mapping[str, np.ndarray]


class CaptureConfigError(ValueError):
    """The allow-list names a tensor the model does not have."""


@dataclass(frozen=True)
class Exchange:
    """One inference request as the route table saw it: what a record is made of, off the request path."""

    route: str
    status: int
    request_id: str
    seconds: float
    time: float  # when the request arrived, seconds since the epoch
    inputs: Tensors | None = None  # None when the request was refused before its tensors were read
    outputs: Tensors | None = None
    error: str | None = None
    oversized: bool = False  # its tensors could not fit the record: only their shapes are kept


@dataclass(frozen=True)
class Policy:
    """What to capture: how often, which tensors, how large a record may be."""

    sample_rate: float
    fields: frozenset[str]  # "inputs", "outputs", or "inputs.<name>" / "outputs.<name>"
    max_record_bytes: int

    @classmethod
    def parse_fields(cls, text: str) -> frozenset[str]:
        items = frozenset(item.strip() for item in text.split(",") if item.strip())
        for item in items:
            group = item.split(".", 1)[0]
            if group not in FIELD_GROUPS or item.endswith("."):
                raise ValueError(f"{item!r} is not inputs, outputs, inputs.<name> or outputs.<name>")
        return items

    def check(self, spec: ModelSpec) -> None:
        """Every tensor the allow-list names by name is one of the model's."""
        declared = {"inputs": {t.name for t in spec.inputs}, "outputs": {t.name for t in spec.outputs}}
        for item in sorted(self.fields):
            group, _, name = item.partition(".")
            if name and name not in declared[group]:
                raise CaptureConfigError(
                    f"TWINSERVE_CAPTURE_FIELDS names {item!r}, but {spec.name} has {group} "
                    f"{sorted(declared[group])}"
                )

    def allows(self, group: str, name: str) -> bool:
        return group in self.fields or f"{group}.{name}" in self.fields


class Recorder:
    """Samples exchanges and turns them into records; `emit` says where a finished line goes."""

    def __init__(
        self,
        policy: Policy,
        spec: ModelSpec,
        runtime: str,
        track: str,
        emit: Callable[[bytes], None],
        chance: Callable[[], float] = random.random,
    ) -> None:
        policy.check(spec)
        self.policy, self.spec, self.runtime, self.track = policy, spec, runtime, track
        self.emit, self.chance = emit, chance
        self.datatypes = {
            "inputs": {t.name: t.datatype for t in spec.inputs},
            "outputs": {t.name: t.datatype for t in spec.outputs},
        }

    def sampled(self, route: str) -> bool:
        """Inference requests only (answered or refused), at the policy's rate."""
        if route not in INFERENCE_ROUTES:
            return False
        rate = self.policy.sample_rate
        return rate >= 1 or (rate > 0 and self.chance() < rate)

    def record(self, exchange: Exchange) -> bytes:
        """The JSON line: tensors past the size cap keep their name, datatype and shape, not their data."""
        head = {
            "schema": CAPTURE_SCHEMA,
            "time": datetime.fromtimestamp(exchange.time, UTC).isoformat(timespec="milliseconds"),
            "request_id": exchange.request_id,
            "model": self.spec.name,
            "model_version": self.spec.version,
            "runtime": self.runtime,
            "track": self.track,
            "route": exchange.route,
            "status": exchange.status,
            "error": exchange.error,
            "latency_ms": round(exchange.seconds * 1000, 3),
        }
        with_data = not exchange.oversized
        tensors = {
            group: listed
            for group, arrays in (("inputs", exchange.inputs), ("outputs", exchange.outputs))
            if arrays is not None and (listed := self._tensors(group, arrays, with_data))
        }
        if with_data:
            line = dumps({**head, **tensors, "truncated": False})
            if len(line) < self.policy.max_record_bytes:
                return line + b"\n"
            tensors = {group: [_without_data(t) for t in ts] for group, ts in tensors.items()}
        return dumps({**head, **tensors, "truncated": True}) + b"\n"

    def bounded(self, exchange: Exchange) -> Exchange:
        """The exchange as it may wait in a queue: tensors whose values could not fit a record (each
        value takes two bytes of JSON at least) become shapes without data, so a queue of image
        requests holds kilobytes, not the images."""
        values = sum(
            array.size
            for group, arrays in (("inputs", exchange.inputs), ("outputs", exchange.outputs))
            for name, array in (arrays or {}).items()
            if self.policy.allows(group, name)
        )
        if 2 * values < self.policy.max_record_bytes:
            return exchange
        return replace(
            exchange, inputs=_shapes(exchange.inputs), outputs=_shapes(exchange.outputs), oversized=True
        )

    def _tensors(self, group: str, arrays: Tensors, with_data: bool) -> list[dict[str, Any]]:
        datatypes = self.datatypes[group]
        return [
            {"name": name, "datatype": datatypes[name], "shape": list(array.shape)}
            | ({"data": v2_data(array)} if with_data else {})
            for name, array in arrays.items()
            if name in datatypes and self.policy.allows(group, name)
        ]


def _shapes(arrays: Tensors | None) -> Tensors | None:
    """Arrays of the same shapes and dtypes that hold no memory (every element is one zero)."""
    if arrays is None:
        return None
    return {name: np.broadcast_to(np.zeros((), array.dtype), array.shape) for name, array in arrays.items()}


def _without_data(tensor: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in tensor.items() if key != "data"}


def recorder_for(policy: Policy, spec: ModelSpec, runtime: str, track: str) -> Recorder | None:
    """Each adapter's recorder, writing to stdout; None where the environment leaves capture off."""
    if policy.sample_rate == 0:
        return None
    return Recorder(policy, spec, runtime, track, write_whole)


def exchange(response: Response, request_id: str, seconds: float) -> Exchange:
    """What a record is made of, taken from the route table's response when the request is answered."""
    return Exchange(
        route=response.route,
        status=response.status,
        request_id=request_id,
        seconds=seconds,
        time=time.time() - seconds,
        inputs=response.inputs,
        outputs=response.outputs,
        error=response.error,
    )


def new_request_id() -> str:
    return uuid.uuid4().hex


class BackgroundWriter:
    """The HTTP server's side: `offer` never blocks; a daemon thread makes and writes the records."""

    def __init__(self, recorder: Recorder, counted: Callable[[str], None]) -> None:
        self.recorder, self.counted = recorder, counted
        self.pending: queue.Queue[Exchange | None] = queue.Queue(maxsize=QUEUE_RECORDS)
        self.thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self.thread.start()

    def offer(self, exchange: Exchange) -> None:
        try:
            self.pending.put_nowait(self.recorder.bounded(exchange))
        except queue.Full:
            self.counted("dropped")

    def _run(self) -> None:
        while (exchange := self.pending.get()) is not None:
            try:
                self.recorder.emit(self.recorder.record(exchange))
                self.counted("written")
            except Exception:  # a record must never take the server down
                self.counted("failed")

    def close(self, timeout: float = 5.0) -> None:
        """Writes what is queued (within `timeout`), then stops the thread."""
        deadline = time.monotonic() + timeout
        try:
            self.pending.put(None, timeout=timeout)
        except queue.Full:
            return  # still behind at the deadline: the daemon thread ends with the process
        self.thread.join(timeout=max(0.0, deadline - time.monotonic()))
