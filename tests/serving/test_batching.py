"""The micro-batcher: concurrent requests share calls and get their own rows; a lone request never waits."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from serving.batching import MicroBatcher


class Doubling:
    """A runtime whose answer identifies each row, and which records every call's size."""

    name = "tensorflow"

    def __init__(self, fail: bool = False, poison: float | None = None) -> None:
        self.sizes: list[int] = []
        self.widths: list[int] = []
        self.fail = fail
        self.poison = poison

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(0.005)  # long enough for concurrent requests to queue behind a call
        batch = inputs["x"]
        self.sizes.append(len(batch))
        self.widths.append(batch.shape[1])
        if self.fail:
            raise RuntimeError("device lost")
        if self.poison is not None and (batch == self.poison).any():
            raise RuntimeError("the model fails on this input")
        return {"twice": batch * 2}


def run_concurrently(batcher: MicroBatcher, batches: list[np.ndarray]) -> list[object]:
    results: list[object] = [None] * len(batches)
    start = threading.Barrier(len(batches))

    def call(i: int) -> None:
        start.wait()
        try:
            results[i] = batcher.predict({"x": batches[i]})
        except RuntimeError as error:
            results[i] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_requests_share_calls_and_get_their_own_rows() -> None:
    runtime = Doubling()
    batches = [np.full((1 + i % 3, 4), i, dtype=np.float32) for i in range(16)]
    batcher = MicroBatcher(runtime, max_rows=1024, wait_seconds=0.05, inflight=lambda: 16)
    results = run_concurrently(batcher, batches)
    for batch, result in zip(batches, results, strict=True):
        np.testing.assert_array_equal(result["twice"], batch * 2)
    assert sum(runtime.sizes) == sum(len(b) for b in batches)
    assert len(runtime.sizes) < len(batches)


def test_no_call_exceeds_the_row_limit() -> None:
    runtime = Doubling()
    batches = [np.ones((3, 4), dtype=np.float32) for _ in range(10)]
    results = run_concurrently(
        MicroBatcher(runtime, max_rows=7, wait_seconds=0.05, inflight=lambda: 10), batches
    )
    assert all(r["twice"].shape == (3, 4) for r in results)
    assert max(runtime.sizes) <= 7


def test_only_requests_of_the_same_shapes_share_a_call() -> None:
    """Variable-length inputs (a -1 beyond the batch) can only be concatenated when their lengths agree."""
    runtime = Doubling()
    batches = [np.full((1, 3 + i % 2), i, dtype=np.float32) for i in range(12)]
    results = run_concurrently(MicroBatcher(runtime, 1024, 0.05, lambda: 12), batches)
    for batch, result in zip(batches, results, strict=True):
        np.testing.assert_array_equal(result["twice"], batch * 2)
    assert sum(runtime.sizes) == 12
    assert len(runtime.sizes) < 12
    assert set(runtime.widths) == {3, 4}


def test_a_lone_request_runs_at_once() -> None:
    runtime = Doubling()
    batcher = MicroBatcher(runtime, max_rows=1024, wait_seconds=5.0, inflight=lambda: 1)
    started = time.monotonic()
    batcher.predict({"x": np.ones((1, 4), dtype=np.float32)})
    assert time.monotonic() - started < 1.0  # far below the 5 s it would wait for company
    assert runtime.sizes == [1]


def test_a_failing_runtime_fails_every_request_with_its_error() -> None:
    batches = [np.ones((1, 4), dtype=np.float32) for _ in range(4)]
    results = run_concurrently(MicroBatcher(Doubling(fail=True), 1024, 0.05, lambda: 4), batches)
    assert all(isinstance(r, RuntimeError) and str(r) == "device lost" for r in results)


def test_an_input_the_model_fails_on_fails_only_its_own_request() -> None:
    runtime = Doubling(poison=13.0)
    batches = [np.full((1, 4), 13.0 if i == 2 else i, dtype=np.float32) for i in range(4)]
    results = run_concurrently(MicroBatcher(runtime, 1024, 0.05, lambda: 4), batches)
    assert isinstance(results[2], RuntimeError)
    assert str(results[2]) == "the model fails on this input"
    for i in (0, 1, 3):
        np.testing.assert_array_equal(results[i]["twice"], batches[i] * 2)  # type: ignore[index]
    assert max(runtime.sizes) > 1  # they did share a call, which failed, before each ran alone


@pytest.mark.parametrize("value", ["-1", "101", "soon"])
def test_bad_wait_setting_is_named(value: str) -> None:
    from serving.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="TWINSERVE_BATCH_WAIT_MS"):
        Settings.from_env({"TWINSERVE_BATCH_WAIT_MS": value})


def test_concurrent_clients_of_a_real_server_each_get_their_own_answer(server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rows = [[4.0 + i / 10, 3.0, 1.0 + i / 5, 0.2 + i / 20] for i in range(24)]

    def ask(row: list[float]) -> list[float]:
        with server.client() as client:
            response = client.post("/v1/models/iris:predict", json={"instances": [row]})
            assert response.status_code == 200, response.text
            return response.json()["predictions"][0]

    alone = [ask(row) for row in rows]
    with ThreadPoolExecutor(max_workers=12) as pool:
        together = list(pool.map(ask, rows))
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
