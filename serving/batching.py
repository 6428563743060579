"""Adaptive micro-batching, for runtimes where one call costs about as much for one row as for many.

The HTTP worker runs TensorFlow requests on a few threads. Concurrent requests join one
call: the first to arrive leads. It waits only while other requests are in flight and
have not joined yet, and at most `wait_seconds`. Then it runs every joined row as one
batch and hands each request its slice. A request alone runs at once, so batching adds
no latency at low load. A failed batch is run again one request at a time, so a request whose
input the model fails on fails alone, not with everything that joined it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from serving.runtime import Runtime
from serving.tensors import Inputs, rows_of


class _Job:
    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.rows = rows_of(inputs)
        self.kind = tuple((name, array.shape[1:]) for name, array in inputs.items())  # which jobs can merge
        self.outputs: dict[str, np.ndarray] | None = None
        self.error: BaseException | None = None
        self.done = False

    def value(self) -> dict[str, np.ndarray]:
        if self.error is not None:
            raise self.error
        assert self.outputs is not None
        return self.outputs


class MicroBatcher:
    """A Runtime that merges concurrent `predict` calls into one call of the runtime it wraps."""

    def __init__(
        self, runtime: Runtime, max_rows: int, wait_seconds: float, inflight: Callable[[], int]
    ) -> None:
        self.runtime = runtime
        self.name = runtime.name
        self.max_rows = max_rows
        self.wait_seconds = wait_seconds
        self.inflight = inflight
        self.calls = 0
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._leading = False

    def predict(self, inputs: Inputs) -> dict[str, np.ndarray]:
        job = _Job(inputs)
        with self._cond:
            self._queue.append(job)
            self._cond.notify_all()
        while True:
            with self._cond:
                while not job.done and self._leading:
                    self._cond.wait()
                if job.done:
                    return job.value()
                self._leading = True
                self._gather()
                jobs = self._take()
            self._run(jobs)

    def _rows(self) -> int:
        return sum(j.rows for j in self._queue)

    def _gather(self) -> None:
        """Wait (holding the condition) while others in flight may still join and the batch has room."""
        deadline = time.monotonic() + self.wait_seconds
        while len(self._queue) < self.inflight() and self._rows() < self.max_rows:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _take(self) -> list[_Job]:
        """The oldest request, and the next ones of the same shapes whose rows fit in the same call."""
        first = self._queue.pop(0)
        taken, rows, kept = [first], first.rows, []
        for job in self._queue:
            if job.kind == first.kind and rows + job.rows <= self.max_rows:
                taken.append(job)
                rows += job.rows
            else:
                kept.append(job)
        self._queue = kept
        return taken

    def _run(self, jobs: list[_Job]) -> None:
        try:
            self._call(jobs)
        except Exception as error:
            if len(jobs) == 1:
                jobs[0].error = error
            else:  # one request's bad input must not fail the others that joined its call
                for job in jobs:
                    try:
                        self._call([job])
                    except Exception as alone:
                        job.error = alone
        finally:
            with self._cond:
                for job in jobs:
                    job.done = True
                self._leading = False
                self._cond.notify_all()

    def _call(self, jobs: list[_Job]) -> None:
        names = jobs[0].inputs.keys()
        merged = {name: np.concatenate([j.inputs[name] for j in jobs]) for name in names}
        outputs = self.runtime.predict(merged)
        self.calls += 1
        start = 0
        for job in jobs:
            end = start + job.rows
            job.outputs = {name: array[start:end] for name, array in outputs.items()}
            start = end
